package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/restic"
	"kubestash.dev/kubestash/pkg/restic/restictest"
	"kubestash.dev/kubestash/test/framework"
)

// TestPlugin backs up a PVC and runs every command of `kubectl kubestash`
// (cmd/kubectl-kubestash, built here) against the control plane with its
// admin kubeconfig, asserting what each prints and does.
func TestPlugin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	const ns, bcName = "plugin-e2e", "pvc-backup"
	podLogsOnFailure(t, ns)

	root, err := framework.RepoRoot()
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "kubectl-kubestash")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/kubectl-kubestash")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	e := newFailEnv(ctx, t, failOptions{NS: ns, BC: bcName, Directory: "/plugin",
		Data: restictest.Dataset{SmallFiles: 40, SmallMax: 8 << 10, LargeFiles: 1, LargeSize: 1 << 20, Seed: 15}})
	snap := e.snapshot(e.first).Name
	want, err := restictest.Digest(e.data)
	require.NoError(t, err)
	bindRole(ctx, t, ns, "viewer", "view")

	// plugin runs the plugin as a kubectl user of ns would, in dir.
	plugin := func(dir string, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", env.Kubeconfig, "-n", ns}, args...)...)
		cmd.Dir = dir
		var o, eo bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &eo
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else {
			require.NoError(t, err)
		}
		return o.String(), eo.String(), code
	}
	wd := t.TempDir()

	t.Run("ls", func(t *testing.T) {
		stdout, stderr, code := plugin(wd, "ls", snap, "/initial")
		require.Equal(t, 0, code, stderr)
		t.Logf("kubectl kubestash ls %s /initial:\n%s", snap, stdout)
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		ents, err := os.ReadDir(filepath.Join(e.data, "initial"))
		require.NoError(t, err)
		require.Len(t, lines, len(ents), "a line per entry")
		byName := map[string][]string{}
		for _, l := range lines {
			f := strings.Fields(l)
			require.GreaterOrEqual(t, len(f), 7, l)
			byName[f[6]] = f
		}
		for _, de := range ents {
			rel := "initial/" + de.Name()
			w := want[rel]
			f, ok := byName[de.Name()]
			if !assert.True(t, ok, "%s is listed", rel) {
				continue
			}
			assert.Equal(t, strconv.FormatUint(uint64(w.UID), 10), f[1], "uid of %s", rel)
			assert.Equal(t, strconv.FormatUint(uint64(w.GID), 10), f[2], "gid of %s", rel)
			switch w.Type {
			case "file":
				assert.Equal(t, "-", f[0][:1], rel)
				assert.Equal(t, strconv.FormatInt(w.Size, 10), f[3], "size of %s", rel)
				assert.Equal(t, w.ModTime.Local().Format("2006-01-02 15:04"), f[4]+" "+f[5], "mtime of %s", rel)
				assert.Equal(t, w.Mode.Perm().String()[1:], f[0][1:], "permissions of %s", rel)
			case "dir":
				assert.Equal(t, "d", f[0][:1], rel)
			case "symlink":
				assert.Equal(t, "l", f[0][:1], rel)
				assert.Equal(t, []string{"->", w.Link}, f[7:], "target of %s", rel)
			}
		}

		// -R: every entry of the volume, by its path.
		stdout, stderr, code = plugin(wd, "ls", snap, "-R")
		require.Equal(t, 0, code, stderr)
		got := map[string]bool{}
		for _, l := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
			f := strings.Fields(l)
			got[strings.TrimSuffix(strings.TrimPrefix(f[6], "/"), "/")] = true
		}
		var missing []string
		for p := range want {
			if !got[p] {
				missing = append(missing, p)
			}
		}
		sort.Strings(missing)
		assert.Empty(t, missing, "ls -R lists every entry")
		assert.Len(t, got, len(want))
	})

	// The smallest file and the largest one.
	var small, big string
	for p, w := range want {
		if w.Type != "file" || w.Size == 0 {
			continue
		}
		if small == "" || w.Size < want[small].Size {
			small = p
		}
		if big == "" || w.Size > want[big].Size {
			big = p
		}
	}

	t.Run("cat", func(t *testing.T) {
		stdout, stderr, code := plugin(wd, "cat", snap, "/"+small)
		require.Equal(t, 0, code, stderr)
		src, err := os.ReadFile(filepath.Join(e.data, small))
		require.NoError(t, err)
		assert.Equal(t, string(src), stdout, "cat /%s", small)
		stdout, _, code = plugin(wd, "cat", snap, "/"+big)
		require.Equal(t, 0, code)
		assert.Equal(t, want[big].SHA256, sha([]byte(stdout)), "cat /%s", big)
	})

	t.Run("download", func(t *testing.T) {
		// A file, to its base name and to -o FILE.
		_, stderr, code := plugin(wd, "download", snap, "/"+big)
		require.Equal(t, 0, code, stderr)
		t.Logf("kubectl kubestash download %s /%s:\n%s", snap, big, stderr)
		b, err := os.ReadFile(filepath.Join(wd, filepath.Base(big)))
		require.NoError(t, err)
		assert.Equal(t, want[big].SHA256, sha(b))
		_, stderr, code = plugin(wd, "download", snap, "/"+small, "-o", "small.bin")
		require.Equal(t, 0, code, stderr)
		b, err = os.ReadFile(filepath.Join(wd, "small.bin"))
		require.NoError(t, err)
		assert.Equal(t, want[small].SHA256, sha(b))

		// A directory, extracted: the same tree as the source, but for
		// the symlink to /etc/hostname, skipped with a warning unless
		// --keep-outside-links.
		_, stderr, code = plugin(wd, "download", snap, "/initial", "-o", "restored")
		require.Equal(t, 0, code, stderr)
		t.Logf("kubectl kubestash download %s /initial -o restored:\n%s", snap, stderr)
		assert.Contains(t, stderr, "warning: skipped symlink link-absolute -> /etc/hostname: an absolute target is refused")
		assertTree(t, want, "initial", filepath.Join(wd, "restored"), "link-absolute")
		_, stderr, code = plugin(wd, "download", snap, "/initial", "-o", "restored-all", "--keep-outside-links")
		require.Equal(t, 0, code, stderr)
		assert.NotContains(t, stderr, "warning")
		assertTree(t, want, "initial", filepath.Join(wd, "restored-all"))
	})

	t.Run("errors", func(t *testing.T) {
		stdout, stderr, code := plugin(wd, "ls", snap, "/no/such/dir")
		assert.Equal(t, 1, code)
		assert.Empty(t, stdout)
		assert.Equal(t, fmt.Sprintf("Error from server (NotFound): path /no/such/dir not found in Snapshot %s\n", snap), stderr)
		_, stderr, code = plugin(wd, "cat", "no-such-snapshot", "/x")
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, "Error from server (NotFound)")
		_, stderr, code = plugin(wd, "--as", "viewer", "download", snap, "/initial", "-o", "forbidden")
		assert.Equal(t, 1, code)
		t.Logf("kubectl kubestash --as viewer download %s /initial:\n%s", snap, stderr)
		assert.Contains(t, stderr, "Error from server (Forbidden)")
		assert.Contains(t, stderr, `cannot get resource "snapshots/download"`)
		_, err := os.Stat(filepath.Join(wd, "forbidden"))
		assert.True(t, os.IsNotExist(err), "nothing written")
		_, stderr, code = plugin(wd, "restore", snap)
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, "error: --to-pvc is required")
	})

	t.Run("help and completion", func(t *testing.T) {
		for _, c := range []string{"ls", "cat", "download", "trigger", "pause", "resume", "restore", "completion"} {
			stdout, _, code := plugin(wd, c, "--help")
			assert.Equal(t, 0, code, c)
			assert.Contains(t, stdout, "Usage:", c)
			assert.Contains(t, stdout, "kubectl kubestash "+c, c)
		}
		stdout, _, code := plugin(wd, "completion", "bash")
		assert.Equal(t, 0, code)
		assert.Contains(t, stdout, "__start_kubectl-kubestash")
		stdout, _, code = plugin(wd, "completion", "zsh")
		assert.Equal(t, 0, code)
		assert.Contains(t, stdout, "#compdef kubectl-kubestash")
	})

	t.Run("trigger", func(t *testing.T) {
		stdout, stderr, code := plugin(wd, "trigger", bcName)
		require.Equal(t, 0, code, stderr)
		t.Logf("kubectl kubestash trigger %s:\n%s", bcName, stdout)
		m := regexp.MustCompile(`^backupsession\.catalog\.kubestash\.com/(` + bcName + `-` + failSession + `-[0-9]+) created\n$`).FindStringSubmatch(stdout)
		require.NotNil(t, m, stdout)
		bs := e.session(m[1])
		assert.Equal(t, bcName, bs.Labels[catalogv1alpha1.LabelInvokerName])
		assert.Equal(t, "BackupConfiguration", bs.Spec.Invoker.Kind)
		assert.Equal(t, failSession, bs.Spec.Session)
		assert.Equal(t, catalogv1alpha1.BackupSessionSucceeded, e.waitSession(m[1]), "the triggered session")
	})

	t.Run("pause and resume", func(t *testing.T) {
		paused := func() bool {
			bc, err := e.client.CoreV1alpha1().BackupConfigurations(ns).Get(ctx, bcName, metav1.GetOptions{})
			require.NoError(t, err)
			return bc.Spec.Paused
		}
		stdout, stderr, code := plugin(wd, "pause", bcName)
		require.Equal(t, 0, code, stderr)
		assert.Equal(t, "backupconfiguration.core.kubestash.com/"+bcName+" paused (spec.paused: false -> true)\n", stdout)
		assert.True(t, paused())
		stdout, _, code = plugin(wd, "pause", bcName)
		assert.Equal(t, 0, code)
		assert.Equal(t, "backupconfiguration.core.kubestash.com/"+bcName+" unchanged (spec.paused: true)\n", stdout)
		stdout, stderr, code = plugin(wd, "resume", bcName)
		require.Equal(t, 0, code, stderr)
		assert.Equal(t, "backupconfiguration.core.kubestash.com/"+bcName+" resumed (spec.paused: true -> false)\n", stdout)
		assert.False(t, paused())
	})

	t.Run("restore include wait", func(t *testing.T) {
		var sub string
		for p, w := range want {
			if w.Type == "dir" && strings.Count(p, "/") == 1 && (sub == "" || p < sub) {
				sub = p
			}
		}
		require.NotEmpty(t, sub)
		target := t.TempDir()
		pvClaim(ctx, t, ns, "plugin-restore", target)
		stdout, stderr, code := plugin(wd, "restore", snap, "--to-pvc", "plugin-restore", "--include", "/"+sub, "--wait", "--timeout", "5m")
		t.Logf("kubectl kubestash restore %s --to-pvc plugin-restore --include /%s --wait:\n%s%s", snap, sub, stdout, stderr)
		require.Equal(t, 0, code, stderr)
		assert.Regexp(t, `^restoresession\.catalog\.kubestash\.com/plugin-restore-restore-[0-9]+ created\n`, stdout)
		assert.Regexp(t, `: Succeeded( in [^;\n]+)?(; [^\n]*)?\n$`, stdout, "the last line says it succeeded")

		restored, err := restictest.Digest(target)
		require.NoError(t, err)
		for p, w := range want {
			inside := p == sub || strings.HasPrefix(p, sub+"/")
			g, ok := restored[p]
			switch {
			case inside:
				if assert.True(t, ok, "%s is restored", p) && w.Type == "file" {
					assert.Equal(t, w.SHA256, g.SHA256, p)
				}
			case p == "initial":
			default:
				assert.False(t, ok, "%s is outside the include and must not be restored", p)
			}
		}
	})

	// unlock: a lock left by a killed restic whose hostname names a Job pod
	// of the namespace that does not exist is removed; the lock of a restic
	// that runs is kept.
	t.Run("unlock", func(t *testing.T) {
		m := env.MinIO
		loc := restic.Location{Provider: restic.ProviderS3, Path: "plugin/repository/v1/" + failSession + "/dump",
			S3: &restic.S3{Endpoint: m.Endpoint, Bucket: m.Bucket, Prefix: ns, Region: "us-east-1"}}
		url, err := loc.URL()
		require.NoError(t, err)
		resticEnv := append(os.Environ(), "RESTIC_REPOSITORY="+url, "RESTIC_PASSWORD="+e.o.Password,
			"AWS_ACCESS_KEY_ID="+m.AccessKey, "AWS_SECRET_ACCESS_KEY="+m.SecretKey, "AWS_DEFAULT_REGION=us-east-1")
		// hold runs a restic backup of its stdin, which holds a lock until
		// stdin closes; with a hostname, in a UTS namespace of its own, so
		// that the lock names that host.
		hold := func(hostname string) (*exec.Cmd, io.WriteCloser) {
			args := []string{"backup", "--stdin", "--stdin-filename", "held", "--no-cache", "--host", "plugin-e2e"}
			cmd := exec.CommandContext(ctx, filepath.Join(binDir, "restic"), args...)
			if hostname != "" {
				cmd = exec.CommandContext(ctx, "unshare", append([]string{"--uts", "sh", "-c", `hostname "$0" && exec "$@"`, hostname, filepath.Join(binDir, "restic")}, args...)...)
			}
			cmd.Env = resticEnv
			in, err := cmd.StdinPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			return cmd, in
		}
		locks := func() int {
			l, err := e.repo().Locks(ctx)
			require.NoError(t, err)
			return len(l)
		}
		require.Equal(t, 0, locks())
		dead, _ := hold("pvc-backup-manual-99-bcdfg")
		require.Eventually(t, func() bool { return locks() == 1 }, time.Minute, 500*time.Millisecond, "the first restic holds its lock")
		require.NoError(t, dead.Process.Kill())
		_ = dead.Wait()
		live, liveIn := hold("")
		t.Cleanup(func() {
			_ = live.Process.Signal(os.Interrupt) // restic removes its lock
			_ = liveIn.Close()
			_ = live.Wait()
		})
		require.Eventually(t, func() bool { return locks() == 2 }, time.Minute, 500*time.Millisecond, "the second restic holds its lock")

		stdout, stderr, code := plugin(wd, "unlock", failRepo)
		t.Logf("kubectl kubestash unlock %s:\n%s%s", failRepo, stdout, stderr)
		require.Equal(t, 0, code, stderr)
		assert.Regexp(t, `^repository\.catalog\.kubestash\.com/s3-repo: unlock requested \(Job unlock-s3-repo-[0-9a-f]{10}\)\n`+
			`Job unlock-s3-repo-[0-9a-f]{10} completed:\n`+
			`  repository/v1/manual/dump: removed 1 stale lock\(s\), kept 1 lock\(s\) of a restic that may still run\n$`, stdout)
		assert.Equal(t, 1, locks(), "the live restic's lock is kept")

		// The same request is not run again; view may not ask.
		jobs, err := env.KubeClient.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=kubestash-unlock"})
		require.NoError(t, err)
		assert.Len(t, jobs.Items, 1)
		viewer := exec.CommandContext(ctx, bin, "--kubeconfig", env.Kubeconfig, "-n", ns, "--as", "viewer", "unlock", failRepo)
		out, err := viewer.CombinedOutput()
		assert.Error(t, err)
		assert.Contains(t, string(out), "Error from server (Forbidden)", "a viewer cannot request an unlock")
	})
}

// assertTree compares the folder got with the entries of want below dir,
// but for the names in skipped: types, bytes, link targets, permissions
// and mtimes.
func assertTree(t *testing.T, want map[string]restictest.Entry, dir, got string, skipped ...string) {
	t.Helper()
	have, err := restictest.Digest(got)
	require.NoError(t, err)
	n := 0
	for p, w := range want {
		rel, ok := strings.CutPrefix(p, dir+"/")
		if !ok || slices.Contains(skipped, rel) {
			continue
		}
		n++
		g, ok := have[rel]
		if !assert.True(t, ok, "%s is downloaded", p) {
			continue
		}
		assert.Equal(t, w.Type, g.Type, p)
		assert.Equal(t, w.SHA256, g.SHA256, p)
		assert.Equal(t, w.Link, g.Link, p)
		if w.Type != "symlink" {
			assert.Equal(t, w.Mode.Perm(), g.Mode.Perm(), p)
			// A tar header's mtime is rounded to the second (restic dump
			// writes Go's default tar format): a folder made during the
			// test has a fraction.
			assert.InDelta(t, w.ModTime.Unix(), g.ModTime.Unix(), 1, p)
		}
	}
	assert.Positive(t, n)
	assert.Len(t, have, n, "nothing more than the source")
}

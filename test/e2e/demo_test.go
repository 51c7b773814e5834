package e2e

import (
	"bufio"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kubestash.dev/kubestash/test/framework"
)

// TestDemo runs make demo's script with each backend, in a folder of its
// own, and checks what it shows a new user: the catalog files in the
// backend, the Snapshot with its progress, the restore verified, and what
// to try next, whose commands work.
func TestDemo(t *testing.T) {
	root, err := framework.RepoRoot()
	require.NoError(t, err)
	for _, backend := range []string{"s3", "local"} {
		t.Run(backend, func(t *testing.T) {
			dev := t.TempDir()
			// The host has one node: the demo's environment waits while
			// another package's runs.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			defer cancel()
			run := func(env []string, args ...string) (string, error) { return runInDevDir(ctx, root, dev, env, args...) }
			kubectl := func(args ...string) (string, error) {
				return run(nil, append([]string{filepath.Join(root, "bin", "kubectl"), "--kubeconfig", filepath.Join(dev, "kubeconfig")}, args...)...)
			}
			out, err := run([]string{"BACKEND=" + backend, "DEMO_KEEP=1"}, "hack/demo.sh")
			// Whatever happened, stop the environment the demo left up.
			defer func() {
				start := time.Now()
				out, err := run(nil, "hack/dev-env.sh", "down")
				assert.NoError(t, err, out)
				t.Logf("hack/dev-env.sh down took %s", time.Since(start).Round(100*time.Millisecond))
			}()
			require.NoError(t, err, out)
			assert.Contains(t, out, "DEMO SUCCEEDED: backed up a PVC to the "+backend+" backend")

			// The catalog files in the backend after the backup: the
			// storage's metadata, the Repository, the Snapshot and the
			// BackupSession, one YAML file each.
			files := section(out, "catalog files in the backend")
			for i, f := range files {
				files[i] = strings.TrimPrefix(f, "demo/") // the S3 prefix
			}
			assert.Contains(t, files, "metadata.yaml", out)
			assert.Contains(t, files, "pvc-backup-demo/repository.yaml", out)
			assertMatches(t, files, `^pvc-backup-demo/snapshots/demo-repository-pvc-backup-frequent-backup-\d+\.yaml$`)
			assertMatches(t, files, `^pvc-backup-demo/backupsessions/pvc-backup-frequent-backup-\d+\.yaml$`)

			// The Snapshot's progress and result: done, every file.
			rows := section(out, "the Snapshot's progress and result")
			require.Len(t, rows, 2, out)
			assert.Equal(t, []string{"NAME", "PHASE", "DONE", "FILES", "TOTAL", "SECONDS", "UPLOADED", "SIZE", "INTEGRITY", "RESTIC-ID"}, strings.Fields(rows[0]))
			// Sizes read "22.4 MiB": fields from the ends are the columns.
			row := strings.Fields(rows[1])
			require.GreaterOrEqual(t, len(row), 10, rows[1])
			assert.Equal(t, "Succeeded", row[1])
			assert.Equal(t, "100.00%", row[2], "done")
			assert.Equal(t, "304", row[3], "files done: the demo writes 304 files")
			assert.Equal(t, "true", row[len(row)-2], "integrity")
			assert.Regexp(t, `^[0-9a-f]{64}$`, row[len(row)-1], "restic's snapshot id")
			snapshot := row[0]

			assert.Regexp(t, `\d+ entries identical`, out)
			next := section(out, "What to try next:")
			require.NotEmpty(t, next, out)
			joined := strings.Join(next, "\n")
			for _, hint := range []string{"kubestash ls " + snapshot, "snapshots/" + snapshot + "/files", "docs/tutorial.md", "hack/dev-env.sh down"} {
				assert.Contains(t, joined, hint)
			}

			// The hints are true: each command, run as written from the
			// checkout, works; the plugin's lists the Snapshot's folders.
			commands := map[string]string{}
			for _, l := range next {
				what, command, ok := strings.Cut(strings.TrimPrefix(l, "- "), ": ")
				command = strings.TrimSpace(command)
				if ok && (strings.HasPrefix(command, "bin/kubectl ") || strings.HasPrefix(command, "PATH=")) {
					commands[what] = command
				}
			}
			require.Len(t, commands, 4, "the hints with a command:\n%s", joined)
			for what, command := range commands {
				got, err := run(nil, "bash", "-c", command)
				require.NoError(t, err, "%s: %s\n%s", what, command, got)
				if what == "the same with the plugin" {
					for _, f := range []string{"docs", "photos", "db", "empty"} {
						assert.Contains(t, got, f)
					}
				}
			}

			// Only an S3 storage has credentials: the local demo makes no
			// Secret for them.
			secrets, err := kubectl("get", "secrets", "-n", "demo", "-o", "name")
			require.NoError(t, err, secrets)
			if backend == "s3" {
				assert.Contains(t, secrets, "secret/s3-secret")
			} else {
				assert.NotContains(t, secrets, "s3-secret")
			}

			// The servers ran as the chart's pods with its RBAC, and
			// kube-apiserver refused them nothing.
			for _, c := range framework.ChartComponents {
				deploy := "deploy/" + framework.ChartName + "-" + c
				logs, err := kubectl("logs", "-n", framework.CatalogNamespace, deploy)
				require.NoError(t, err, logs)
				require.NotEmpty(t, logs, "the %s logs", deploy)
				for _, l := range strings.Split(logs, "\n") {
					assert.NotContains(t, l, "forbidden", "%s was refused something", deploy)
				}
			}
		})
	}
}

// section is the lines of out after the line starting with title, up to
// the next blank line.
func section(out, title string) []string {
	var lines []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case !in && strings.HasPrefix(l, title):
			in = true
		case in && strings.TrimSpace(l) == "":
			return lines
		case in:
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return lines
}

// assertMatches checks that one of lines matches the regular expression.
func assertMatches(t *testing.T, lines []string, expr string) {
	t.Helper()
	re := regexp.MustCompile(expr)
	for _, l := range lines {
		if re.MatchString(l) {
			return
		}
	}
	t.Errorf("no line matches %s in:\n%s", expr, strings.Join(lines, "\n"))
}

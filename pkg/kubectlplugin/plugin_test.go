package kubectlplugin

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	clienttesting "k8s.io/client-go/testing"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned/fake"
)

// run runs the plugin with args against c and returns stdout, stderr and
// the exit code.
func run(t *testing.T, c *Clients, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	o := &Options{
		IOStreams:    IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		NewClients:   func() (*Clients, error) { return c, nil },
		Now:          func() time.Time { return time.Unix(1796658509, 0) },
		PollInterval: time.Millisecond,
	}
	code := Run(newCommand(o), args, &errOut)
	return out.String(), errOut.String(), code
}

// server is a catalog server answering files and download from handlers.
func server(t *testing.T, h http.HandlerFunc) *Clients {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := &rest.Config{Host: srv.URL}
	c, err := versioned.NewForConfig(cfg)
	require.NoError(t, err)
	return &Clients{Client: c, Config: cfg, HTTP: srv.Client(), Namespace: "demo"}
}

func mtime(s string) *metav1.Time {
	t, _ := time.Parse(time.RFC3339, s)
	return &metav1.Time{Time: t}
}

func TestWriteTable(t *testing.T) {
	defer func(l *time.Location) { time.Local = l }(time.Local)
	time.Local = time.UTC
	items := []catalogv1alpha1.SnapshotFile{
		{Name: "d00", Path: "/initial/d00", Type: "dir", Mode: "0755", Permissions: "drwxr-xr-x", Mtime: mtime("2026-12-07T15:48:27Z")},
		{Name: "link-relative", Path: "/initial/link-relative", Type: "symlink", Mode: "0777", Permissions: "lrwxrwxrwx", UID: 4321, GID: 4321, Mtime: mtime("2026-12-07T15:48:27Z"), LinkTarget: "top.txt"},
		{Name: "top.txt", Path: "/initial/top.txt", Type: "file", Size: 3145728, Mode: "0644", UID: 1001, GID: 1001, Mtime: mtime("2024-01-03T12:08:05Z")},
	}
	var b bytes.Buffer
	require.NoError(t, WriteTable(&b, items, false))
	assert.Equal(t, `drwxr-xr-x    0    0       0 2026-12-07 15:48 d00
lrwxrwxrwx 4321 4321       0 2026-12-07 15:48 link-relative -> top.txt
-rw-r--r-- 1001 1001 3145728 2024-01-03 12:08 top.txt
`, b.String())

	b.Reset()
	require.NoError(t, WriteTable(&b, items[:1], true))
	assert.Equal(t, "drwxr-xr-x 0 0 0 2026-12-07 15:48 /initial/d00/\n", b.String(), "recursive: paths, directories with /")
}

func TestPermissions(t *testing.T) {
	for _, c := range []struct{ typ, mode, want string }{
		{"file", "0644", "-rw-r--r--"},
		{"dir", "0755", "drwxr-xr-x"},
		{"symlink", "0777", "lrwxrwxrwx"},
		{"file", "4755", "-rwsr-xr-x"},
		{"file", "2640", "-rw-r-S---"},
		{"dir", "1777", "drwxrwxrwt"},
		{"other", "0600", "?rw-------"},
	} {
		assert.Equal(t, c.want, permissions(c.typ, c.mode), "%s %s", c.typ, c.mode)
	}
}

type entry struct {
	name, link string
	typ        byte
	mode       int64
	body       string
}

func tarOf(t *testing.T, es ...entry) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body)), ModTime: time.Unix(1704283685, 0)}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		require.NoError(t, tw.WriteHeader(h))
		if e.typ == tar.TypeReg {
			_, err := tw.Write([]byte(e.body))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return &b
}

func TestExtractTar(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	n, err := ExtractTar(tarOf(t,
		entry{name: "./", typ: tar.TypeDir, mode: 0o755},
		entry{name: "a/", typ: tar.TypeDir, mode: 0o500},
		entry{name: "a/x.txt", typ: tar.TypeReg, mode: 0o640, body: "hello"},
		entry{name: "deep/er/y.txt", typ: tar.TypeReg, mode: 0o600, body: "no dir entries before it"},
		entry{name: "a/link", typ: tar.TypeSymlink, link: "x.txt"},
		entry{name: "up", typ: tar.TypeSymlink, link: "a/../deep"},
		entry{name: "hard", typ: tar.TypeLink, link: "a/x.txt"},
	), dir, ExtractOptions{})
	require.NoError(t, err)
	assert.Equal(t, 6, n)
	b, err := os.ReadFile(filepath.Join(dir, "a", "x.txt"))
	require.NoError(t, err)
	assert.Equal(t, "hello", string(b))
	fi, err := os.Stat(filepath.Join(dir, "a", "x.txt"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
	assert.Equal(t, int64(1704283685), fi.ModTime().Unix())
	fi, err = os.Stat(filepath.Join(dir, "a"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o500), fi.Mode().Perm(), "a read-only directory gets its mode after its entries")
	assert.Equal(t, int64(1704283685), fi.ModTime().Unix())
	l, err := os.Readlink(filepath.Join(dir, "a", "link"))
	require.NoError(t, err)
	assert.Equal(t, "x.txt", l)
	b, err = os.ReadFile(filepath.Join(dir, "hard"))
	require.NoError(t, err)
	assert.Equal(t, "hello", string(b))
	require.NoError(t, os.Chmod(filepath.Join(dir, "a"), 0o700))
}

func TestExtractTarRefusesEscapes(t *testing.T) {
	for name, es := range map[string][]entry{
		"..":                    {{name: "../evil", typ: tar.TypeReg, mode: 0o644, body: "x"}},
		"inner ..":              {{name: "a/../../evil", typ: tar.TypeReg, mode: 0o644, body: "x"}},
		"absolute":              {{name: "/tmp/evil", typ: tar.TypeReg, mode: 0o644, body: "x"}},
		"through a symlink":     {{name: "l", typ: tar.TypeSymlink, link: "sub"}, {name: "sub/", typ: tar.TypeDir, mode: 0o755}, {name: "l/x", typ: tar.TypeReg, mode: 0o644, body: "x"}},
		"hard link out":         {{name: "h", typ: tar.TypeLink, link: "../../etc/passwd"}},
		"hard link to nothing":  {{name: "h", typ: tar.TypeLink, link: "missing"}},
		"file over a directory": {{name: "d/", typ: tar.TypeDir, mode: 0o755}, {name: "d", typ: tar.TypeReg, mode: 0o644}},
	} {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "out")
			_, err := ExtractTar(tarOf(t, es...), dir, ExtractOptions{KeepOutsideLinks: true})
			assert.Error(t, err)
			t.Log(err)
			ents, _ := os.ReadDir(parent)
			assert.Len(t, ents, 1, "nothing beside the directory")
		})
	}
}

// TestExtractTarOutsideLinks: symlinks out of the directory are skipped
// with a warning, or created with KeepOutsideLinks; a path through one is
// refused either way.
func TestExtractTarOutsideLinks(t *testing.T) {
	links := []entry{
		{name: "out", typ: tar.TypeSymlink, link: "../.."},
		{name: "a/b/deep", typ: tar.TypeSymlink, link: "../../../etc"},
		{name: "abs", typ: tar.TypeSymlink, link: "/etc/passwd"},
		{name: "in", typ: tar.TypeSymlink, link: "a/b/../b"},
	}
	dir := filepath.Join(t.TempDir(), "out")
	var warnings []string
	n, err := ExtractTar(tarOf(t, links...), dir, ExtractOptions{Warn: func(s string) { warnings = append(warnings, s) }})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, []string{
		"skipped symlink out -> ../..: the target is outside the directory (--keep-outside-links creates it)",
		"skipped symlink a/b/deep -> ../../../etc: the target is outside the directory (--keep-outside-links creates it)",
		"skipped symlink abs -> /etc/passwd: an absolute target is refused (--keep-outside-links creates it)",
	}, warnings)
	_, err = os.Lstat(filepath.Join(dir, "abs"))
	assert.True(t, os.IsNotExist(err))

	dir = filepath.Join(t.TempDir(), "out")
	n, err = ExtractTar(tarOf(t, links...), dir, ExtractOptions{KeepOutsideLinks: true})
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	l, err := os.Readlink(filepath.Join(dir, "abs"))
	require.NoError(t, err)
	assert.Equal(t, "/etc/passwd", l)

	// Writing through an outside link is refused even when it was kept.
	_, err = ExtractTar(tarOf(t, append(links, entry{name: "out/evil", typ: tar.TypeReg, mode: 0o644, body: "x"})...),
		filepath.Join(t.TempDir(), "out"), ExtractOptions{KeepOutsideLinks: true})
	assert.ErrorContains(t, err, "out/evil: a path through the symlink out is refused")
}

func TestLsFollowsContinue(t *testing.T) {
	defer func(l *time.Location) { time.Local = l }(time.Local)
	time.Local = time.UTC
	var queries []string
	c := server(t, func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/apis/catalog.kubestash.com/v1alpha1/namespaces/demo/snapshots/snap-1/files", r.URL.Path)
		queries = append(queries, r.URL.RawQuery)
		q := r.URL.Query()
		l := catalogv1alpha1.SnapshotFileList{TypeMeta: metav1.TypeMeta{Kind: "SnapshotFileList"}, Path: q.Get("path")}
		if q.Get("continue") == "" {
			l.Continue = "page2"
			l.Items = []catalogv1alpha1.SnapshotFile{{Name: "a", Path: "/data/a", Type: "dir", Mode: "0755", Mtime: mtime("2026-01-02T03:04:05Z")}}
		} else {
			l.Items = []catalogv1alpha1.SnapshotFile{{Name: "b.txt", Path: "/data/a/b.txt", Type: "file", Size: 12, Mode: "0600", UID: 7, GID: 8, Mtime: mtime("2026-01-02T03:04:05Z")}}
		}
		w.Header().Set("Content-Type", "application/json")
		require.NoError(t, json.NewEncoder(w).Encode(l))
	})
	out, stderr, code := run(t, c, "ls", "snap-1", "data/", "-R")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, []string{"path=%2Fdata&recursive=true", "continue=page2&path=%2Fdata&recursive=true"}, queries)
	assert.Equal(t, `drwxr-xr-x 0 0  0 2026-01-02 03:04 /data/a/
-rw------- 7 8 12 2026-01-02 03:04 /data/a/b.txt
`, out)
}

func status(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg})
}

func TestErrorsAsKubectl(t *testing.T) {
	c := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/files"):
			status(w, 404, metav1.StatusReasonNotFound, "path /nope not found in Snapshot snap-1")
		default:
			status(w, 403, metav1.StatusReasonForbidden, `snapshots.catalog.kubestash.com "snap-1" is forbidden: User "viewer" cannot get resource "snapshots/download"`)
		}
	})
	out, stderr, code := run(t, c, "ls", "snap-1", "/nope")
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Equal(t, "Error from server (NotFound): path /nope not found in Snapshot snap-1\n", stderr)
	_, stderr, code = run(t, c, "cat", "snap-1", "/f")
	assert.Equal(t, 1, code)
	assert.Equal(t, "Error from server (Forbidden): snapshots.catalog.kubestash.com \"snap-1\" is forbidden: User \"viewer\" cannot get resource \"snapshots/download\"\n", stderr)
	_, stderr, code = run(t, c, "cat", "snap-1")
	assert.Equal(t, 1, code)
	assert.Equal(t, "error: accepts 2 arg(s), received 1\n", stderr)
}

func TestCatAndDownload(t *testing.T) {
	dirTar := tarOf(t, entry{name: "r/", typ: tar.TypeDir, mode: 0o755}, entry{name: "r/x.txt", typ: tar.TypeReg, mode: 0o644, body: "inside"}).Bytes()
	c := server(t, func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/apis/catalog.kubestash.com/v1alpha1/namespaces/demo/snapshots/snap-1/download", r.URL.Path)
		switch r.URL.Query().Get("path") {
		case "/data/f.txt":
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = io.WriteString(w, "file bytes\n")
		case "/data":
			w.Header().Set("Content-Type", "application/x-tar")
			_, _ = w.Write(dirTar)
		default:
			status(w, 404, metav1.StatusReasonNotFound, "path "+r.URL.Query().Get("path")+" not found in Snapshot snap-1")
		}
	})
	out, _, code := run(t, c, "cat", "snap-1", "/data/f.txt")
	assert.Equal(t, 0, code)
	assert.Equal(t, "file bytes\n", out)

	_, stderr, code := run(t, c, "cat", "snap-1", "/data")
	assert.Equal(t, 1, code)
	assert.Equal(t, "error: /data is a directory; use download to get it\n", stderr)

	wd := t.TempDir()
	t.Chdir(wd)
	_, stderr, code = run(t, c, "download", "snap-1", "/data/f.txt")
	require.Equal(t, 0, code, stderr)
	b, err := os.ReadFile(filepath.Join(wd, "f.txt"))
	require.NoError(t, err)
	assert.Equal(t, "file bytes\n", string(b), "a file goes to its base name")
	assert.Contains(t, stderr, "/data/f.txt: 11 bytes written to f.txt")

	_, stderr, code = run(t, c, "download", "snap-1", "/data", "-o", "restored")
	require.Equal(t, 0, code, stderr)
	b, err = os.ReadFile(filepath.Join(wd, "restored", "r", "x.txt"))
	require.NoError(t, err)
	assert.Equal(t, "inside", string(b))
	assert.Contains(t, stderr, "/data: 2 entries extracted into restored")

	out, _, code = run(t, c, "download", "snap-1", "/data", "-o", "-")
	assert.Equal(t, 0, code)
	assert.Equal(t, string(dirTar), out, "-o - writes the tar as it comes")

	_, stderr, code = run(t, c, "download", "snap-1", "/missing", "-o", "m")
	assert.Equal(t, 1, code)
	assert.Equal(t, "Error from server (NotFound): path /missing not found in Snapshot snap-1\n", stderr)
	_, err = os.Stat(filepath.Join(wd, "m"))
	assert.True(t, os.IsNotExist(err), "nothing written on an error")
}

func bc(sessions ...string) *corev1alpha1.BackupConfiguration {
	b := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "pvc-backup", Namespace: "demo"}}
	for _, s := range sessions {
		b.Spec.Sessions = append(b.Spec.Sessions, corev1alpha1.Session{SessionConfig: corev1alpha1.SessionConfig{Name: s}})
	}
	return b
}

func fakeClients(objs ...runtime.Object) (*Clients, *fake.Clientset) {
	f := fake.NewSimpleClientset(objs...)
	return &Clients{Client: f, Namespace: "demo"}, f
}

func TestTrigger(t *testing.T) {
	b := bc("daily")
	b.Spec.Sessions[0].RetryConfig = &corev1alpha1.RetryConfig{MaxRetry: 2}
	b.Spec.Sessions[0].BackupTimeout = &metav1.Duration{Duration: time.Hour}
	c, f := fakeClients(b)
	out, stderr, code := run(t, c, "trigger", "pvc-backup")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "backupsession.catalog.kubestash.com/pvc-backup-daily-1796658509 created\n", out)
	bs, err := f.CatalogV1alpha1().BackupSessions("demo").Get(t.Context(), "pvc-backup-daily-1796658509", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{catalogv1alpha1.LabelInvokerName: "pvc-backup"}, bs.Labels)
	assert.Equal(t, "core.kubestash.com", *bs.Spec.Invoker.APIGroup)
	assert.Equal(t, "BackupConfiguration", bs.Spec.Invoker.Kind)
	assert.Equal(t, "pvc-backup", bs.Spec.Invoker.Name)
	assert.Equal(t, "daily", bs.Spec.Session)
	assert.Equal(t, int32(2), bs.Spec.RetryLeft)
	assert.Equal(t, time.Hour, bs.Spec.BackupTimeout.Duration)

	c, _ = fakeClients(bc("daily", "weekly"))
	_, stderr, code = run(t, c, "trigger", "pvc-backup")
	assert.Equal(t, 1, code)
	assert.Equal(t, "error: BackupConfiguration pvc-backup has sessions daily, weekly: choose one with --session\n", stderr)
	out, _, code = run(t, c, "trigger", "pvc-backup", "--session", "weekly")
	assert.Equal(t, 0, code)
	assert.Equal(t, "backupsession.catalog.kubestash.com/pvc-backup-weekly-1796658509 created\n", out)
	_, stderr, code = run(t, c, "trigger", "pvc-backup", "--session", "hourly")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `has no session "hourly"`)

	_, stderr, code = run(t, c, "trigger", "nope")
	assert.Equal(t, 1, code)
	assert.Equal(t, "Error from server (NotFound): backupconfigurations.core.kubestash.com \"nope\" not found\n", stderr)
}

func TestPauseResume(t *testing.T) {
	c, f := fakeClients(bc("daily"))
	paused := func() bool {
		b, err := f.CoreV1alpha1().BackupConfigurations("demo").Get(t.Context(), "pvc-backup", metav1.GetOptions{})
		require.NoError(t, err)
		return b.Spec.Paused
	}
	out, stderr, code := run(t, c, "pause", "pvc-backup")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "backupconfiguration.core.kubestash.com/pvc-backup paused (spec.paused: false -> true)\n", out)
	assert.True(t, paused())
	out, _, _ = run(t, c, "pause", "pvc-backup")
	assert.Equal(t, "backupconfiguration.core.kubestash.com/pvc-backup unchanged (spec.paused: true)\n", out)
	out, _, code = run(t, c, "resume", "pvc-backup")
	assert.Equal(t, 0, code)
	assert.Equal(t, "backupconfiguration.core.kubestash.com/pvc-backup resumed (spec.paused: true -> false)\n", out)
	assert.False(t, paused())

	// The controller wrote the status meanwhile: read again and retry.
	conflicts := 1
	f.PrependReactor("patch", "backupconfigurations", func(clienttesting.Action) (bool, runtime.Object, error) {
		if conflicts == 0 {
			return false, nil, nil
		}
		conflicts--
		return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "core.kubestash.com", Resource: "backupconfigurations"}, "pvc-backup", errors.New("the object has been modified"))
	})
	out, stderr, code = run(t, c, "pause", "pvc-backup")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "backupconfiguration.core.kubestash.com/pvc-backup paused (spec.paused: false -> true)\n", out)
	assert.True(t, paused())
	assert.Equal(t, 0, conflicts)
}

func restoreObjects() []runtime.Object {
	return []runtime.Object{
		&catalogv1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "snap-1", Namespace: "demo"},
			Spec:   catalogv1alpha1.SnapshotSpec{Repository: "s3-repo"},
			Status: catalogv1alpha1.SnapshotStatus{Phase: catalogv1alpha1.SnapshotSucceeded}},
		&catalogv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "s3-repo", Namespace: "demo"},
			Spec: catalogv1alpha1.RepositorySpec{EncryptionSecret: &kmapi.ObjectReference{Name: "encrypt-secret"}}},
	}
}

func TestRestoreRequest(t *testing.T) {
	c, f := fakeClients(restoreObjects()...)
	out, stderr, code := run(t, c, "restore", "snap-1", "--to-pvc", "restored", "--include", "/initial/d00", "--include", "initial/d01/")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "restoresession.catalog.kubestash.com/restored-restore-1796658509 created\n", out)
	rs, err := f.CatalogV1alpha1().RestoreSessions("demo").Get(t.Context(), "restored-restore-1796658509", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, &kmapi.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "restored", Namespace: "demo"}, rs.Spec.Target)
	assert.Equal(t, catalogv1alpha1.RestoreDataSource{Repository: "s3-repo", Snapshot: "snap-1",
		EncryptionSecret: &kmapi.ObjectReference{Name: "encrypt-secret", Namespace: "demo"}}, rs.Spec.DataSource)
	require.Len(t, rs.Spec.Addon.Tasks, 1)
	assert.Equal(t, "pvc-addon", rs.Spec.Addon.Name)
	assert.Equal(t, "logical-backup-restore", rs.Spec.Addon.Tasks[0].Name)
	assert.JSONEq(t, `{"include":["/initial/d00","/initial/d01"]}`, string(rs.Spec.Addon.Tasks[0].Params.Raw))

	_, stderr, code = run(t, c, "restore", "snap-1", "--to-pvc", "other", "--encryption-secret", "sec/pw", "--name", "mine")
	require.Equal(t, 0, code, stderr)
	rs, err = f.CatalogV1alpha1().RestoreSessions("demo").Get(t.Context(), "mine", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, &kmapi.ObjectReference{Name: "pw", Namespace: "sec"}, rs.Spec.DataSource.EncryptionSecret)
	assert.Nil(t, rs.Spec.Addon.Tasks[0].Params, "no params without include or exclude")

	_, stderr, code = run(t, c, "restore", "snap-1")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "error: --to-pvc is required")
	_, stderr, code = run(t, c, "restore", "gone", "--to-pvc", "x")
	assert.Equal(t, 1, code)
	assert.Equal(t, "Error from server (NotFound): snapshots.catalog.kubestash.com \"gone\" not found\n", stderr)
}

// TestRestoreWait follows a RestoreSession through its phases, printing
// each change, and fails with the component's error when it fails.
func TestRestoreWait(t *testing.T) {
	for _, final := range []catalogv1alpha1.RestorePhase{catalogv1alpha1.RestoreSucceeded, catalogv1alpha1.RestoreFailed} {
		t.Run(string(final), func(t *testing.T) {
			c, f := fakeClients(restoreObjects()...)
			steps := []catalogv1alpha1.RestoreSessionStatus{
				{},
				{Phase: catalogv1alpha1.RestoreRunning, Components: map[string]catalogv1alpha1.RestoreComponent{"dump": {Phase: catalogv1alpha1.RestoreRunning,
					Progress: &catalogv1alpha1.RestoreProgress{PercentDone: "42.00%", FilesDone: 4, TotalFiles: 10, RestoreDone: "1 MiB", Total: "2.4 MiB"}}}},
				{Phase: catalogv1alpha1.RestoreRunning, Components: map[string]catalogv1alpha1.RestoreComponent{"dump": {Phase: catalogv1alpha1.RestoreRunning,
					Progress: &catalogv1alpha1.RestoreProgress{PercentDone: "42.00%", FilesDone: 4, TotalFiles: 10, RestoreDone: "1 MiB", Total: "2.4 MiB"}}}},
				{Phase: final, Duration: "3s", Components: map[string]catalogv1alpha1.RestoreComponent{"dump": {Phase: final, Error: map[bool]string{true: "restic: wrong password"}[final == catalogv1alpha1.RestoreFailed]}}},
			}
			gets := 0
			f.PrependReactor("get", "restoresessions", func(a clienttesting.Action) (bool, runtime.Object, error) {
				obj, err := f.Tracker().Get(a.GetResource(), a.GetNamespace(), a.(clienttesting.GetAction).GetName())
				if err != nil {
					return true, nil, err
				}
				rs := obj.(*catalogv1alpha1.RestoreSession).DeepCopy()
				rs.Status = steps[min(gets, len(steps)-1)]
				gets++
				return true, rs, nil
			})
			out, stderr, code := run(t, c, "restore", "snap-1", "--to-pvc", "restored", "--wait")
			assert.Equal(t, `restoresession.catalog.kubestash.com/restored-restore-1796658509 created
restored-restore-1796658509: Pending
restored-restore-1796658509: Running; dump Running 42.00% (4/10 files, 1 MiB/2.4 MiB)
restored-restore-1796658509: `+string(final)+` in 3s; dump `+string(final)+`
`, out)
			if final == catalogv1alpha1.RestoreSucceeded {
				assert.Equal(t, 0, code, stderr)
			} else {
				assert.Equal(t, 1, code)
				assert.Equal(t, "error: RestoreSession restored-restore-1796658509 Failed: dump: restic: wrong password\n", stderr)
			}
		})
	}
}

func TestUnlock(t *testing.T) {
	token := time.Unix(1796658509, 0).UTC().Format(time.RFC3339Nano)
	job := catalogv1alpha1.UnlockJobName("s3-repo", token)
	repo := func(answered bool, status metav1.ConditionStatus, msg string) *catalogv1alpha1.Repository {
		r := &catalogv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "s3-repo", Namespace: "demo"}}
		if answered {
			// As the controller leaves it once its Job ended.
			r.Annotations = map[string]string{catalogv1alpha1.AnnotationUnlocked: token}
			r.Status.Conditions = []kmapi.Condition{{Type: catalogv1alpha1.TypeStaleLocksRemoved, Status: status, Message: msg}}
		}
		return r
	}

	c, f := fakeClients(repo(false, "", ""))
	out, stderr, code := run(t, c, "unlock", "s3-repo", "--wait=false")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "repository.catalog.kubestash.com/s3-repo: unlock requested (Job "+job+")\n", out)
	r, err := f.CatalogV1alpha1().Repositories("demo").Get(t.Context(), "s3-repo", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, token, r.Annotations[catalogv1alpha1.AnnotationUnlockRequest], "the request the controller answers")

	c, _ = fakeClients(repo(true, metav1.ConditionTrue, "Job "+job+" completed: repository/v1/daily/dump: removed 1 stale lock(s), kept 0 lock(s) of a restic that may still run"))
	out, stderr, code = run(t, c, "unlock", "s3-repo")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "repository.catalog.kubestash.com/s3-repo: unlock requested (Job "+job+")\n"+
		"Job "+job+" completed:\n  repository/v1/daily/dump: removed 1 stale lock(s), kept 0 lock(s) of a restic that may still run\n", out)

	c, _ = fakeClients(repo(true, metav1.ConditionFalse, "Job "+job+" failed: pod x container unlock: exit code 1: wrong password"))
	_, stderr, code = run(t, c, "unlock", "s3-repo")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "wrong password")

	c, _ = fakeClients(repo(false, "", ""))
	_, stderr, code = run(t, c, "unlock", "s3-repo", "--timeout=50ms")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "timed out waiting for the unlock of Repository s3-repo (is the controller running?)")

	_, stderr, code = run(t, c, "unlock", "nope")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `"nope" not found`)
}

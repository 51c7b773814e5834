package browse

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backenddirs"
	storagelisters "kubestash.dev/kubestash/pkg/generated/listers/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/restic"
	"kubestash.dev/kubestash/pkg/restic/restictest"
)

func TestCleanPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      string
	}{
		{in: "", want: "/"},
		{in: "/", want: "/"},
		{in: "/a/b/", want: "/a/b"},
		{in: "//a/./b", want: "/a/b"},
		{in: "/a..b/c", want: "/a..b/c"},
		{in: "a/b", err: "must be absolute"},
		{in: "/a/../b", err: "must not contain .."},
		{in: "/..", err: "must not contain .."},
		{in: "/a\x00b", err: "NUL"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := CleanPath(tc.in)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestModes(t *testing.T) {
	for _, tc := range []struct {
		typ         string
		mode        os.FileMode
		unix, perms string
	}{
		{"file", 0o644, "0644", "-rw-r--r--"},
		{"dir", os.ModeDir | 0o755, "0755", "drwxr-xr-x"},
		{"symlink", os.ModeSymlink | 0o777, "0777", "lrwxrwxrwx"},
		{"file", os.ModeSetuid | 0o755, "4755", "-rwsr-xr-x"},
		{"file", os.ModeSetgid | 0o640, "2640", "-rw-r-S---"},
		{"dir", os.ModeDir | os.ModeSticky | 0o1777&0o777, "1777", "drwxrwxrwt"},
		{"fifo", os.ModeNamedPipe | 0o600, "0600", "prw-------"},
	} {
		t.Run(tc.perms, func(t *testing.T) {
			f := fileOf("/x", restic.Node{Type: tc.typ, Mode: tc.mode})
			assert.Equal(t, tc.unix, f.Mode)
			assert.Equal(t, tc.perms, f.Permissions)
		})
	}
}

func TestContinueToken(t *testing.T) {
	c := continueToken{Path: "/a", Recursive: true, Offset: 200}
	got, err := decodeContinue(c.encode())
	require.NoError(t, err)
	assert.Equal(t, c, got)
	for _, bad := range []string{"not base64!", "e30", "eyJvIjotMX0"} { // "", {}, {"o":-1}
		_, err := decodeContinue(bad)
		if bad == "e30" {
			assert.NoError(t, err, "an empty token object is offset 0")
			continue
		}
		assert.Error(t, err, bad)
	}
}

// getter serves objects by name, as the registry's stores do.
type getter map[string]runtime.Object

func (g getter) Get(_ context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	if o, ok := g[name]; ok {
		return o, nil
	}
	return nil, apierrors.NewNotFound(catalog.Resource("things"), name)
}

// fixture is a local BackupStorage holding one restic repository with one
// backup of a generated dataset, and a Browser over it.
type fixture struct {
	b     *Browser
	src   string
	want  map[string]restictest.Entry
	snaps getter
}

func newFixture(t *testing.T, maxConcurrent int) *fixture {
	t.Helper()
	bin := restictest.Binary(t)
	base := t.TempDir()
	src := filepath.Join(base, "data")
	_, err := restictest.Generate(src, restictest.Dataset{SmallFiles: 25, SmallMax: 4 << 10, LargeFiles: 1, LargeSize: 1 << 20, Seed: 3})
	require.NoError(t, err)
	// Symlinks in two more folders (the root and a new one): a recursive
	// page reads the link targets of several folders.
	require.NoError(t, os.MkdirAll(filepath.Join(src, "zz-links"), 0o755))
	require.NoError(t, os.Symlink("../zz-target", filepath.Join(src, "zz-links", "up")))
	require.NoError(t, os.Symlink("zz-links/up", filepath.Join(src, "zz-root-link")))
	want, err := restictest.Digest(src)
	require.NoError(t, err)

	backend := filepath.Join(base, "backend")
	const comp = "repository/v1/s/dump"
	r, err := restic.New(restic.Options{Binary: bin, Password: "pw",
		Location:   restic.Location{Provider: restic.ProviderLocal, LocalDir: backend, Path: "/repo/" + comp},
		ScratchDir: filepath.Join(base, "scratch")})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, r.Init(ctx))
	sum, err := r.Backup(ctx, []string{src}, nil, "host-0", nil)
	require.NoError(t, err)

	snap := &catalog.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "snap", Namespace: "ns"},
		Spec:       catalog.SnapshotSpec{Repository: "repo"},
		Status: catalog.SnapshotStatus{Phase: catalog.SnapshotSucceeded, Components: map[string]catalog.Component{
			Component: {Path: comp, ResticStats: []catalog.ResticStats{{Summary: &catalog.ResticSummary{ID: sum.SnapshotID, HostPath: src}}}},
		}},
	}
	running := snap.DeepCopy()
	running.Name, running.Status.Phase = "running", catalog.SnapshotRunning
	repo := &catalog.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: "ns"},
		Spec: catalog.RepositorySpec{StorageRef: kmapi.ObjectReference{Name: "local"}, Path: "/repo",
			EncryptionSecret: &kmapi.ObjectReference{Name: "enc"}},
	}
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	require.NoError(t, idx.Add(&storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Name: "local", Namespace: "ns"},
		Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderLocal,
			Local: &storagev1alpha1.LocalSpec{MountPath: backend}}},
	}))
	dirs, err := backenddirs.Parse(backend)
	require.NoError(t, err)
	snaps := getter{"snap": snap, "running": running}
	b, err := New(Options{
		Snapshots:      snaps,
		Repositories:   getter{"repo": repo},
		BackupStorages: storagelisters.NewBackupStorageLister(idx),
		Secret: func(_ context.Context, ns, name string) (*corev1.Secret, error) {
			if ns == "ns" && name == "enc" {
				return &corev1.Secret{Data: map[string][]byte{"RESTIC_PASSWORD": []byte("pw")}}, nil
			}
			return nil, apierrors.NewForbidden(corev1.Resource("secrets"), name, errors.New("no"))
		},
		LocalDirs:     dirs,
		Restic:        restic.Options{Binary: bin},
		ScratchDir:    filepath.Join(base, "browse"),
		MaxConcurrent: maxConcurrent,
	})
	require.NoError(t, err)
	return &fixture{b: b, src: src, want: want, snaps: snaps}
}

func TestBrowseLocal(t *testing.T) {
	f := newFixture(t, 1)
	ctx := context.Background()

	t.Run("one directory, with link targets", func(t *testing.T) {
		l, err := f.b.List(ctx, "snap", &catalog.SnapshotFilesOptions{Path: "/"})
		require.NoError(t, err)
		ents, err := os.ReadDir(f.src)
		require.NoError(t, err)
		require.Len(t, l.Items, len(ents))
		for _, it := range l.Items {
			w := f.want[strings.TrimPrefix(it.Path, "/")]
			assert.Equal(t, w.Type, it.Type, it.Path)
			assert.Equal(t, w.Link, it.LinkTarget, it.Path)
			if w.Type == "file" {
				assert.Equal(t, w.Size, it.Size, it.Path)
			}
		}
		assert.Empty(t, l.Continue)
	})

	t.Run("a file path lists the file", func(t *testing.T) {
		var file string
		for p, e := range f.want {
			if e.Type == "file" && strings.Contains(p, "/") {
				file = "/" + p
				break
			}
		}
		l, err := f.b.List(ctx, "snap", &catalog.SnapshotFilesOptions{Path: file})
		require.NoError(t, err)
		require.Len(t, l.Items, 1)
		assert.Equal(t, file, l.Items[0].Path)
	})

	t.Run("recursive pages cover the tree once", func(t *testing.T) {
		for _, c := range []struct {
			name        string
			maxLinkDirs int
			limit       int64
		}{
			{name: "limit 7", maxLinkDirs: MaxLinkDirs, limit: 7},
			// One folder of link targets a page: pages end before the
			// symlink of a second folder, and still cover the tree.
			{name: "one folder of links a page", maxLinkDirs: 1, limit: 1000},
		} {
			t.Run(c.name, func(t *testing.T) {
				defer func(m int) { MaxLinkDirs = m }(MaxLinkDirs)
				MaxLinkDirs = c.maxLinkDirs
				seen := map[string]bool{}
				o := &catalog.SnapshotFilesOptions{Path: "/", Recursive: true, Limit: c.limit}
				pages := 0
				for {
					l, err := f.b.List(ctx, "snap", o)
					require.NoError(t, err)
					pages++
					linkDirs := map[string]bool{}
					for _, it := range l.Items {
						assert.False(t, seen[it.Path], it.Path)
						seen[it.Path] = true
						w := f.want[strings.TrimPrefix(it.Path, "/")]
						assert.Equal(t, w.Type, it.Type, it.Path)
						assert.Equal(t, w.Link, it.LinkTarget, it.Path)
						if it.Type == "symlink" {
							linkDirs[path.Dir(it.Path)] = true
						}
					}
					assert.LessOrEqual(t, len(linkDirs), c.maxLinkDirs)
					if l.Continue == "" {
						break
					}
					o.Continue = l.Continue
				}
				assert.Len(t, seen, len(f.want))
				if c.maxLinkDirs == 1 {
					assert.Greater(t, pages, 1, "the symlinks of the dataset are in more than one folder")
				}
			})
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			snap  string
			o     *catalog.SnapshotFilesOptions
			check func(error) bool
			msg   string
		}{
			{"missing path", "snap", &catalog.SnapshotFilesOptions{Path: "/nope/deeper"}, apierrors.IsNotFound, "/nope/deeper"},
			{"missing path, recursive", "snap", &catalog.SnapshotFilesOptions{Path: "/nope", Recursive: true}, apierrors.IsNotFound, "/nope"},
			{"dot dot", "snap", &catalog.SnapshotFilesOptions{Path: "/a/../b"}, apierrors.IsBadRequest, ".."},
			{"not succeeded", "running", &catalog.SnapshotFilesOptions{}, apierrors.IsConflict, "Running"},
			{"no such snapshot", "gone", &catalog.SnapshotFilesOptions{}, apierrors.IsNotFound, "gone"},
			{"continue of another listing", "snap", &catalog.SnapshotFilesOptions{Path: "/x", Continue: continueToken{Path: "/"}.encode()}, apierrors.IsBadRequest, "another listing"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := f.b.List(ctx, tc.snap, tc.o)
				assert.True(t, tc.check(err), "%v", err)
				assert.ErrorContains(t, err, tc.msg)
			})
		}
	})

	t.Run("download a file", func(t *testing.T) {
		var big string
		for p, e := range f.want {
			if e.Type == "file" && (big == "" || e.Size > f.want[big].Size) {
				big = p
			}
		}
		d, err := f.b.OpenDownload(ctx, "snap", &catalog.SnapshotDownloadOptions{Path: "/" + big})
		require.NoError(t, err)
		// One slot: a second browse meanwhile is told to come back.
		_, err = f.b.List(ctx, "snap", &catalog.SnapshotFilesOptions{})
		assert.True(t, apierrors.IsTooManyRequests(err), "%v", err)
		h := sha256.New()
		require.NoError(t, d.WriteTo(ctx, h))
		d.Close()
		assert.Equal(t, f.want[big].Size, d.Size)
		assert.Equal(t, "application/octet-stream", d.ContentType)
		assert.Equal(t, f.want[big].SHA256, hex.EncodeToString(h.Sum(nil)))
	})

	t.Run("download the root as tar", func(t *testing.T) {
		d, err := f.b.OpenDownload(ctx, "snap", &catalog.SnapshotDownloadOptions{Path: "/"})
		require.NoError(t, err)
		defer d.Close()
		var buf bytes.Buffer
		require.NoError(t, d.WriteTo(ctx, &buf))
		assert.Equal(t, "application/x-tar", d.ContentType)
		tr := tar.NewReader(&buf)
		n := 0
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			w, ok := f.want[strings.TrimSuffix(hdr.Name, "/")]
			require.True(t, ok, hdr.Name)
			n++
			if hdr.Typeflag == tar.TypeSymlink {
				assert.Equal(t, w.Link, hdr.Linkname, hdr.Name)
			}
			if hdr.Typeflag == tar.TypeReg {
				b, err := io.ReadAll(tr)
				require.NoError(t, err)
				s := sha256.Sum256(b)
				assert.Equal(t, w.SHA256, hex.EncodeToString(s[:]), hdr.Name)
			}
		}
		assert.Equal(t, len(f.want), n)
	})

	t.Run("download of a missing file is 404 naming it", func(t *testing.T) {
		_, err := f.b.OpenDownload(ctx, "snap", &catalog.SnapshotDownloadOptions{Path: "/missing.bin"})
		assert.True(t, apierrors.IsNotFound(err), "%v", err)
		assert.ErrorContains(t, err, "path /missing.bin not found in Snapshot snap")
	})
}

package layout

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kubestash.dev/kubestash/pkg/backend"
)

// recorder remembers every List prefix, to prove what discovery reads.
type recorder struct {
	backend.Backend
	mu    sync.Mutex
	lists []string
}

func (r *recorder) List(ctx context.Context, prefix string, o backend.ListOptions) (backend.ListResult, error) {
	r.mu.Lock()
	r.lists = append(r.lists, prefix)
	r.mu.Unlock()
	return r.Backend.List(ctx, prefix, o)
}

func newBackend(t *testing.T, files ...string) *recorder {
	t.Helper()
	b, err := backend.NewLocal(t.TempDir())
	require.NoError(t, err)
	for _, f := range files {
		_, err := b.Put(context.Background(), f, []byte("x: y\n"), backend.PutOptions{})
		require.NoError(t, err)
	}
	return &recorder{Backend: b}
}

// An upstream bucket: metadata.yaml without a repository list.
var upstreamFiles = []string{
	"demo/pvc-backup/repository.yaml",
	"demo/pvc-backup/snapshots/s1.yaml",
	"demo/pvc-backup/snapshots/s2.yaml",
	"demo/pvc-backup/repository/v1/frequent/dump/config",
	"demo/pvc-backup/repository/v1/frequent/dump/data/00/0011",
	"team/x/y/repository.yaml",
	"team/x/y/backupsessions/b1.yaml",
	"team/notes.txt",
	"loose/snapshots/not-a-repo.yaml",
}

func TestWalkUpstreamBucket(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, upstreamFiles...)
	_, err := b.Put(ctx, MetadataFile, []byte("apiVersion: config.kubestash.com/v1alpha1\nkind: BackendMeta\ncreationTimestamp: \"2023-12-07T13:54:09Z\"\noperatorVersion: v0.2.0\n"), backend.PutOptions{})
	require.NoError(t, err)

	dirs, err := Discover(ctx, b)
	require.NoError(t, err)
	assert.Equal(t, []string{"demo/pvc-backup", "team/x/y"}, dirs)
	for _, p := range b.lists {
		assert.NotContains(t, p, "/"+ResticDir+"/", "restic data is never listed")
		assert.False(t, strings.HasPrefix(p, "demo/pvc-backup/") && p != "demo/pvc-backup/", "no descent below a repository: %s", p)
	}
}

func TestDiscoverUsesMetadataList(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, upstreamFiles...)
	_, err := EnsureMeta(ctx, b, "test")
	require.NoError(t, err)
	require.NoError(t, AddRepository(ctx, b, RepositoryInfo{Name: "r", Namespace: "demo", Path: "/demo/pvc-backup"}))
	require.NoError(t, AddRepository(ctx, b, RepositoryInfo{Name: "r", Namespace: "demo", Path: "demo/pvc-backup/"}), "same path twice is one entry")
	b.lists = nil

	dirs, err := Discover(ctx, b)
	require.NoError(t, err)
	assert.Equal(t, []string{"demo/pvc-backup"}, dirs)
	assert.Empty(t, b.lists, "with a list in metadata.yaml nothing is walked")

	objs, err := ScanKind(ctx, b, KindSnapshot, dirs)
	require.NoError(t, err)
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	assert.Equal(t, []string{"demo/pvc-backup/snapshots/s1.yaml", "demo/pvc-backup/snapshots/s2.yaml"}, keys)
	assert.Equal(t, []string{"demo/pvc-backup/snapshots/"}, b.lists, "one list per repository and kind")

	objs, err = ScanKind(ctx, b, KindRepository, dirs)
	require.NoError(t, err)
	require.Len(t, objs, 1)
	assert.Equal(t, "demo/pvc-backup/repository.yaml", objs[0].Key)

	require.NoError(t, RemoveRepository(ctx, b, "demo/pvc-backup"))
	m, _, err := ReadMeta(ctx, b)
	require.NoError(t, err)
	assert.Empty(t, m.Repositories)
}

func TestEnsureMetaKeepsExisting(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	m1, err := EnsureMeta(ctx, b, "v1")
	require.NoError(t, err)
	m2, err := EnsureMeta(ctx, b, "v2")
	require.NoError(t, err)
	assert.Equal(t, "v1", m2.OperatorVersion, "an initialized backend is left as it is")
	assert.Equal(t, m1.CreationTimestamp.Unix(), m2.CreationTimestamp.Unix())

	_, err = b.Put(ctx, MetadataFile, []byte("kind: Other\n"), backend.PutOptions{})
	require.NoError(t, err)
	_, _, err = ReadMeta(ctx, b)
	assert.ErrorContains(t, err, "kind")
}

func TestAddRepositoryConcurrent(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	_, err := EnsureMeta(ctx, b, "test")
	require.NoError(t, err)
	var wg sync.WaitGroup
	for _, p := range []string{"a", "b", "c", "d"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, AddRepository(ctx, b, RepositoryInfo{Name: p, Namespace: "ns", Path: p}))
		}()
	}
	wg.Wait()
	dirs, err := Discover(ctx, b)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "c", "d"}, dirs, "no writer lost its entry")
}

// TestDiscoverWithCorruptMetadata: a metadata.yaml that is not a
// BackendMeta (or is huge) does not make the storage's repositories vanish:
// discovery walks the bucket instead. A missing or unreachable one is as
// before.
func TestDiscoverWithCorruptMetadata(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		meta []byte
	}{
		{"not YAML", []byte("\x00\x01{{{ not yaml")},
		{"another kind", []byte("apiVersion: v1\nkind: ConfigMap\n")},
		{"wrong type", []byte("kind: BackendMeta\nrepositories: 42\n")},
		{"truncated", []byte("apiVersion: config.kubestash.com/v1alpha1\nkind: BackendMeta\nrepositories:\n- name: a\n  path: \"/demo")},
		{"huge", append([]byte("kind: BackendMeta\nrepositories:\n"), bytes.Repeat([]byte("- {name: x, namespace: y, path: /z}\n"), MaxMetaSize/30)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t, upstreamFiles...)
			_, err := b.Put(ctx, MetadataFile, tc.meta, backend.PutOptions{})
			require.NoError(t, err)
			_, _, err = ReadMeta(ctx, b)
			require.ErrorIs(t, err, ErrCorruptMeta)
			assert.Less(t, len(err.Error()), 300, "the error does not quote the file")
			dirs, err := Discover(ctx, b)
			require.NoError(t, err)
			assert.Equal(t, []string{"demo/pvc-backup", "team/x/y"}, dirs)
		})
	}
}

// TestDiscoverSkipsInvalidListedPaths: paths listed in metadata.yaml are
// checked like API input; "../other" and reserved names are left out.
func TestDiscoverSkipsInvalidListedPaths(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, "good/repository.yaml")
	meta := "apiVersion: config.kubestash.com/v1alpha1\nkind: BackendMeta\nrepositories:\n" +
		"- {name: good, namespace: a, path: /good}\n" +
		"- {name: escape, namespace: a, path: ../other/repo}\n" +
		"- {name: inner, namespace: a, path: good/../../x}\n" +
		"- {name: reserved, namespace: a, path: good/snapshots}\n"
	_, err := b.Put(ctx, MetadataFile, []byte(meta), backend.PutOptions{})
	require.NoError(t, err)
	dirs, err := Discover(ctx, b)
	require.NoError(t, err)
	assert.Equal(t, []string{"good"}, dirs)
}

// fakeKeys lists keys an object store may hold but a file system cannot.
type fakeKeys struct {
	backend.Backend
	prefixes map[string][]string
	objects  map[string][]string
}

func (f fakeKeys) List(_ context.Context, prefix string, _ backend.ListOptions) (backend.ListResult, error) {
	var res backend.ListResult
	res.CommonPrefixes = f.prefixes[prefix]
	for _, k := range f.objects[prefix] {
		res.Objects = append(res.Objects, backend.Object{Key: k})
	}
	return res, nil
}

// TestWalkAndScanSkipUncleanKeys: S3 keys with ".." or empty elements are
// neither walked into nor scanned (they would fail the whole storage, or
// name a file elsewhere).
func TestWalkAndScanSkipUncleanKeys(t *testing.T) {
	ctx := context.Background()
	b := fakeKeys{
		prefixes: map[string][]string{
			"":           {"evil/", "ok/"},
			"evil/":      {"evil/../", "evil//"},
			"evil/../":   {"evil/../x/"},
			"evil/../x/": nil,
		},
		objects: map[string][]string{
			"ok/":           {"ok/repository.yaml"},
			"evil/../x/":    {"evil/../x/repository.yaml"},
			"ok/snapshots/": {"ok/snapshots/a.yaml", "ok/snapshots/../../b/snapshots/c.yaml"},
		},
	}
	dirs, err := Walk(ctx, b)
	require.NoError(t, err)
	assert.Equal(t, []string{"ok"}, dirs)
	objs, err := ScanKind(ctx, b, KindSnapshot, []string{"ok"})
	require.NoError(t, err)
	require.Len(t, objs, 1)
	assert.Equal(t, "ok/snapshots/a.yaml", objs[0].Key)
}

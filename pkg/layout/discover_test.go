package layout

import (
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

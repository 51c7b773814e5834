package layout_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/layout"
)

// keys lists every key of b, sorted.
func keys(t *testing.T, b backend.Backend) []string {
	t.Helper()
	res, err := b.List(context.Background(), "", backend.ListOptions{})
	require.NoError(t, err)
	var out []string
	for _, o := range res.Objects {
		out = append(out, o.Key)
	}
	return out
}

func TestWipe(t *testing.T) {
	// One storage: repository a (listed), a/nested inside it (a person may
	// nest paths), b (not listed: found by walking), and files this
	// project did not write.
	files := []string{
		"a/repository.yaml",
		"a/snapshots/s1.yaml",
		"a/backupsessions/bs1.yaml",
		"a/backupsessions/history/bs0-1.yaml",
		"a/restoresessions/r1.yaml",
		"a/forget/s0.yaml",
		"a/repository/v1/daily/dump/config",
		"a/repository/v1/daily/dump/data/00/0011",
		"a/README.txt",
		"a/nested/repository.yaml",
		"a/nested/snapshots/n1.yaml",
		"b/repository.yaml",
		"b/repository/v1/daily/dump/config",
		"notes.txt",
	}
	for _, c := range []struct {
		name string
		wipe func(context.Context, backend.Backend) (int, error)
		want []string
		n    int
	}{
		{
			name: "a repository keeps repository.yaml, nested repositories and others' files",
			wipe: func(ctx context.Context, b backend.Backend) (int, error) {
				return layout.WipeRepository(ctx, b, "/a", false)
			},
			want: []string{"a/README.txt", "a/nested/repository.yaml", "a/nested/snapshots/n1.yaml", "a/repository.yaml",
				"b/repository.yaml", "b/repository/v1/daily/dump/config", "metadata.yaml", "notes.txt"},
			n: 7,
		},
		{
			name: "a repository with its file",
			wipe: func(ctx context.Context, b backend.Backend) (int, error) {
				return layout.WipeRepository(ctx, b, "a", true)
			},
			want: []string{"a/README.txt", "a/nested/repository.yaml", "a/nested/snapshots/n1.yaml",
				"b/repository.yaml", "b/repository/v1/daily/dump/config", "metadata.yaml", "notes.txt"},
			n: 8,
		},
		{
			name: "a storage: every repository, listed or walked, and metadata.yaml",
			wipe: layout.WipeStorage,
			want: []string{"a/README.txt", "notes.txt"},
			n:    13,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			b, err := backend.NewLocal(t.TempDir())
			require.NoError(t, err)
			_, err = layout.EnsureMeta(ctx, b, "test")
			require.NoError(t, err)
			require.NoError(t, layout.AddRepository(ctx, b, layout.RepositoryInfo{Name: "a", Namespace: "demo", Path: "/a"}))
			for _, f := range files {
				_, err := b.Put(ctx, f, []byte("x"), backend.PutOptions{})
				require.NoError(t, err)
			}
			n, err := c.wipe(ctx, b)
			require.NoError(t, err)
			assert.Equal(t, c.want, keys(t, b))
			assert.Equal(t, c.n, n, "objects removed")

			// A wipe cut short is finished by the next: a second one
			// finds nothing more to do.
			n, err = c.wipe(ctx, b)
			require.NoError(t, err)
			assert.Zero(t, n)
		})
	}
}

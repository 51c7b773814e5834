// Package backendtest is the test suite every backend.Backend passes.
package backendtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kubestash.dev/kubestash/pkg/backend"
)

// Run runs the suite. newBackend returns an empty backend for each subtest.
func Run(t *testing.T, newBackend func(t *testing.T) backend.Backend) {
	ctx := context.Background()

	t.Run("PutGetRoundTrip", func(t *testing.T) {
		b := newBackend(t)
		obj, err := b.Put(ctx, "repo/snapshots/a.yaml", []byte("kind: Snapshot\n"), backend.PutOptions{})
		require.NoError(t, err)
		assert.NotEmpty(t, obj.ETag)
		data, got, err := b.Get(ctx, "repo/snapshots/a.yaml")
		require.NoError(t, err)
		assert.Equal(t, "kind: Snapshot\n", string(data))
		assert.Equal(t, obj.ETag, got.ETag)
		assert.EqualValues(t, len(data), got.Size)
		st, err := b.Stat(ctx, "/repo/snapshots/a.yaml")
		require.NoError(t, err, "a leading slash is the same key")
		assert.Equal(t, obj.ETag, st.ETag)
		assert.Equal(t, "repo/snapshots/a.yaml", st.Key)
	})

	t.Run("NotFound", func(t *testing.T) {
		b := newBackend(t)
		_, _, err := b.Get(ctx, "missing.yaml")
		assert.ErrorIs(t, err, backend.ErrNotFound)
		_, err = b.Stat(ctx, "missing.yaml")
		assert.ErrorIs(t, err, backend.ErrNotFound)
		err = b.Delete(ctx, "missing.yaml", backend.DeleteOptions{})
		assert.ErrorIs(t, err, backend.ErrNotFound)
		assert.Contains(t, err.Error(), "missing.yaml", "the error names the key")
	})

	t.Run("CreateOnlyIfAbsent", func(t *testing.T) {
		b := newBackend(t)
		_, err := b.Put(ctx, "metadata.yaml", []byte("one"), backend.PutOptions{IfAbsent: true})
		require.NoError(t, err)
		_, err = b.Put(ctx, "metadata.yaml", []byte("two"), backend.PutOptions{IfAbsent: true})
		assert.ErrorIs(t, err, backend.ErrPreconditionFailed)
		data, _, err := b.Get(ctx, "metadata.yaml")
		require.NoError(t, err)
		assert.Equal(t, "one", string(data), "the failed create changed nothing")
	})

	t.Run("ReplaceOnlyIfMatch", func(t *testing.T) {
		b := newBackend(t)
		v1, err := b.Put(ctx, "r/repository.yaml", []byte("v1"), backend.PutOptions{})
		require.NoError(t, err)
		v2, err := b.Put(ctx, "r/repository.yaml", []byte("v2"), backend.PutOptions{IfMatch: v1.ETag})
		require.NoError(t, err)
		assert.NotEqual(t, v1.ETag, v2.ETag)
		_, err = b.Put(ctx, "r/repository.yaml", []byte("v3"), backend.PutOptions{IfMatch: v1.ETag})
		assert.ErrorIs(t, err, backend.ErrPreconditionFailed, "a stale etag loses")
		_, err = b.Put(ctx, "r/other.yaml", []byte("x"), backend.PutOptions{IfMatch: v1.ETag})
		assert.ErrorIs(t, err, backend.ErrPreconditionFailed, "if-match on a missing key fails")
		data, _, err := b.Get(ctx, "r/repository.yaml")
		require.NoError(t, err)
		assert.Equal(t, "v2", string(data))
		_, err = b.Stat(ctx, "r/other.yaml")
		assert.ErrorIs(t, err, backend.ErrNotFound)
	})

	t.Run("ConditionalDelete", func(t *testing.T) {
		b := newBackend(t)
		v1, err := b.Put(ctx, "r/snapshots/s.yaml", []byte("v1"), backend.PutOptions{})
		require.NoError(t, err)
		v2, err := b.Put(ctx, "r/snapshots/s.yaml", []byte("v2"), backend.PutOptions{})
		require.NoError(t, err)
		err = b.Delete(ctx, "r/snapshots/s.yaml", backend.DeleteOptions{IfMatch: v1.ETag})
		assert.ErrorIs(t, err, backend.ErrPreconditionFailed)
		_, err = b.Stat(ctx, "r/snapshots/s.yaml")
		require.NoError(t, err, "a failed conditional delete keeps the object")
		require.NoError(t, b.Delete(ctx, "r/snapshots/s.yaml", backend.DeleteOptions{IfMatch: v2.ETag}))
		_, err = b.Stat(ctx, "r/snapshots/s.yaml")
		assert.ErrorIs(t, err, backend.ErrNotFound)
	})

	t.Run("List", func(t *testing.T) {
		b := newBackend(t)
		for _, k := range []string{
			"metadata.yaml",
			"a/repository.yaml", "a/snapshots/s1.yaml", "a/snapshots/s2.yaml", "a/backupsessions/b1.yaml",
			"a/repository/v1/frequent/dump/config",
			"ab/repository.yaml",
			"team/b/repository.yaml",
		} {
			_, err := b.Put(ctx, k, []byte(k), backend.PutOptions{})
			require.NoError(t, err)
		}
		cases := []struct {
			prefix, delim string
			keys          []string
			prefixes      []string
		}{
			{"", "/", []string{"metadata.yaml"}, []string{"a/", "ab/", "team/"}},
			{"a/", "/", []string{"a/repository.yaml"}, []string{"a/backupsessions/", "a/repository/", "a/snapshots/"}},
			{"a/snapshots/", "", []string{"a/snapshots/s1.yaml", "a/snapshots/s2.yaml"}, nil},
			{"a/snapshots/s1", "", []string{"a/snapshots/s1.yaml"}, nil},
			{"a", "/", nil, []string{"a/", "ab/"}},
			{"team/", "", []string{"team/b/repository.yaml"}, nil},
			{"nothing/", "", nil, nil},
			{"", "", []string{
				"a/backupsessions/b1.yaml", "a/repository.yaml", "a/repository/v1/frequent/dump/config",
				"a/snapshots/s1.yaml", "a/snapshots/s2.yaml", "ab/repository.yaml", "metadata.yaml", "team/b/repository.yaml",
			}, nil},
		}
		for _, c := range cases {
			t.Run(fmt.Sprintf("%q delim %q", c.prefix, c.delim), func(t *testing.T) {
				res, err := b.List(ctx, c.prefix, backend.ListOptions{Delimiter: c.delim})
				require.NoError(t, err)
				var keys []string
				for _, o := range res.Objects {
					keys = append(keys, o.Key)
					assert.NotEmpty(t, o.ETag, o.Key)
				}
				assert.Equal(t, c.keys, keys)
				assert.ElementsMatch(t, c.prefixes, res.CommonPrefixes)
			})
		}
		// ETags in a listing are the ones Get returns.
		res, err := b.List(ctx, "a/snapshots/", backend.ListOptions{})
		require.NoError(t, err)
		_, obj, err := b.Get(ctx, "a/snapshots/s1.yaml")
		require.NoError(t, err)
		assert.Equal(t, obj.ETag, res.Objects[0].ETag)
	})

	t.Run("DeleteLeavesNoEmptyDirectory", func(t *testing.T) {
		b := newBackend(t)
		_, err := b.Put(ctx, "r/snapshots/only.yaml", []byte("x"), backend.PutOptions{})
		require.NoError(t, err)
		require.NoError(t, b.Delete(ctx, "r/snapshots/only.yaml", backend.DeleteOptions{}))
		res, err := b.List(ctx, "", backend.ListOptions{Delimiter: "/"})
		require.NoError(t, err)
		assert.Empty(t, res.CommonPrefixes)
		assert.Empty(t, res.Objects)
	})

	t.Run("InvalidKeys", func(t *testing.T) {
		b := newBackend(t)
		for _, k := range []string{"", "/", "a/../b", "a//b", "./a"} {
			_, err := b.Put(ctx, k, []byte("x"), backend.PutOptions{})
			assert.ErrorIs(t, err, backend.ErrInvalidKey, "key %q", k)
		}
		_, err := b.Put(ctx, "k", []byte("x"), backend.PutOptions{IfAbsent: true, IfMatch: "e"})
		assert.Error(t, err)
	})

	t.Run("ConcurrentConditionalUpdates", func(t *testing.T) {
		b := newBackend(t)
		base, err := b.Put(ctx, "r/repository.yaml", []byte("base"), backend.PutOptions{})
		require.NoError(t, err)
		const writers = 8
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = b.Put(ctx, "r/repository.yaml", []byte(fmt.Sprintf("writer %d", i)), backend.PutOptions{IfMatch: base.ETag})
			}()
		}
		wg.Wait()
		won := -1
		for i, err := range errs {
			if err == nil {
				require.Equal(t, -1, won, "two writers won")
				won = i
				continue
			}
			require.True(t, errors.Is(err, backend.ErrPreconditionFailed), "writer %d: %v", i, err)
		}
		require.NotEqual(t, -1, won, "one writer must win")
		data, _, err := b.Get(ctx, "r/repository.yaml")
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("writer %d", won), string(data))
	})
}

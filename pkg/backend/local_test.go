package backend_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/backend/backendtest"
)

func TestLocal(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		b, err := backend.NewLocal(t.TempDir())
		require.NoError(t, err)
		return b
	})
}

func TestLocalLeavesNoTempFiles(t *testing.T) {
	dir := t.TempDir()
	b, err := backend.NewLocal(dir)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = b.Put(ctx, "r/repository.yaml", []byte("v1"), backend.PutOptions{})
	require.NoError(t, err)
	_, err = b.Put(ctx, "r/repository.yaml", []byte("v2"), backend.PutOptions{IfAbsent: true})
	require.Error(t, err)
	entries, err := os.ReadDir(filepath.Join(dir, "r"))
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, "repository.yaml", entries[0].Name())
}

func TestLocalETagFollowsContentChangedBehindItsBack(t *testing.T) {
	dir := t.TempDir()
	b, err := backend.NewLocal(dir)
	require.NoError(t, err)
	ctx := context.Background()
	o1, err := b.Put(ctx, "f.yaml", []byte("one"), backend.PutOptions{})
	require.NoError(t, err)
	// A person edits the file in place.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f.yaml"), []byte("three"), 0o644))
	o2, err := b.Stat(ctx, "f.yaml")
	require.NoError(t, err)
	assert.NotEqual(t, o1.ETag, o2.ETag)
	_, err = b.Put(ctx, "f.yaml", []byte("x"), backend.PutOptions{IfMatch: o1.ETag})
	assert.ErrorIs(t, err, backend.ErrPreconditionFailed)
}

func TestNewLocalMissingDir(t *testing.T) {
	_, err := backend.NewLocal(filepath.Join(t.TempDir(), "nope"))
	assert.ErrorIs(t, err, backend.ErrNotFound)
}

// TestLocalNeverFollowsSymlinks: a tenant who can write into the directory
// plants links to outside it; no read, write, delete or listing goes
// through one.
func TestLocalNeverFollowsSymlinks(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (root, outside string, b *backend.Local) {
		base := t.TempDir()
		root, outside = filepath.Join(base, "root"), filepath.Join(base, "outside")
		require.NoError(t, os.MkdirAll(filepath.Join(outside, "snapshots"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(outside, "repository.yaml"), []byte("secret: outside\n"), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(outside, "snapshots", "s.yaml"), []byte("secret: outside\n"), 0o644))
		require.NoError(t, os.MkdirAll(filepath.Join(root, "real", "snapshots"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, "real", "repository.yaml"), []byte("kind: Repository\n"), 0o644))
		// A directory link and a file link inside the root.
		require.NoError(t, os.Symlink(outside, filepath.Join(root, "evil")))
		require.NoError(t, os.Symlink(filepath.Join(outside, "snapshots", "s.yaml"), filepath.Join(root, "real", "snapshots", "link.yaml")))
		b, err := backend.NewLocal(root)
		require.NoError(t, err)
		return root, outside, b
	}
	outsideUnchanged := func(t *testing.T, outside string) {
		got, err := os.ReadFile(filepath.Join(outside, "repository.yaml"))
		require.NoError(t, err)
		assert.Equal(t, "secret: outside\n", string(got))
		got, err = os.ReadFile(filepath.Join(outside, "snapshots", "s.yaml"))
		require.NoError(t, err)
		assert.Equal(t, "secret: outside\n", string(got))
		entries, err := os.ReadDir(filepath.Join(outside, "snapshots"))
		require.NoError(t, err)
		assert.Len(t, entries, 1, "nothing created outside the root")
	}

	for _, tc := range []struct {
		name string
		do   func(b *backend.Local) error
	}{
		{"get through a directory link", func(b *backend.Local) error { _, _, err := b.Get(ctx, "evil/repository.yaml"); return err }},
		{"get a file link", func(b *backend.Local) error { _, _, err := b.Get(ctx, "real/snapshots/link.yaml"); return err }},
		{"stat through a directory link", func(b *backend.Local) error { _, err := b.Stat(ctx, "evil/repository.yaml"); return err }},
		{"stat a file link", func(b *backend.Local) error { _, err := b.Stat(ctx, "real/snapshots/link.yaml"); return err }},
		{"create through a directory link", func(b *backend.Local) error {
			_, err := b.Put(ctx, "evil/snapshots/new.yaml", []byte("x"), backend.PutOptions{IfAbsent: true})
			return err
		}},
		{"unconditional write through a directory link", func(b *backend.Local) error {
			_, err := b.Put(ctx, "evil/repository.yaml", []byte("x"), backend.PutOptions{})
			return err
		}},
		{"delete through a directory link", func(b *backend.Local) error {
			return b.Delete(ctx, "evil/repository.yaml", backend.DeleteOptions{})
		}},
		{"delete a file link", func(b *backend.Local) error {
			return b.Delete(ctx, "real/snapshots/link.yaml", backend.DeleteOptions{})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, outside, b := setup(t)
			err := tc.do(b)
			require.Error(t, err)
			assert.True(t, errors.Is(err, backend.ErrForbidden) || errors.Is(err, backend.ErrNotFound), "got %v", err)
			assert.NotContains(t, err.Error(), "secret: outside", "errors never quote content")
			outsideUnchanged(t, outside)
		})
	}

	t.Run("listings leave links out", func(t *testing.T) {
		_, outside, b := setup(t)
		for _, o := range []backend.ListOptions{{}, {Delimiter: "/"}} {
			res, err := b.List(ctx, "", o)
			require.NoError(t, err)
			for _, obj := range res.Objects {
				assert.NotContains(t, obj.Key, "evil", "delimiter %q", o.Delimiter)
				assert.NotContains(t, obj.Key, "link", "delimiter %q", o.Delimiter)
			}
			assert.NotContains(t, res.CommonPrefixes, "evil/")
			res, err = b.List(ctx, "evil/", o)
			require.NoError(t, err)
			assert.Empty(t, res.Objects, "a listing under a link is empty")
			res, err = b.List(ctx, "real/snapshots/", o)
			require.NoError(t, err)
			assert.Empty(t, res.Objects)
		}
		res, err := b.List(ctx, "", backend.ListOptions{})
		require.NoError(t, err)
		require.Len(t, res.Objects, 1)
		assert.Equal(t, "real/repository.yaml", res.Objects[0].Key)
		outsideUnchanged(t, outside)
	})

	t.Run("a write replaces a file link, not its target", func(t *testing.T) {
		root, outside, b := setup(t)
		_, err := b.Put(ctx, "real/snapshots/link.yaml", []byte("mine"), backend.PutOptions{})
		require.NoError(t, err)
		fi, err := os.Lstat(filepath.Join(root, "real", "snapshots", "link.yaml"))
		require.NoError(t, err)
		assert.True(t, fi.Mode().IsRegular())
		outsideUnchanged(t, outside)
	})

	t.Run("a planted lock file link is not followed", func(t *testing.T) {
		root, outside, b := setup(t)
		require.NoError(t, os.Symlink(filepath.Join(outside, "lock"), filepath.Join(root, ".kubestash.lock")))
		_, err := b.Put(ctx, "real/snapshots/a.yaml", []byte("x"), backend.PutOptions{})
		require.Error(t, err)
		_, err = os.Lstat(filepath.Join(outside, "lock"))
		assert.ErrorIs(t, err, os.ErrNotExist, "no file created outside the root")
	})

	t.Run("the root itself may be a link", func(t *testing.T) {
		root, _, _ := setup(t)
		alias := filepath.Join(t.TempDir(), "alias")
		require.NoError(t, os.Symlink(root, alias))
		b, err := backend.NewLocal(alias)
		require.NoError(t, err)
		data, _, err := b.Get(ctx, "real/repository.yaml")
		require.NoError(t, err)
		assert.Equal(t, "kind: Repository\n", string(data))
	})
}

func TestLocalFIFOIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "pipe.yaml"), 0o644))
	b, err := backend.NewLocal(dir)
	require.NoError(t, err)
	_, _, err = b.Get(context.Background(), "pipe.yaml")
	assert.ErrorIs(t, err, backend.ErrNotFound, "a FIFO neither blocks nor is read")
}

func TestGetLimit(t *testing.T) {
	ctx := context.Background()
	b, err := backend.NewLocal(t.TempDir())
	require.NoError(t, err)
	_, err = b.Put(ctx, "f.yaml", []byte("0123456789"), backend.PutOptions{})
	require.NoError(t, err)
	for _, tc := range []struct {
		name     string
		b        backend.Backend
		max      int64
		tooLarge bool
	}{
		{"no limit", b, -1, false},
		{"exactly the size", b, 10, false},
		{"one byte under", b, 9, true},
		{"zero", b, 0, true},
		{"without LimitedGetter, exactly", statGetter{b}, 10, false},
		{"without LimitedGetter, under", statGetter{b}, 9, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, obj, err := backend.GetLimit(ctx, tc.b, "f.yaml", tc.max)
			if tc.tooLarge {
				require.ErrorIs(t, err, backend.ErrTooLarge)
				assert.Nil(t, data)
				assert.EqualValues(t, 10, obj.Size, "the size seen is reported")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "0123456789", string(data))
		})
	}
}

// statGetter hides the LimitedGetter of a backend.
type statGetter struct{ backend.Backend }

// TestLocalHugeFileIsNotHashed: a file over the hash limit gets an ETag of
// its identity, the same from Stat, List and Get, and changes when it does.
func TestLocalHugeFileIsNotHashed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := backend.NewLocal(dir)
	require.NoError(t, err)
	p := filepath.Join(dir, "huge.yaml")
	require.NoError(t, os.WriteFile(p, nil, 0o644))
	require.NoError(t, os.Truncate(p, 100<<20)) // sparse: nothing to hash quickly either
	st, err := b.Stat(ctx, "huge.yaml")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(st.ETag, "i-"), st.ETag)
	res, err := b.List(ctx, "", backend.ListOptions{})
	require.NoError(t, err)
	require.Len(t, res.Objects, 1)
	assert.Equal(t, st.ETag, res.Objects[0].ETag)
	_, o, err := b.Get(ctx, "huge.yaml")
	require.NoError(t, err)
	assert.Equal(t, st.ETag, o.ETag)
	require.NoError(t, os.Truncate(p, 101<<20))
	st2, err := b.Stat(ctx, "huge.yaml")
	require.NoError(t, err)
	assert.NotEqual(t, st.ETag, st2.ETag)
}

package backend_test

import (
	"context"
	"os"
	"path/filepath"
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

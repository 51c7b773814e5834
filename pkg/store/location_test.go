package store

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
)

// TestLocation: the store tells where an indexed object's file is, for
// objects it wrote and for files it found, and forgets it with the object.
func TestLocation(t *testing.T) {
	ctx := context.Background()
	a, b := localBackend(t), localBackend(t)
	writeFile(t, b, "pods/ns/found.yaml", encodePod(t, pod("ns", "found")))
	s := startStore(t, podConfig(backends{"a": a, "b": b}, "a"))

	loc, ok := s.Location(podKey("ns", "found"))
	require.True(t, ok)
	assert.Equal(t, Location{Storage: "b", Key: "pods/ns/found.yaml"}, loc, "found in the storage that holds the file")

	require.NoError(t, s.Create(ctx, podKey("ns", "made"), pod("ns", "made"), &example.Pod{}, 0))
	loc, ok = s.Location(podKey("ns", "made"))
	require.True(t, ok)
	assert.Equal(t, Location{Storage: "a", Key: "pods/ns/made.yaml"}, loc)

	_, ok = s.Location(podKey("ns", "missing"))
	assert.False(t, ok)
	_, ok = s.Location("/other/ns/made")
	assert.False(t, ok, "a key outside the resource prefix")

	require.NoError(t, s.Delete(ctx, podKey("ns", "made"), &example.Pod{}, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{}))
	_, ok = s.Location(podKey("ns", "made"))
	assert.False(t, ok, "gone with the object")
}

package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"

	"kubestash.dev/kubestash/pkg/backend"
)

// recordingHook records what it is told; fail makes it refuse.
type recordingHook struct {
	mu     sync.Mutex
	seen   []string // label "from" of the objects it was called with
	undone int
	fail   error
	// exists, if set, is asked whether the file is still there when the
	// hook runs.
	exists func(loc Location) bool
	before []bool
}

func (h *recordingHook) BeforeDelete(_ context.Context, _ backend.Backend, loc Location, obj runtime.Object) (func(context.Context), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail != nil {
		return nil, h.fail
	}
	h.seen = append(h.seen, obj.(*example.Pod).Labels["from"])
	if h.exists != nil {
		h.before = append(h.before, h.exists(loc))
	}
	return func(context.Context) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.undone++
	}, nil
}

func TestDeleteHook(t *testing.T) {
	ctx := context.Background()
	b := localBackend(t)
	hook := &recordingHook{exists: func(loc Location) bool {
		_, _, err := b.Get(ctx, loc.Key)
		return err == nil
	}}
	cfg := podConfig(backends{"a": b}, "a")
	cfg.DeleteHook = hook
	s := startStore(t, cfg)
	del := func(name string) error {
		return s.Delete(ctx, podKey("ns", name), &example.Pod{}, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{})
	}

	t.Run("called before the file is removed", func(t *testing.T) {
		require.NoError(t, s.Create(ctx, podKey("ns", "p1"), pod("ns", "p1", "from", "api"), &example.Pod{}, 0))
		require.NoError(t, del("p1"))
		assert.Equal(t, []string{"api"}, hook.seen)
		assert.Equal(t, []bool{true}, hook.before, "the file was still there when the hook ran")
		assert.Zero(t, hook.undone)
		_, _, err := b.Get(ctx, "pods/ns/p1.yaml")
		assert.True(t, errors.Is(err, backend.ErrNotFound))
	})

	t.Run("undone when the file changed meanwhile, then called with the new state", func(t *testing.T) {
		hook.seen, hook.before = nil, nil
		require.NoError(t, s.Create(ctx, podKey("ns", "p2"), pod("ns", "p2", "from", "api"), &example.Pod{}, 0))
		// Another writer changes the file behind the index.
		writeFile(t, b, "pods/ns/p2.yaml", encodePod(t, pod("ns", "p2", "from", "other")))
		require.NoError(t, del("p2"))
		assert.Equal(t, []string{"api", "other"}, hook.seen)
		assert.Equal(t, 1, hook.undone, "the attempt that failed was taken back")
	})

	t.Run("an error keeps the file", func(t *testing.T) {
		require.NoError(t, s.Create(ctx, podKey("ns", "p3"), pod("ns", "p3"), &example.Pod{}, 0))
		hook.fail = errors.New("backend full")
		err := del("p3")
		require.Error(t, err)
		assert.True(t, apierrors.IsInternalError(err), "%v", err)
		assert.Contains(t, err.Error(), "backend full")
		hook.fail = fmt.Errorf("write mark: %w", backend.ErrUnavailable)
		err = del("p3")
		assert.True(t, apierrors.IsServiceUnavailable(err), "an unavailable backend is a 503: %v", err)
		hook.fail = apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "p3", errors.New("try later"))
		err = del("p3")
		assert.True(t, apierrors.IsConflict(err), "an API status is kept: %v", err)
		_, _, gerr := b.Get(ctx, "pods/ns/p3.yaml")
		assert.NoError(t, gerr, "still in the backend")
		require.NoError(t, s.Get(ctx, podKey("ns", "p3"), storage.GetOptions{}, &example.Pod{}), "and served")
	})
}

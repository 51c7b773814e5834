// Package loop runs a reconcile function over a rate-limited workqueue of
// namespace/name keys, the way client-go's example controllers do: informer
// events add keys, workers reconcile them, failures come back with back-off.
package loop

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// ReconcileFunc makes the world match the object namespace/name. Returning
// ErrRequeue asks to look again after a back-off without logging an error.
type ReconcileFunc func(ctx context.Context, namespace, name string) error

// ErrRequeue is not a failure: the object waits on something that may
// appear without an event.
var ErrRequeue = errors.New("requeue")

// RequeueAfter is not a failure either: the object is to be looked at
// again after d, when what it waits for is due.
func RequeueAfter(d time.Duration) error { return &requeueAfter{d: d} }

type requeueAfter struct{ d time.Duration }

func (e *requeueAfter) Error() string { return fmt.Sprintf("requeue after %s", e.d) }

// Loop is one controller's queue and workers.
type Loop struct {
	Name      string
	Reconcile ReconcileFunc
	queue     workqueue.TypedRateLimitingInterface[string]
}

// New returns a loop named name (for logs and the queue's metrics).
func New(name string, reconcile ReconcileFunc) *Loop {
	return &Loop{
		Name:      name,
		Reconcile: reconcile,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](500*time.Millisecond, 2*time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name}),
	}
}

// Add queues a key.
func (l *Loop) Add(key string) { l.queue.Add(key) }

// AddAfter queues a key later.
func (l *Loop) AddAfter(key string, d time.Duration) { l.queue.AddAfter(key, d) }

// Handler queues the key of every object an informer reports.
func (l *Loop) Handler() cache.ResourceEventHandler {
	add := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			l.queue.Add(key)
		}
	}
	return cache.ResourceEventHandlerFuncs{AddFunc: add, UpdateFunc: func(_, obj any) { add(obj) }, DeleteFunc: add}
}

// Run starts workers and blocks until ctx ends.
func (l *Loop) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrashWithContext(ctx)
	logger := klog.FromContext(ctx).WithValues("controller", l.Name)
	ctx = klog.NewContext(ctx, logger)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait.UntilWithContext(ctx, l.work, time.Second)
		}()
	}
	<-ctx.Done()
	l.queue.ShutDown()
	wg.Wait()
}

func (l *Loop) work(ctx context.Context) {
	for l.next(ctx) {
	}
}

func (l *Loop) next(ctx context.Context) bool {
	key, quit := l.queue.Get()
	if quit {
		return false
	}
	defer l.queue.Done(key)
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		l.queue.Forget(key)
		return true
	}
	err = l.Reconcile(ctx, ns, name)
	var after *requeueAfter
	switch {
	case err == nil:
		l.queue.Forget(key)
	case errors.As(err, &after):
		l.queue.Forget(key)
		l.queue.AddAfter(key, after.d)
	case errors.Is(err, ErrRequeue):
		l.queue.AddRateLimited(key)
	case namespaceTerminating(err):
		// Nothing can be made in a namespace being deleted, and what is
		// in it goes with it: not an error, but tried again like one, for
		// what the reconcile would have done after.
		klog.FromContext(ctx).V(4).Info("Namespace is being deleted; reconcile stopped short", "key", key, "err", err)
		l.queue.AddRateLimited(key)
	default:
		utilruntime.HandleErrorWithContext(ctx, fmt.Errorf("reconcile %s: %w", key, err), "Reconcile failed; will retry", "key", key)
		l.queue.AddRateLimited(key)
	}
	return true
}

// OnChange is an event handler that calls fn with each object added,
// deleted (its last known state) or really updated: an informer's resync,
// which hands the same object again, is left out, so that an object is
// reconciled at its own resync and not once more for each dependency.
func OnChange(fn func(obj any)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: fn,
		UpdateFunc: func(old, cur any) {
			if Changed(old, cur) {
				fn(cur)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			fn(obj)
		},
	}
}

// Changed tells a real update from an informer's resync.
func Changed(old, cur any) bool {
	o, err1 := meta.Accessor(old)
	c, err2 := meta.Accessor(cur)
	return err1 != nil || err2 != nil || o.GetResourceVersion() != c.GetResourceVersion()
}

// namespaceTerminating reports whether err is NamespaceLifecycle's refusal
// to create in a namespace being deleted. Reconcilers join several errors
// into one message, which keeps the words but not the status cause.
func namespaceTerminating(err error) bool {
	return apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) ||
		strings.Contains(err.Error(), "because it is being terminated")
}

// Package lookup reads the objects the reconcilers look at: from an
// informer's cache when the controller has one for the kind, else from the
// API. A cached read that finds nothing asks the API once: an object just
// created may not have reached the cache yet, and a reconcile must not take
// it for missing (a deleted one is then confirmed gone by the API).
package lookup

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Getter gets one object of a kind by namespace and name ("" for a
// cluster-scoped kind).
type Getter[T any] interface {
	Get(ctx context.Context, namespace, name string) (T, error)
}

// GetFunc is a Getter.
type GetFunc[T any] func(ctx context.Context, namespace, name string) (T, error)

// Get calls f.
func (f GetFunc[T]) Get(ctx context.Context, namespace, name string) (T, error) {
	return f(ctx, namespace, name)
}

// Live is a Getter of a typed client's Get, e.g.
//
//	lookup.Live(func(ns string) lookup.Client[*batchv1.Job] { return kube.BatchV1().Jobs(ns) })
func Live[T any](client func(namespace string) Client[T]) Getter[T] {
	return GetFunc[T](func(ctx context.Context, namespace, name string) (T, error) {
		return client(namespace).Get(ctx, name, metav1.GetOptions{})
	})
}

// Client is the Get of a typed client.
type Client[T any] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
}

// Cached is a Getter that reads with get from an informer's cache (a
// lister) and asks live only when the cache has no such object. The
// object it returns from the cache is shared: callers deep-copy before
// they change it.
func Cached[T any](get func(namespace, name string) (T, error), live Getter[T]) Getter[T] {
	return GetFunc[T](func(ctx context.Context, namespace, name string) (T, error) {
		obj, err := get(namespace, name)
		if apierrors.IsNotFound(err) {
			return live.Get(ctx, namespace, name)
		}
		return obj, err
	})
}

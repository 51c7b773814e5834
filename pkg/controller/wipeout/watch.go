package wipeout

import (
	"fmt"
	"time"

	"k8s.io/client-go/tools/cache"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/controller/lookup"
	"kubestash.dev/kubestash/pkg/controller/loop"
)

// Watch feeds l (Reconciler) with the Repositories whose WipeOut Snapshots
// are deleted, delay later, and with every Repository once, delay after it
// is first seen, for deletions made while no controller ran.
func Watch(l *loop.Loop, inf lookup.Informers, delay time.Duration) error {
	if _, err := inf.Catalog.Catalog().V1alpha1().Snapshots().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if s, ok := obj.(*catalogv1alpha1.Snapshot); ok && s.Spec.DeletionPolicy == catalogv1alpha1.DeletionPolicyWipeOut && s.Spec.Repository != "" {
				l.AddAfter(s.Namespace+"/"+s.Spec.Repository, delay)
			}
		},
	}); err != nil {
		return fmt.Errorf("watch Snapshots: %w", err)
	}
	if _, err := inf.Catalog.Catalog().V1alpha1().Repositories().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
				l.AddAfter(key, delay)
			}
		},
	}); err != nil {
		return fmt.Errorf("watch Repositories: %w", err)
	}
	return nil
}

// WatchRepositories feeds l (RepositoryReconciler) with every change of a
// Repository.
func WatchRepositories(l *loop.Loop, inf lookup.Informers) error {
	if _, err := inf.Catalog.Catalog().V1alpha1().Repositories().Informer().AddEventHandler(l.Handler()); err != nil {
		return fmt.Errorf("watch Repositories: %w", err)
	}
	return nil
}

// New returns the controller that forgets the data of deleted WipeOut
// Snapshots: a loop of r.Reconcile fed by Watch.
func New(r *Reconciler, inf lookup.Informers, delay time.Duration) (*loop.Loop, error) {
	l := loop.New("wipeout", r.Reconcile)
	return l, Watch(l, inf, delay)
}

// NewRepositoryController returns the controller of deleted WipeOut
// Repositories: a loop of r.Reconcile fed by WatchRepositories.
func NewRepositoryController(r *RepositoryReconciler, inf lookup.Informers) (*loop.Loop, error) {
	l := loop.New("repositorywipeout", r.Reconcile)
	return l, WatchRepositories(l, inf)
}

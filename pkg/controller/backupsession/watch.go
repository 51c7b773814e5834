package backupsession

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/client-go/tools/cache"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/controller/lookup"
	"kubestash.dev/kubestash/pkg/controller/loop"
)

// BackupJobComponent is the component label of backup Jobs.
const BackupJobComponent = "kubestash-backup"

// Watch feeds l with the BackupSessions to reconcile: their own changes,
// their Snapshots' (the agent reports there) and their Jobs'.
func Watch(l *loop.Loop, inf lookup.Informers) error {
	if _, err := inf.Catalog.Catalog().V1alpha1().BackupSessions().Informer().AddEventHandler(l.Handler()); err != nil {
		return fmt.Errorf("watch BackupSessions: %w", err)
	}
	if _, err := inf.Catalog.Catalog().V1alpha1().Snapshots().Informer().AddEventHandler(loop.OnChange(func(obj any) {
		if s, ok := obj.(*catalogv1alpha1.Snapshot); ok && s.Spec.BackupSession != "" {
			l.Add(s.Namespace + "/" + s.Spec.BackupSession)
		}
	})); err != nil {
		return fmt.Errorf("watch Snapshots: %w", err)
	}
	if _, err := inf.Ours.Batch().V1().Jobs().Informer().AddEventHandler(loop.OnChange(func(obj any) {
		if j, ok := obj.(*batchv1.Job); ok {
			switch j.Labels[storagev1alpha1.LabelComponent] {
			case BackupJobComponent, RetentionJobComponent:
				l.Add(j.Namespace + "/" + j.Labels[catalogv1alpha1.LabelInvokerName])
			}
		}
	})); err != nil {
		return fmt.Errorf("watch Jobs: %w", err)
	}
	return nil
}

// WatchRepositoryStatus feeds l (RefreshRepository) with the Repositories
// whose Snapshots are deleted: their count, size and recent list are
// updated at once (their session, if still there, is over and looks no
// more).
func WatchRepositoryStatus(l *loop.Loop, inf lookup.Informers) error {
	if _, err := inf.Catalog.Catalog().V1alpha1().Snapshots().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if s, ok := obj.(*catalogv1alpha1.Snapshot); ok && s.Spec.Repository != "" {
				l.Add(s.Namespace + "/" + s.Spec.Repository)
			}
		},
	}); err != nil {
		return fmt.Errorf("watch Snapshots: %w", err)
	}
	return nil
}

// New returns the BackupSession controller: a loop of r.Reconcile, fed by Watch from the shared
// informers inf.
func New(r *Reconciler, inf lookup.Informers) (*loop.Loop, error) {
	l := loop.New("backupsession", r.Reconcile)
	return l, Watch(l, inf)
}

// NewRepositoryStatus returns the controller that refreshes a
// Repository's status when its Snapshots are deleted.
func NewRepositoryStatus(r *Reconciler, inf lookup.Informers) (*loop.Loop, error) {
	l := loop.New("repositorystatus", r.RefreshRepository)
	return l, WatchRepositoryStatus(l, inf)
}

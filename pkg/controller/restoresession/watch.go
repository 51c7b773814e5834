package restoresession

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/controller/lookup"
	"kubestash.dev/kubestash/pkg/controller/loop"
)

// JobComponent is the component label of restore Jobs.
const JobComponent = "kubestash-restore"

// Watch feeds l with the RestoreSessions to reconcile: their own changes
// and their Jobs'.
func Watch(l *loop.Loop, inf lookup.Informers) error {
	if _, err := inf.Catalog.Catalog().V1alpha1().RestoreSessions().Informer().AddEventHandler(l.Handler()); err != nil {
		return fmt.Errorf("watch RestoreSessions: %w", err)
	}
	if _, err := inf.Ours.Batch().V1().Jobs().Informer().AddEventHandler(loop.OnChange(func(obj any) {
		if j, ok := obj.(*batchv1.Job); ok && j.Labels[storagev1alpha1.LabelComponent] == JobComponent {
			l.Add(j.Namespace + "/" + j.Labels[catalogv1alpha1.LabelInvokerName])
		}
	})); err != nil {
		return fmt.Errorf("watch Jobs: %w", err)
	}
	return nil
}

// New returns the RestoreSession controller: a loop of r.Reconcile, fed by Watch from the shared
// informers inf.
func New(r *Reconciler, inf lookup.Informers) (*loop.Loop, error) {
	l := loop.New("restoresession", r.Reconcile)
	return l, Watch(l, inf)
}

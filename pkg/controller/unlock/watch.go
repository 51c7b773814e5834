package unlock

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"

	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/controller/lookup"
	"kubestash.dev/kubestash/pkg/controller/loop"
)

// Watch feeds l with every change of a Repository (a request is an
// annotation) and of an unlock Job (its end is the answer).
func Watch(l *loop.Loop, inf lookup.Informers) error {
	if _, err := inf.Catalog.Catalog().V1alpha1().Repositories().Informer().AddEventHandler(l.Handler()); err != nil {
		return fmt.Errorf("watch Repositories: %w", err)
	}
	if _, err := inf.Ours.Batch().V1().Jobs().Informer().AddEventHandler(loop.OnChange(func(obj any) {
		if j, ok := obj.(*batchv1.Job); ok && j.Labels[storagev1alpha1.LabelComponent] == JobComponent {
			l.Add(j.Namespace + "/" + j.Labels[LabelRepository])
		}
	})); err != nil {
		return fmt.Errorf("watch Jobs: %w", err)
	}
	return nil
}

// New returns the controller of unlock requests: a loop of r.Reconcile, fed by Watch from the shared
// informers inf.
func New(r *Reconciler, inf lookup.Informers) (*loop.Loop, error) {
	l := loop.New("unlock", r.Reconcile)
	return l, Watch(l, inf)
}

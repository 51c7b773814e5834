package backupconfiguration

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"kubestash.dev/kubestash/pkg/controller/lookup"
	"kubestash.dev/kubestash/pkg/controller/loop"
)

// Watch feeds l with the BackupConfigurations to reconcile: their own
// changes; their trigger CronJobs changed or deleted by someone else; a
// target claim that comes or goes; and every configuration when a
// BackupStorage, RetentionPolicy or Addon changes.
func Watch(l *loop.Loop, inf lookup.Informers) error {
	bcs := inf.Catalog.Core().V1alpha1().BackupConfigurations()
	if _, err := bcs.Informer().AddEventHandler(l.Handler()); err != nil {
		return fmt.Errorf("watch BackupConfigurations: %w", err)
	}
	if _, err := inf.Ours.Batch().V1().CronJobs().Informer().AddEventHandler(loop.OnChange(func(obj any) {
		if cj, ok := obj.(*batchv1.CronJob); ok {
			if ref := metav1.GetControllerOf(cj); ref != nil && ref.Kind == "BackupConfiguration" {
				l.Add(cj.Namespace + "/" + ref.Name)
			}
		}
	})); err != nil {
		return fmt.Errorf("watch CronJobs: %w", err)
	}
	byTarget := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		pvc, ok := obj.(*corev1.PersistentVolumeClaim)
		if !ok {
			return
		}
		list, err := bcs.Lister().BackupConfigurations(pvc.Namespace).List(labels.Everything())
		if err != nil {
			return
		}
		for _, bc := range list {
			if t := bc.Spec.Target; t != nil && t.Kind == "PersistentVolumeClaim" && t.Name == pvc.Name {
				l.Add(bc.Namespace + "/" + bc.Name)
			}
		}
	}
	if _, err := inf.Cluster.Core().V1().PersistentVolumeClaims().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: byTarget, DeleteFunc: byTarget,
		UpdateFunc: func(old, cur any) {
			if o, ok := old.(*corev1.PersistentVolumeClaim); ok && o.DeletionTimestamp == nil {
				if c, ok := cur.(*corev1.PersistentVolumeClaim); ok && c.DeletionTimestamp != nil {
					byTarget(cur)
				}
			}
		},
	}); err != nil {
		return fmt.Errorf("watch PersistentVolumeClaims: %w", err)
	}
	// A storage, policy or addon can change every configuration that
	// refers to it.
	all := loop.OnChange(func(any) {
		list, err := bcs.Lister().List(labels.Everything())
		if err != nil {
			return
		}
		for _, bc := range list {
			l.Add(bc.Namespace + "/" + bc.Name)
		}
	})
	for _, i := range []cache.SharedIndexInformer{
		inf.Catalog.Storage().V1alpha1().BackupStorages().Informer(),
		inf.Catalog.Storage().V1alpha1().RetentionPolicies().Informer(),
		inf.Catalog.Addons().V1alpha1().Addons().Informer(),
	} {
		if _, err := i.AddEventHandler(all); err != nil {
			return fmt.Errorf("watch the dependencies of BackupConfigurations: %w", err)
		}
	}
	return nil
}

// New returns the BackupConfiguration controller: a loop of r.Reconcile, fed by Watch from the shared
// informers inf.
func New(r *Reconciler, inf lookup.Informers) (*loop.Loop, error) {
	l := loop.New("backupconfiguration", r.Reconcile)
	return l, Watch(l, inf)
}

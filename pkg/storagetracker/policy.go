package storagetracker

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
)

// allowed says whether bs may be used from namespace ns; nsObj is that
// Namespace (nil when unknown), needed only by a Selector policy. The rule is
// the API's (UsagePolicy.Allows), the same the controller applies.
func allowed(bs *storagev1alpha1.BackupStorage, ns string, nsObj *corev1.Namespace) error {
	if err := bs.Spec.UsagePolicy.Allows(bs.Namespace, ns, nsObj); err != nil {
		return fmt.Errorf("BackupStorage %s/%s may not be used in namespace %s: %w", bs.Namespace, bs.Name, ns, err)
	}
	return nil
}

// selector is the namespace selector of a Selector policy.
func selector(bs *storagev1alpha1.BackupStorage) (labels.Selector, error) {
	ls := bs.Spec.UsagePolicy.AllowedNamespaces.Selector
	if ls == nil {
		// Upstream's webhook rejects Selector without a selector; allowing
		// every namespace here would be the unsafe reading of it.
		return nil, fmt.Errorf("BackupStorage %s/%s has usagePolicy from: Selector without a selector", bs.Namespace, bs.Name)
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return nil, fmt.Errorf("BackupStorage %s/%s: invalid usagePolicy selector: %w", bs.Namespace, bs.Name, err)
	}
	return sel, nil
}

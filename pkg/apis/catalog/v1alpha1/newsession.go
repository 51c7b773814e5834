package v1alpha1

import (
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
)

// NewBackupSession is the BackupSession that starts session s of bc at
// time at, as the scheduler's trigger makes it (and `kubectl kubestash
// trigger`). No ownerReferences: catalog objects outlive the cluster's
// garbage collection.
func NewBackupSession(bc *corev1alpha1.BackupConfiguration, s *corev1alpha1.Session, at time.Time) *BackupSession {
	bs := &BackupSession{
		ObjectMeta: metav1.ObjectMeta{
			Name:      ValidNameWithPrefixNSuffix(bc.Name, s.Name, strconv.FormatInt(at.Unix(), 10)),
			Namespace: bc.Namespace,
			Labels:    map[string]string{LabelInvokerName: bc.Name},
		},
		Spec: BackupSessionSpec{
			Invoker: corev1.TypedLocalObjectReference{
				APIGroup: ptr.To(corev1alpha1.GroupName),
				Kind:     corev1alpha1.ResourceKindBackupConfiguration,
				Name:     bc.Name,
			},
			Session:       s.Name,
			BackupTimeout: s.BackupTimeout,
		},
	}
	if s.RetryConfig != nil {
		bs.Spec.RetryLeft = s.RetryConfig.MaxRetry
	}
	return bs
}

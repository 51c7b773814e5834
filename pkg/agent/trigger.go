package agent

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
)

// TriggerOptions are the arguments of `agent trigger`, run by the CronJob
// of each session.
type TriggerOptions struct {
	Namespace   string
	InvokerName string
	// InvokerKind must be BackupConfiguration (the only invoker here).
	InvokerKind string
	SessionName string
}

// Trigger creates the BackupSession <bc>-<session>-<unixSeconds> of a
// session through the catalog API. A session of the same second that
// already exists (a retried CronJob pod) is returned as is.
func (a *Agent) Trigger(ctx context.Context, o TriggerOptions) (*catalogv1alpha1.BackupSession, error) {
	if o.Namespace == "" || o.InvokerName == "" || o.SessionName == "" {
		return nil, errors.New("trigger: --namespace, --invoker-name and --session-name are required")
	}
	if o.InvokerKind == "" {
		o.InvokerKind = corev1alpha1.ResourceKindBackupConfiguration
	}
	if o.InvokerKind != corev1alpha1.ResourceKindBackupConfiguration {
		return nil, fmt.Errorf("trigger: invoker kind %q is not supported (BackupConfiguration is)", o.InvokerKind)
	}
	bc, err := a.Client.CoreV1alpha1().BackupConfigurations(o.Namespace).Get(ctx, o.InvokerName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get BackupConfiguration %s/%s: %w", o.Namespace, o.InvokerName, err)
	}
	var session *corev1alpha1.Session
	for i := range bc.Spec.Sessions {
		if bc.Spec.Sessions[i].Name == o.SessionName {
			session = &bc.Spec.Sessions[i]
		}
	}
	if session == nil {
		return nil, fmt.Errorf("BackupConfiguration %s/%s has no session %q", bc.Namespace, bc.Name, o.SessionName)
	}

	bs := catalogv1alpha1.NewBackupSession(bc, session, a.now())
	out, err := a.Client.CatalogV1alpha1().BackupSessions(bc.Namespace).Create(ctx, bs, metav1.CreateOptions{FieldManager: fieldManager})
	if apierrors.IsAlreadyExists(err) {
		klog.InfoS("BackupSession already exists", "backupSession", klog.KObj(bs))
		return a.Client.CatalogV1alpha1().BackupSessions(bc.Namespace).Get(ctx, bs.Name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("create BackupSession %s/%s: %w", bc.Namespace, bs.Name, err)
	}
	klog.InfoS("Created BackupSession", "backupSession", klog.KObj(out), "retryLeft", out.Spec.RetryLeft)
	return out, nil
}

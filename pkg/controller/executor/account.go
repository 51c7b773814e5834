// Package executor is what the controllers share about the Jobs that run
// backups and restores: the identity they run as and how they ended.
package executor

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
)

// EnsureAccount gives the Jobs of a namespace the identity they run as: it
// creates, if absent, the ServiceAccount ns/name and a RoleBinding
// of the same name to clusterRole (artifacts/controller), so that a Job's
// rights end at its namespace.
func EnsureAccount(ctx context.Context, kube kubernetes.Interface, ns, name, clusterRole string) error {
	labels := map[string]string{storagev1alpha1.LabelManagedBy: storagev1alpha1.LabelManagedByValue}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}}
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ServiceAccount %s/%s: %w", ns, name, err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
	}
	if _, err := kube.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create RoleBinding %s/%s: %w", ns, name, err)
	}
	return nil
}

// Package access is who the controller's Jobs run as and what they may
// read: the ServiceAccount of a namespace's Jobs and its binding
// (EnsureAccount), the Secrets they get by reference (SecretEnv), and the
// narrow grants on other namespaces' storages and snapshots and on the
// Secrets the catalog server reads.
package access

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"

	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
)

// Account is a ServiceAccount the controller made for its own Jobs
// (EnsureAccount). It is the only kind of account GrantStorage binds to
// another namespace's storage Secret: its fields are unexported, so a name
// a user wrote (jobTemplate.spec.serviceAccountName) cannot become one.
// Such a name could be any account of the namespace, e.g. default, which
// every pod there runs as.
type Account struct {
	namespace, name string
}

// Namespace of the ServiceAccount.
func (a Account) Namespace() string { return a.namespace }

// Name of the ServiceAccount.
func (a Account) Name() string { return a.name }

// EnsureAccount gives the Jobs of a namespace the identity they run as: it
// creates, if absent, the ServiceAccount ns/name and a RoleBinding
// of the same name to clusterRole (artifacts/controller), so that a Job's
// rights end at its namespace. name is one of the controller's own names
// (kubestash-backup, kubestash-restore, ...), never one from a user's
// object.
func EnsureAccount(ctx context.Context, kube kubernetes.Interface, ns, name, clusterRole string) (Account, error) {
	labels := map[string]string{storagev1alpha1.LabelManagedBy: storagev1alpha1.LabelManagedByValue}
	// A Get first: with the controller's cached client (lookup.CachedKube)
	// an account that exists costs no request.
	_, err := kube.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}}
		_, err = kube.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	if err != nil {
		return Account{}, fmt.Errorf("ensure ServiceAccount %s/%s: %w", ns, name, err)
	}
	_, err = kube.RbacV1().RoleBindings(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
		}
		_, err = kube.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	if err != nil {
		return Account{}, fmt.Errorf("ensure RoleBinding %s/%s: %w", ns, name, err)
	}
	return Account{namespace: ns, name: name}, nil
}

// CheckUserAccount checks a ServiceAccount a user named for a Job of
// namespace ns (jobTemplate.spec.serviceAccountName, at fld) against the
// BackupStorages the Job uses (storages, namespaces filled in). The Job
// may run as it, but only the controller's own account (own, made by
// EnsureAccount) is granted a BackupStorage of another namespace
// (GrantStorage): the user's account could not read that storage's
// Secret, and granting it would hand the storage owner's credentials to
// whatever else runs as that account. So a user-named account with such a
// storage is refused, naming the field; with storages of the Job's own
// namespace it needs no grant (the Secrets come by secretKeyRef) and is
// fine. Naming the controller's own account is the same as naming none.
func CheckUserAccount(fld *field.Path, userSA, ns, own string, storages []kmapi.ObjectReference) *field.Error {
	if userSA == "" || userSA == own {
		return nil
	}
	var foreign []string
	for _, s := range storages {
		if s.Namespace != ns {
			foreign = append(foreign, s.Namespace+"/"+s.Name)
		}
	}
	if len(foreign) == 0 {
		return nil
	}
	return field.Forbidden(fld, fmt.Sprintf(
		"the controller grants BackupStorage %s of another namespace only to the ServiceAccount it makes for its Jobs (%s), not to ServiceAccount %q; "+
			"leave serviceAccountName unset, or use a BackupStorage in namespace %s",
		strings.Join(foreign, ", "), own, userSA, ns))
}

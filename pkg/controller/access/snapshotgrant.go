package access

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
)

// LabelGrantRestore marks a grant made for one restore: the
// "<namespace>.<name>" of its RestoreSession.
const LabelGrantRestore = "kubestash.com/restoresession"

// GrantSnapshot lets the restore Job's account sa read, in the namespace
// that shares its snapshots (pkg/sharing), the one Snapshot it restores and
// its Repository, by name: the agent reads both. It lasts as long as the
// restore: RevokeSnapshot removes it when the restore ends.
func GrantSnapshot(ctx context.Context, kube kubernetes.Interface, snap *catalogv1alpha1.Snapshot, sa Account, rsNamespace, rsName string) error {
	if snap.Namespace == sa.namespace {
		return nil
	}
	name := restoreGrantName(rsNamespace, rsName)
	lbls := map[string]string{storagev1alpha1.LabelManagedBy: storagev1alpha1.LabelManagedByValue,
		LabelGrantRestore: restoreGrantLabel(rsNamespace, rsName), LabelGrantNamespace: sa.namespace}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: snap.Namespace, Labels: lbls},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{catalogv1alpha1.GroupName}, Resources: []string{"snapshots"}, Verbs: []string{"get"}, ResourceNames: []string{snap.Name}},
			{APIGroups: []string{catalogv1alpha1.GroupName}, Resources: []string{"repositories"}, Verbs: []string{"get"}, ResourceNames: []string{snap.Spec.Repository}},
		},
	}
	if err := ensureRole(ctx, kube, role); err != nil {
		return err
	}
	return ensureRoleBinding(ctx, kube, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: snap.Namespace, Labels: lbls},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.name, Namespace: sa.namespace}},
	})
}

// RevokeSnapshot removes what GrantSnapshot made for the restore
// rsNamespace/rsName in namespace dataNS; nothing is no error.
func RevokeSnapshot(ctx context.Context, kube kubernetes.Interface, dataNS, rsNamespace, rsName string) error {
	if dataNS == rsNamespace {
		return nil
	}
	name := restoreGrantName(rsNamespace, rsName)
	// Deleted without looking first (unlike revokeGrant): this runs once,
	// as the restore ends, and a cache that has not seen the grant yet
	// must not leave another namespace's Snapshot readable.
	if err := kube.RbacV1().RoleBindings(dataNS).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("revoke RoleBinding %s/%s: %w", dataNS, name, err)
	}
	if err := kube.RbacV1().Roles(dataNS).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("revoke Role %s/%s: %w", dataNS, name, err)
	}
	return nil
}

func restoreGrantLabel(ns, name string) string {
	sum := sha256.Sum256([]byte(ns + "/" + name))
	return hex.EncodeToString(sum[:16])
}

func restoreGrantName(ns, name string) string {
	return "kubestash-restore-" + restoreGrantLabel(ns, name)
}

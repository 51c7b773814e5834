package executor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/storages"
)

// Labels of a grant (the Role and RoleBinding GrantSecretRead makes in a
// Secret's namespace): which Secret, and the namespace of the
// ServiceAccount it lets read it.
const (
	LabelGrantSecret    = "kubestash.com/secret"
	LabelGrantNamespace = "kubestash.com/grantee-namespace"
)

// GrantSecretRead lets the ServiceAccount saNS/saName get one Secret of
// another namespace, and nothing else there: a secretKeyRef cannot reach
// across namespaces, so a Job using a BackupStorage shared from elsewhere
// reads the storage's Secret through the API (pkg/secretenv).
//
// The Role (get on that Secret by name) and the RoleBinding live next to
// the Secret and are owned by it, so they go when it goes; the BackupStorage
// controller revokes bindings its usagePolicy no longer allows
// (RevokeSecretReads). A missing Secret grants nothing: the Job then fails
// naming it, as it would anyway.
func GrantSecretRead(ctx context.Context, kube kubernetes.Interface, secret types.NamespacedName, saNS, saName string) error {
	if secret.Namespace == saNS {
		return nil
	}
	sec, err := kube.CoreV1().Secrets(secret.Namespace).Get(ctx, secret.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get Secret %s to grant access to it: %w", secret, err)
	}
	owner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Secret", Name: sec.Name, UID: sec.UID, BlockOwnerDeletion: ptr.To(false)}}
	roleName := grantName(secret.Name, "")
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: roleName, Namespace: secret.Namespace, OwnerReferences: owner,
			Labels: map[string]string{storagev1alpha1.LabelManagedBy: storagev1alpha1.LabelManagedByValue, LabelGrantSecret: secret.Name}},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: []string{secret.Name}}},
	}
	if err := ensureRole(ctx, kube, role); err != nil {
		return err
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: grantName(secret.Name, saNS+"/"+saName), Namespace: secret.Namespace, OwnerReferences: owner,
			Labels: map[string]string{storagev1alpha1.LabelManagedBy: storagev1alpha1.LabelManagedByValue, LabelGrantSecret: secret.Name, LabelGrantNamespace: saNS}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: roleName},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: saName, Namespace: saNS}},
	}
	return ensureRoleBinding(ctx, kube, rb)
}

// GrantStorageSecrets grants saNS/saName the Secret of each BackupStorage
// of another namespace whose usagePolicy allows saNS. Only a storage's
// Secret is ever granted: its owner shared it through the usagePolicy. An
// encryption Secret of another namespace is not (nothing says its owner
// agreed); a Job needing one fails naming it.
func GrantStorageSecrets(ctx context.Context, kube kubernetes.Interface, shared []*storagev1alpha1.BackupStorage, saNS, saName string) error {
	for _, bs := range shared {
		if err := Allows(ctx, kube, bs, saNS); err != nil {
			return err
		}
		if err := GrantSecretRead(ctx, kube, types.NamespacedName{Namespace: bs.Namespace, Name: storages.SecretName(bs)}, saNS, saName); err != nil {
			return err
		}
	}
	return nil
}

// Allows says whether bs's usagePolicy lets namespace ns use it; nil means
// yes. It reads the Namespace only for a Selector policy.
func Allows(ctx context.Context, kube kubernetes.Interface, bs *storagev1alpha1.BackupStorage, ns string) error {
	var nsObj *corev1.Namespace
	if storages.From(bs) == storagev1alpha1.NamespacesFromSelector {
		o, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("get Namespace %s for the usagePolicy of BackupStorage %s/%s: %w", ns, bs.Namespace, bs.Name, err)
		}
		if err == nil {
			nsObj = o
		}
	}
	if err := bs.Spec.UsagePolicy.Allows(bs.Namespace, ns, nsObj); err != nil {
		return fmt.Errorf("BackupStorage %s/%s: %w", bs.Namespace, bs.Name, err)
	}
	return nil
}

// RevokeStorageSecrets deletes the grants (GrantStorageSecrets) of
// namespace ns that no BackupStorage of ns justifies any more: none that is
// not being deleted uses that Secret and allows the grantee namespace.
// storages are the BackupStorages of ns.
func RevokeStorageSecrets(ctx context.Context, kube kubernetes.Interface, ns string, storageList []storagev1alpha1.BackupStorage) error {
	l, err := kube.RbacV1().RoleBindings(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelGrantSecret + "," + LabelGrantNamespace})
	if err != nil {
		return fmt.Errorf("list Secret grants of namespace %s: %w", ns, err)
	}
	for _, rb := range l.Items {
		secret, grantee := rb.Labels[LabelGrantSecret], rb.Labels[LabelGrantNamespace]
		justified := false
		for i := range storageList {
			bs := &storageList[i]
			if bs.DeletionTimestamp == nil && storages.SecretName(bs) == secret && Allows(ctx, kube, bs, grantee) == nil {
				justified = true
				break
			}
		}
		if justified {
			continue
		}
		err := kube.RbacV1().RoleBindings(ns).Delete(ctx, rb.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &rb.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("revoke RoleBinding %s/%s: %w", ns, rb.Name, err)
		}
		klog.FromContext(ctx).V(1).Info("Revoked Secret access", "secret", klog.KRef(ns, secret), "granteeNamespace", grantee, "roleBinding", rb.Name)
	}
	return nil
}

// grantName is kubestash-read-<secret>[-<hash of grantee>], cut to fit
// the 253 characters of an object name.
func grantName(secret, grantee string) string {
	name := "kubestash-read-" + secret
	if grantee == "" {
		if len(name) <= 253 {
			return name
		}
		grantee = "role"
	}
	sum := sha256.Sum256([]byte(secret + "\x00" + grantee))
	suffix := "-" + hex.EncodeToString(sum[:5])
	if len(name)+len(suffix) > 253 {
		name = name[:253-len(suffix)]
	}
	return name + suffix
}

func ensureRole(ctx context.Context, kube kubernetes.Interface, want *rbacv1.Role) error {
	c := kube.RbacV1().Roles(want.Namespace)
	got, err := c.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := c.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create Role %s/%s: %w", want.Namespace, want.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get Role %s/%s: %w", want.Namespace, want.Name, err)
	}
	if apiequality.Semantic.DeepEqual(got.Rules, want.Rules) && apiequality.Semantic.DeepEqual(got.OwnerReferences, want.OwnerReferences) {
		return nil
	}
	got = got.DeepCopy()
	got.Rules, got.OwnerReferences = want.Rules, want.OwnerReferences
	if _, err := c.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update Role %s/%s: %w", want.Namespace, want.Name, err)
	}
	return nil
}

func ensureRoleBinding(ctx context.Context, kube kubernetes.Interface, want *rbacv1.RoleBinding) error {
	c := kube.RbacV1().RoleBindings(want.Namespace)
	got, err := c.Get(ctx, want.Name, metav1.GetOptions{})
	if err == nil && got.RoleRef != want.RoleRef {
		// roleRef is immutable: replace the binding.
		if err := c.Delete(ctx, got.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &got.UID}}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("replace RoleBinding %s/%s: %w", want.Namespace, want.Name, err)
		}
		err = apierrors.NewNotFound(rbacv1.Resource("rolebindings"), want.Name)
	}
	if apierrors.IsNotFound(err) {
		if _, err := c.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create RoleBinding %s/%s: %w", want.Namespace, want.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get RoleBinding %s/%s: %w", want.Namespace, want.Name, err)
	}
	if apiequality.Semantic.DeepEqual(got.Subjects, want.Subjects) && apiequality.Semantic.DeepEqual(got.OwnerReferences, want.OwnerReferences) &&
		got.Labels[LabelGrantNamespace] == want.Labels[LabelGrantNamespace] {
		return nil
	}
	got = got.DeepCopy()
	got.Subjects, got.OwnerReferences = want.Subjects, want.OwnerReferences
	if got.Labels == nil {
		got.Labels = map[string]string{}
	}
	for k, v := range want.Labels {
		got.Labels[k] = v
	}
	if _, err := c.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update RoleBinding %s/%s: %w", want.Namespace, want.Name, err)
	}
	return nil
}

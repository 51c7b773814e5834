package access

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/storagebackend"
)

// Labels of a grant (the Role and RoleBinding GrantStorage makes in a
// BackupStorage's namespace): which BackupStorage, and the namespace of the
// ServiceAccount it lets use it.
const (
	LabelGrantStorage   = "kubestash.com/backupstorage"
	LabelGrantNamespace = "kubestash.com/grantee-namespace"
)

// GrantStorage lets the ServiceAccount sa of another namespace read
// what its Jobs need of a BackupStorage shared with it by its usagePolicy:
// the BackupStorage itself and its Secret (a secretKeyRef cannot reach
// across namespaces, see pkg/secretenv), by name, and nothing else there.
//
// The Role and RoleBinding live next to the BackupStorage and are owned by
// it, so they go when it goes; the BackupStorage controller revokes those
// its usagePolicy no longer allows (RevokeStorageGrants). Only a storage's
// Secret is ever granted, since its owner shared it through the
// usagePolicy; an encryption Secret of another namespace is not (nothing
// says its owner agreed), and a Job needing one fails naming it. The
// owner shared it with a namespace's backups, not with any account there:
// sa is an Account, which only EnsureAccount makes, so a ServiceAccount a
// user named in a jobTemplate is never bound (see CheckUserAccount).
func GrantStorage(ctx context.Context, kube kubernetes.Interface, bs *storagev1alpha1.BackupStorage, sa Account) error {
	saNS, saName := sa.namespace, sa.name
	if saNS == "" || saName == "" {
		return fmt.Errorf("BackupStorage %s/%s: no ServiceAccount of the controller's own to grant it to", bs.Namespace, bs.Name)
	}
	if bs.Namespace == saNS {
		return nil
	}
	if err := Allows(ctx, kube, bs, saNS); err != nil {
		return err
	}
	owner := []metav1.OwnerReference{{APIVersion: storagev1alpha1.SchemeGroupVersion.String(), Kind: "BackupStorage", Name: bs.Name, UID: bs.UID, BlockOwnerDeletion: ptr.To(false)}}
	rules := []rbacv1.PolicyRule{{APIGroups: []string{storagev1alpha1.SchemeGroupVersion.Group}, Resources: []string{"backupstorages"}, Verbs: []string{"get"}, ResourceNames: []string{bs.Name}}}
	if sn := storagebackend.SecretName(bs); sn != "" {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: []string{sn}})
	}
	roleName := grantName(bs.Name, "")
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: roleName, Namespace: bs.Namespace, OwnerReferences: owner,
			Labels: map[string]string{storagev1alpha1.LabelManagedBy: storagev1alpha1.LabelManagedByValue, LabelGrantStorage: bs.Name}},
		Rules: rules,
	}
	if err := ensureRole(ctx, kube, role); err != nil {
		return err
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: grantName(bs.Name, saNS+"/"+saName), Namespace: bs.Namespace, OwnerReferences: owner,
			Labels: map[string]string{storagev1alpha1.LabelManagedBy: storagev1alpha1.LabelManagedByValue, LabelGrantStorage: bs.Name, LabelGrantNamespace: saNS}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: roleName},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: saName, Namespace: saNS}},
	}
	return ensureRoleBinding(ctx, kube, rb)
}

// GrantStorages is GrantStorage for each of shared.
func GrantStorages(ctx context.Context, kube kubernetes.Interface, shared []*storagev1alpha1.BackupStorage, sa Account) error {
	for _, bs := range shared {
		if err := GrantStorage(ctx, kube, bs, sa); err != nil {
			return err
		}
	}
	return nil
}

// Allows says whether bs's usagePolicy lets namespace ns use it; nil means
// yes. It reads the Namespace only for a Selector policy.
func Allows(ctx context.Context, kube kubernetes.Interface, bs *storagev1alpha1.BackupStorage, ns string) error {
	var nsObj *corev1.Namespace
	if storagev1alpha1.AllowedFrom(bs) == storagev1alpha1.NamespacesFromSelector {
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

// RevokeStorageGrants deletes the grants (GrantStorage) on BackupStorage
// ns/name that it no longer justifies: it is gone, being deleted, or its
// usagePolicy no longer allows the grantee namespace. bs is nil when the
// BackupStorage is gone.
func RevokeStorageGrants(ctx context.Context, kube kubernetes.Interface, ns, name string, bs *storagev1alpha1.BackupStorage) error {
	l, err := kube.RbacV1().RoleBindings(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelGrantStorage + "=" + name + "," + LabelGrantNamespace})
	if err != nil {
		return fmt.Errorf("list grants on BackupStorage %s/%s: %w", ns, name, err)
	}
	for _, rb := range l.Items {
		grantee := rb.Labels[LabelGrantNamespace]
		if bs != nil && bs.DeletionTimestamp == nil && Allows(ctx, kube, bs, grantee) == nil {
			continue
		}
		err := kube.RbacV1().RoleBindings(ns).Delete(ctx, rb.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &rb.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("revoke RoleBinding %s/%s: %w", ns, rb.Name, err)
		}
		klog.FromContext(ctx).V(1).Info("Revoked access to a shared BackupStorage", "backupStorage", klog.KRef(ns, name), "granteeNamespace", grantee, "roleBinding", rb.Name)
	}
	return nil
}

// grantName is kubestash-use-<storage>[-<hash of grantee>], cut to fit
// the 253 characters of an object name.
func grantName(storage, grantee string) string {
	name := "kubestash-use-" + storage
	if grantee == "" {
		if len(name) <= 253 {
			return name
		}
		grantee = "role"
	}
	sum := sha256.Sum256([]byte(storage + "\x00" + grantee))
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

// LabelCatalogGrant marks the Role and RoleBinding that let the catalog
// server read a BackupStorage's Secret (GrantCatalogSecret); its value is
// the BackupStorage's name.
const LabelCatalogGrant = "kubestash.com/catalog-secret-of"

// DefaultCatalogServerAccount is the catalog server's ServiceAccount as
// artifacts/apiserver installs it.
const DefaultCatalogServerAccount = "kubestash/catalog-apiserver"

// GrantCatalogSecret lets the catalog server's ServiceAccount (account,
// "namespace/name") get the Secret that bs names, by name, and nothing
// else: the server reads each storage's Secret with a GET (pkg/storagetracker)
// and holds no cluster-wide right on Secrets. The Role and RoleBinding
// are next to the BackupStorage and owned by it, so they go when it goes;
// a changed Secret name changes the Role, and a storage without Secret (or
// an empty account) has no grant. Granting get needs the controller to
// hold get on Secrets (RBAC's escalation check), which it has; a list or
// watch grant would need list and watch on all of them.
func GrantCatalogSecret(ctx context.Context, kube kubernetes.Interface, bs *storagev1alpha1.BackupStorage, account string) error {
	name := catalogGrantName(bs.Name)
	saNS, saName, _ := strings.Cut(account, "/")
	sn := storagebackend.SecretName(bs)
	if sn == "" || saNS == "" || saName == "" {
		return revokeGrant(ctx, kube, bs.Namespace, name)
	}
	owner := []metav1.OwnerReference{{APIVersion: storagev1alpha1.SchemeGroupVersion.String(), Kind: "BackupStorage", Name: bs.Name, UID: bs.UID, BlockOwnerDeletion: ptr.To(false)}}
	labels := map[string]string{storagev1alpha1.LabelManagedBy: storagev1alpha1.LabelManagedByValue, LabelCatalogGrant: bs.Name}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: bs.Namespace, OwnerReferences: owner, Labels: labels},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: []string{sn}}},
	}
	if err := ensureRole(ctx, kube, role); err != nil {
		return err
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: bs.Namespace, OwnerReferences: owner, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: saName, Namespace: saNS}},
	}
	return ensureRoleBinding(ctx, kube, rb)
}

// revokeGrant deletes the RoleBinding and the Role named name in ns, each
// only when there: revokes run on every reconcile, and a grant that never
// was must cost no write (the controller's cached reads answer a
// ResourceVersion "0" Get without a request).
func revokeGrant(ctx context.Context, kube kubernetes.Interface, ns, name string) error {
	rbs, roles := kube.RbacV1().RoleBindings(ns), kube.RbacV1().Roles(ns)
	if err := deleteIfPresent(ctx, "RoleBinding", ns, name, rbs.Get, rbs.Delete); err != nil {
		return err
	}
	return deleteIfPresent(ctx, "Role", ns, name, roles.Get, roles.Delete)
}

func deleteIfPresent[T any](ctx context.Context, kind, ns, name string,
	get func(context.Context, string, metav1.GetOptions) (T, error), del func(context.Context, string, metav1.DeleteOptions) error) error {
	_, err := get(ctx, name, metav1.GetOptions{ResourceVersion: "0"})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get %s %s/%s: %w", kind, ns, name, err)
	}
	if err := del(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s %s/%s: %w", kind, ns, name, err)
	}
	return nil
}

// catalogGrantName is kubestash-catalog-<storage>, cut to fit the 253
// characters of an object name.
func catalogGrantName(storage string) string {
	name := "kubestash-catalog-" + storage
	if len(name) <= 253 {
		return name
	}
	sum := sha256.Sum256([]byte(storage))
	suffix := "-" + hex.EncodeToString(sum[:5])
	return name[:253-len(suffix)] + suffix
}

package access

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
)

// LabelCatalogEncryptionGrant marks the Role and RoleBinding that let the
// catalog server read the encryption Secrets of a BackupConfiguration's
// Repositories (GrantCatalogEncryptionSecrets); its value is the
// configuration's name.
const LabelCatalogEncryptionGrant = "kubestash.com/catalog-encryption-secrets-of"

// GrantCatalogEncryptionSecrets lets the catalog server's ServiceAccount
// (account, "namespace/name") get the encryption Secrets that bc's
// repositories name, by name, in bc's namespace, and nothing else: the
// server opens a Snapshot's restic repository to serve snapshots/files and
// snapshots/download. Secrets of other namespaces are never granted (the
// configuration refuses them anyway). The Role and RoleBinding are owned
// by bc, so they go when it goes; an empty account or no Secret means no
// grant.
func GrantCatalogEncryptionSecrets(ctx context.Context, kube kubernetes.Interface, bc *corev1alpha1.BackupConfiguration, account string) error {
	name := catalogEncryptionGrantName(bc.Name)
	names := map[string]bool{}
	for _, s := range bc.Spec.Sessions {
		for _, ri := range s.Repositories {
			if ref := ri.EncryptionSecret; ref != nil && ref.Name != "" && (ref.Namespace == "" || ref.Namespace == bc.Namespace) {
				names[ref.Name] = true
			}
		}
	}
	saNS, saName, _ := strings.Cut(account, "/")
	if len(names) == 0 || saNS == "" || saName == "" {
		return revokeGrant(ctx, kube, bc.Namespace, name)
	}
	secrets := make([]string, 0, len(names))
	for n := range names {
		secrets = append(secrets, n)
	}
	sort.Strings(secrets)
	owner := []metav1.OwnerReference{{APIVersion: corev1alpha1.SchemeGroupVersion.String(), Kind: "BackupConfiguration", Name: bc.Name, UID: bc.UID, BlockOwnerDeletion: ptr.To(false)}}
	labels := map[string]string{storagev1alpha1.LabelManagedBy: storagev1alpha1.LabelManagedByValue, LabelCatalogEncryptionGrant: bc.Name}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: bc.Namespace, OwnerReferences: owner, Labels: labels},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: secrets}},
	}
	if err := ensureRole(ctx, kube, role); err != nil {
		return err
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: bc.Namespace, OwnerReferences: owner, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: saName, Namespace: saNS}},
	}
	return ensureRoleBinding(ctx, kube, rb)
}

// catalogEncryptionGrantName is kubestash-catalog-encryption-<bc>, cut to
// fit an object name.
func catalogEncryptionGrantName(bc string) string {
	name := "kubestash-catalog-encryption-" + bc
	if len(name) <= 253 {
		return name
	}
	sum := sha256.Sum256([]byte(bc))
	suffix := "-" + hex.EncodeToString(sum[:5])
	return name[:253-len(suffix)] + suffix
}

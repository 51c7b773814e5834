package access

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
)

func sharedStorage(from storagev1alpha1.FromNamespaces, sel *metav1.LabelSelector) *storagev1alpha1.BackupStorage {
	return &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Name: "s3-storage", Namespace: "stash", UID: "bs-uid"},
		Spec: storagev1alpha1.BackupStorageSpec{
			Storage:     storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderS3, S3: &storagev1alpha1.S3Spec{Bucket: "b", SecretName: "s3-secret"}},
			UsagePolicy: &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: ptr.To(from), Selector: sel}},
		},
	}
}

func TestGrantStorage(t *testing.T) {
	team := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo", Labels: map[string]string{"team": "a"}}}
	local := sharedStorage(storagev1alpha1.NamespacesFromAll, nil)
	local.Spec.Storage = storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderLocal, Local: &storagev1alpha1.LocalSpec{MountPath: "/backup"}}
	storageRule := rbacv1.PolicyRule{APIGroups: []string{"storage.kubestash.com"}, Resources: []string{"backupstorages"}, Verbs: []string{"get"}, ResourceNames: []string{"s3-storage"}}
	secretRule := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: []string{"s3-secret"}}
	for _, c := range []struct {
		name      string
		bs        *storagev1alpha1.BackupStorage
		objects   []runtime.Object
		wantErr   string
		wantRules []rbacv1.PolicyRule // nil: nothing granted
	}{
		{name: "from All", bs: sharedStorage(storagev1alpha1.NamespacesFromAll, nil), wantRules: []rbacv1.PolicyRule{storageRule, secretRule}},
		{name: "selector matches", bs: sharedStorage(storagev1alpha1.NamespacesFromSelector, &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}),
			objects: []runtime.Object{team}, wantRules: []rbacv1.PolicyRule{storageRule, secretRule}},
		{name: "a storage without Secret", bs: local, wantRules: []rbacv1.PolicyRule{storageRule}},
		{name: "selector does not match", bs: sharedStorage(storagev1alpha1.NamespacesFromSelector, &metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}}),
			objects: []runtime.Object{team}, wantErr: "does not match the usagePolicy selector"},
		{name: "from Same", bs: sharedStorage(storagev1alpha1.NamespacesFromSame, nil),
			wantErr: "BackupStorage stash/s3-storage: usagePolicy allows only namespace stash"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			kube := fake.NewClientset(c.objects...)
			for range 2 { // idempotent
				err := GrantStorages(ctx, kube, []*storagev1alpha1.BackupStorage{c.bs}, Account{"demo", "kubestash-backup"})
				if c.wantErr != "" {
					require.ErrorContains(t, err, c.wantErr)
				} else {
					require.NoError(t, err)
				}
			}
			rbs, err := kube.RbacV1().RoleBindings("stash").List(ctx, metav1.ListOptions{})
			require.NoError(t, err)
			roles, err := kube.RbacV1().Roles("stash").List(ctx, metav1.ListOptions{})
			require.NoError(t, err)
			if c.wantRules == nil {
				assert.Empty(t, rbs.Items)
				assert.Empty(t, roles.Items)
				return
			}
			require.Len(t, roles.Items, 1)
			require.Len(t, rbs.Items, 1)
			role, rb := roles.Items[0], rbs.Items[0]
			assert.Equal(t, c.wantRules, role.Rules, "get on that storage and its Secret by name, nothing else")
			assert.Equal(t, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}, rb.RoleRef)
			assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "kubestash-backup", Namespace: "demo"}}, rb.Subjects)
			for _, owners := range [][]metav1.OwnerReference{role.OwnerReferences, rb.OwnerReferences} {
				require.Len(t, owners, 1)
				assert.Equal(t, "BackupStorage", owners[0].Kind, "they go with the BackupStorage")
				assert.EqualValues(t, "bs-uid", owners[0].UID)
			}
		})
	}
}

func TestGrantInOwnNamespaceIsNoOp(t *testing.T) {
	ctx := context.Background()
	kube := fake.NewClientset()
	require.NoError(t, GrantStorage(ctx, kube, sharedStorage(storagev1alpha1.NamespacesFromAll, nil), Account{"stash", "kubestash-backup"}))
	rbs, err := kube.RbacV1().RoleBindings("stash").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, rbs.Items, "the Job's own RoleBinding and secretKeyRefs suffice")
}

func TestRevokeStorageGrants(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		now  *storagev1alpha1.BackupStorage // nil: deleted
		kept []string                       // grantee namespaces still bound
	}{
		{name: "policy still allows", now: sharedStorage(storagev1alpha1.NamespacesFromAll, nil), kept: []string{"demo", "other"}},
		{name: "policy narrowed to a selector", now: sharedStorage(storagev1alpha1.NamespacesFromSelector, &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}), kept: []string{"demo"}},
		{name: "policy narrowed to Same", now: sharedStorage(storagev1alpha1.NamespacesFromSame, nil)},
		{name: "storage deleted"},
		{name: "storage being deleted", now: func() *storagev1alpha1.BackupStorage {
			bs := sharedStorage(storagev1alpha1.NamespacesFromAll, nil)
			bs.DeletionTimestamp = ptr.To(metav1.Now())
			return bs
		}()},
	} {
		t.Run(c.name, func(t *testing.T) {
			kube := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo", Labels: map[string]string{"team": "a"}}})
			all := sharedStorage(storagev1alpha1.NamespacesFromAll, nil)
			for _, ns := range []string{"demo", "other"} {
				require.NoError(t, GrantStorage(ctx, kube, all, Account{ns, "kubestash-backup"}))
			}
			// A grant on another storage of the namespace is not its business.
			other := sharedStorage(storagev1alpha1.NamespacesFromAll, nil)
			other.Name = "second"
			require.NoError(t, GrantStorage(ctx, kube, other, Account{"demo", "kubestash-backup"}))

			require.NoError(t, RevokeStorageGrants(ctx, kube, "stash", "s3-storage", c.now))
			rbs, err := kube.RbacV1().RoleBindings("stash").List(ctx, metav1.ListOptions{LabelSelector: LabelGrantStorage + "=s3-storage"})
			require.NoError(t, err)
			var got []string
			for _, rb := range rbs.Items {
				got = append(got, rb.Subjects[0].Namespace)
			}
			assert.ElementsMatch(t, c.kept, got)
			rest, err := kube.RbacV1().RoleBindings("stash").List(ctx, metav1.ListOptions{LabelSelector: LabelGrantStorage + "=second"})
			require.NoError(t, err)
			assert.Len(t, rest.Items, 1)
		})
	}
}

func TestGrantName(t *testing.T) {
	assert.Equal(t, "kubestash-use-s3-storage", grantName("s3-storage", ""))
	a, b := grantName("a-b", "c/sa"), grantName("a", "b-c/sa")
	assert.NotEqual(t, a, b, "no collision between look-alike pairs")
	long := grantName(string(make([]byte, 300)), "ns/sa")
	assert.LessOrEqual(t, len(long), 253)
}

// TestGrantOnlyToOwnAccounts: an account is granted a shared storage only
// as an Account, which EnsureAccount makes; a zero Account (what code
// outside the package can write) is refused and binds nothing.
func TestGrantOnlyToOwnAccounts(t *testing.T) {
	ctx := context.Background()
	kube := fake.NewClientset()
	acct, err := EnsureAccount(ctx, kube, "demo", "kubestash-backup", "kubestash-backup-job")
	require.NoError(t, err)
	assert.Equal(t, Account{"demo", "kubestash-backup"}, acct)
	require.NoError(t, GrantStorage(ctx, kube, sharedStorage(storagev1alpha1.NamespacesFromAll, nil), acct))

	kube = fake.NewClientset()
	err = GrantStorage(ctx, kube, sharedStorage(storagev1alpha1.NamespacesFromAll, nil), Account{})
	require.EqualError(t, err, "BackupStorage stash/s3-storage: no ServiceAccount of the controller's own to grant it to")
	rbs, err := kube.RbacV1().RoleBindings("stash").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, rbs.Items)
}

func TestCheckUserAccount(t *testing.T) {
	fld := field.NewPath("spec", "addon", "jobTemplate", "spec", "serviceAccountName")
	local := kmapi.ObjectReference{Namespace: "demo", Name: "local-storage"}
	shared := kmapi.ObjectReference{Namespace: "stash", Name: "s3-storage"}
	for _, c := range []struct {
		name     string
		userSA   string
		storages []kmapi.ObjectReference
		wantErr  string
	}{
		{name: "no account named", storages: []kmapi.ObjectReference{shared}},
		{name: "the controller's own account named", userSA: "kubestash-backup", storages: []kmapi.ObjectReference{shared}},
		{name: "a user's account with a storage of its namespace", userSA: "my-sa", storages: []kmapi.ObjectReference{local}},
		{name: "a user's account without storage", userSA: "my-sa"},
		{name: "a user's account with a shared storage", userSA: "my-sa", storages: []kmapi.ObjectReference{local, shared},
			wantErr: `spec.addon.jobTemplate.spec.serviceAccountName: Forbidden: the controller grants BackupStorage stash/s3-storage of another namespace ` +
				`only to the ServiceAccount it makes for its Jobs (kubestash-backup), not to ServiceAccount "my-sa"; ` +
				`leave serviceAccountName unset, or use a BackupStorage in namespace demo`},
		{name: "default, which every pod runs as", userSA: "default", storages: []kmapi.ObjectReference{shared}, wantErr: `not to ServiceAccount "default"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckUserAccount(fld, c.userSA, "demo", "kubestash-backup", c.storages)
			if c.wantErr == "" {
				assert.Nil(t, err)
				return
			}
			require.NotNil(t, err)
			assert.Equal(t, field.ErrorTypeForbidden, err.Type)
			assert.Equal(t, fld.String(), err.Field)
			assert.Contains(t, err.Error(), c.wantErr)
		})
	}
}

// TestGrantCatalogSecret: the catalog server's account may get the
// storage's Secret by name and nothing else; the grant follows the Secret
// name and is owned by the BackupStorage.
func TestGrantCatalogSecret(t *testing.T) {
	secretRule := func(name string) []rbacv1.PolicyRule {
		return []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: []string{name}}}
	}
	withSecret := func(name string) *storagev1alpha1.BackupStorage {
		bs := sharedStorage(storagev1alpha1.NamespacesFromSame, nil)
		bs.Spec.Storage.S3.SecretName = name
		return bs
	}
	for _, c := range []struct {
		name      string
		steps     []*storagev1alpha1.BackupStorage // reconciled in turn
		account   string
		wantRules []rbacv1.PolicyRule // nil: no grant
	}{
		{name: "the storage's Secret alone", steps: []*storagev1alpha1.BackupStorage{withSecret("s3-secret")},
			account: DefaultCatalogServerAccount, wantRules: secretRule("s3-secret")},
		{name: "follows a new Secret name", steps: []*storagev1alpha1.BackupStorage{withSecret("s3-secret"), withSecret("rotated")},
			account: DefaultCatalogServerAccount, wantRules: secretRule("rotated")},
		{name: "a Secret no longer named", steps: []*storagev1alpha1.BackupStorage{withSecret("s3-secret"), withSecret("")},
			account: DefaultCatalogServerAccount},
		{name: "no account", steps: []*storagev1alpha1.BackupStorage{withSecret("s3-secret")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			kube := fake.NewClientset()
			for _, bs := range c.steps {
				for range 2 { // idempotent
					require.NoError(t, GrantCatalogSecret(ctx, kube, bs, c.account))
				}
			}
			roles, err := kube.RbacV1().Roles("stash").List(ctx, metav1.ListOptions{})
			require.NoError(t, err)
			bindings, err := kube.RbacV1().RoleBindings("stash").List(ctx, metav1.ListOptions{})
			require.NoError(t, err)
			if c.wantRules == nil {
				assert.Empty(t, roles.Items)
				assert.Empty(t, bindings.Items)
				return
			}
			require.Len(t, roles.Items, 1)
			require.Len(t, bindings.Items, 1)
			role, rb := roles.Items[0], bindings.Items[0]
			assert.Equal(t, "kubestash-catalog-s3-storage", role.Name)
			assert.Equal(t, c.wantRules, role.Rules)
			assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "catalog-apiserver", Namespace: "kubestash"}}, rb.Subjects)
			assert.Equal(t, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}, rb.RoleRef)
			for _, owners := range [][]metav1.OwnerReference{role.OwnerReferences, rb.OwnerReferences} {
				require.Len(t, owners, 1)
				assert.Equal(t, "BackupStorage", owners[0].Kind)
				assert.Equal(t, "s3-storage", owners[0].Name)
				assert.EqualValues(t, "bs-uid", owners[0].UID)
			}
			// Not a shared-storage grant: RevokeStorageGrants leaves it.
			require.NoError(t, RevokeStorageGrants(ctx, kube, "stash", "s3-storage", nil))
			_, err = kube.RbacV1().RoleBindings("stash").Get(ctx, rb.Name, metav1.GetOptions{})
			assert.NoError(t, err)
		})
	}
}

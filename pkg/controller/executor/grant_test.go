package executor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
)

func sharedStorage(from storagev1alpha1.FromNamespaces, sel *metav1.LabelSelector) *storagev1alpha1.BackupStorage {
	return &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Name: "s3-storage", Namespace: "stash"},
		Spec: storagev1alpha1.BackupStorageSpec{
			Storage:     storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderS3, S3: &storagev1alpha1.S3Spec{Bucket: "b", SecretName: "s3-secret"}},
			UsagePolicy: &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: ptr.To(from), Selector: sel}},
		},
	}
}

func TestGrantStorageSecrets(t *testing.T) {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-secret", Namespace: "stash", UID: "secret-uid"}}
	team := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo", Labels: map[string]string{"team": "a"}}}
	for _, c := range []struct {
		name    string
		bs      *storagev1alpha1.BackupStorage
		objects []runtime.Object
		wantErr string
		granted bool
	}{
		{name: "from All", bs: sharedStorage(storagev1alpha1.NamespacesFromAll, nil), objects: []runtime.Object{secret}, granted: true},
		{name: "selector matches", bs: sharedStorage(storagev1alpha1.NamespacesFromSelector, &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}),
			objects: []runtime.Object{secret, team}, granted: true},
		{name: "selector does not match", bs: sharedStorage(storagev1alpha1.NamespacesFromSelector, &metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}}),
			objects: []runtime.Object{secret, team}, wantErr: "does not match the usagePolicy selector"},
		{name: "from Same", bs: sharedStorage(storagev1alpha1.NamespacesFromSame, nil), objects: []runtime.Object{secret},
			wantErr: "BackupStorage stash/s3-storage: usagePolicy allows only namespace stash"},
		{name: "missing Secret grants nothing", bs: sharedStorage(storagev1alpha1.NamespacesFromAll, nil)},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			kube := fake.NewClientset(c.objects...)
			for range 2 { // idempotent
				err := GrantStorageSecrets(ctx, kube, []*storagev1alpha1.BackupStorage{c.bs}, "demo", "kubestash-backup-job")
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
			if !c.granted {
				assert.Empty(t, rbs.Items)
				assert.Empty(t, roles.Items)
				return
			}
			require.Len(t, roles.Items, 1)
			require.Len(t, rbs.Items, 1)
			role, rb := roles.Items[0], rbs.Items[0]
			assert.Equal(t, []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: []string{"s3-secret"}}}, role.Rules,
				"get on that one Secret, nothing else")
			assert.Equal(t, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}, rb.RoleRef)
			assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "kubestash-backup-job", Namespace: "demo"}}, rb.Subjects)
			for _, owners := range [][]metav1.OwnerReference{role.OwnerReferences, rb.OwnerReferences} {
				require.Len(t, owners, 1)
				assert.Equal(t, "Secret", owners[0].Kind, "they go with the Secret")
				assert.EqualValues(t, "secret-uid", owners[0].UID)
			}
		})
	}
}

func TestGrantInOwnNamespaceIsNoOp(t *testing.T) {
	ctx := context.Background()
	bs := sharedStorage(storagev1alpha1.NamespacesFromAll, nil)
	kube := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-secret", Namespace: "stash"}})
	require.NoError(t, GrantSecretRead(ctx, kube, types.NamespacedName{Namespace: bs.Namespace, Name: "s3-secret"}, "stash", "kubestash-backup-job"))
	rbs, err := kube.RbacV1().RoleBindings("stash").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, rbs.Items, "secretKeyRef reaches the Secret; no RBAC needed")
}

func TestRevokeStorageSecrets(t *testing.T) {
	ctx := context.Background()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-secret", Namespace: "stash", UID: "secret-uid"}}
	for _, c := range []struct {
		name     string
		storages []*storagev1alpha1.BackupStorage
		kept     []string // grantee namespaces still bound
	}{
		{name: "policy still allows", storages: []*storagev1alpha1.BackupStorage{sharedStorage(storagev1alpha1.NamespacesFromAll, nil)}, kept: []string{"demo", "other"}},
		{name: "policy narrowed to Same", storages: []*storagev1alpha1.BackupStorage{sharedStorage(storagev1alpha1.NamespacesFromSame, nil)}},
		{name: "storage deleted", storages: nil},
		{name: "storage being deleted", storages: []*storagev1alpha1.BackupStorage{func() *storagev1alpha1.BackupStorage {
			bs := sharedStorage(storagev1alpha1.NamespacesFromAll, nil)
			bs.DeletionTimestamp = ptr.To(metav1.Now())
			return bs
		}()}},
		{name: "another storage of the same Secret still shares it", storages: []*storagev1alpha1.BackupStorage{
			sharedStorage(storagev1alpha1.NamespacesFromSame, nil),
			func() *storagev1alpha1.BackupStorage {
				bs := sharedStorage(storagev1alpha1.NamespacesFromAll, nil)
				bs.Name = "second"
				return bs
			}(),
		}, kept: []string{"demo", "other"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			kube := fake.NewClientset(secret)
			all := sharedStorage(storagev1alpha1.NamespacesFromAll, nil)
			for _, ns := range []string{"demo", "other"} {
				require.NoError(t, GrantStorageSecrets(ctx, kube, []*storagev1alpha1.BackupStorage{all}, ns, "kubestash-backup-job"))
			}
			var list []storagev1alpha1.BackupStorage
			for _, bs := range c.storages {
				list = append(list, *bs)
			}
			require.NoError(t, RevokeStorageSecrets(ctx, kube, "stash", list))
			rbs, err := kube.RbacV1().RoleBindings("stash").List(ctx, metav1.ListOptions{})
			require.NoError(t, err)
			var got []string
			for _, rb := range rbs.Items {
				got = append(got, rb.Subjects[0].Namespace)
			}
			assert.ElementsMatch(t, c.kept, got)
		})
	}
}

func TestGrantName(t *testing.T) {
	assert.Equal(t, "kubestash-read-s3-secret", grantName("s3-secret", ""))
	a, b := grantName("a-b", "c/sa"), grantName("a", "b-c/sa")
	assert.NotEqual(t, a, b, "no collision between look-alike pairs")
	long := grantName(string(make([]byte, 300)), "ns/sa")
	assert.LessOrEqual(t, len(long), 253)
}

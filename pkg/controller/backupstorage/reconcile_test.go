package backupstorage

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backenddirs"
	"kubestash.dev/kubestash/pkg/conditions"
	"kubestash.dev/kubestash/pkg/controller/access"
	"kubestash.dev/kubestash/pkg/controller/lookup/lookuptest"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned/fake"
	"kubestash.dev/kubestash/pkg/storagebackend"
)

func TestLocalStorageBecomesReady(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bs := &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "local"},
		Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.Backend{
			Provider: storagev1alpha1.ProviderLocal,
			Local: &storagev1alpha1.LocalSpec{MountPath: "/safe/data",
				VolumeSource: storagev1alpha1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}}},
		}},
	}
	repo := &catalogv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "r"},
		Spec:   catalogv1alpha1.RepositorySpec{StorageRef: kmapi.ObjectReference{Name: "local"}, Path: "/r"},
		Status: catalogv1alpha1.RepositoryStatus{Size: "1.500 KiB"}}
	other := &catalogv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "o"},
		Spec: catalogv1alpha1.RepositorySpec{StorageRef: kmapi.ObjectReference{Name: "elsewhere"}, Path: "/o"}}
	kube, ks := kubefake.NewSimpleClientset(), fake.NewSimpleClientset(bs, repo, other)
	informed := lookuptest.NewInformed(t, kube, ks)
	r := &Reconciler{Kube: kube, Client: ks, Reads: informed.Reads, Build: storagebackend.Builder{LocalDirs: backenddirs.Policy{Allowed: []string{dir}}}.Build}
	require.NoError(t, r.Reconcile(ctx, "demo", "local"))
	// No Secret, so no grant of it to the catalog server: status alone.
	assert.Equal(t, []string{"update backupstorages/status demo/local"}, informed.Writes())

	got, err := ks.StorageV1alpha1().BackupStorages("demo").Get(ctx, "local", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, storagev1alpha1.BackupStoragePhaseReady, got.Status.Phase)
	assert.True(t, conditions.IsTrue(got.Status.Conditions, storagev1alpha1.TypeBackendInitialized))
	assert.Nil(t, conditions.Get(got.Status.Conditions, storagev1alpha1.TypeBackendSecretFound), "no Secret, no condition")
	_, err = os.Stat(filepath.Join(dir, "metadata.yaml"))
	require.NoError(t, err, "metadata.yaml written")
	require.Len(t, got.Status.Repositories, 1)
	assert.Equal(t, "r", got.Status.Repositories[0].Name)
	assert.Equal(t, "1.500 KiB", got.Status.TotalSize)
}

func TestMissingSecret(t *testing.T) {
	ctx := context.Background()
	bs := &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "s3"},
		Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.Backend{
			Provider: storagev1alpha1.ProviderS3,
			S3:       &storagev1alpha1.S3Spec{Endpoint: "http://127.0.0.1:1", Bucket: "b", SecretName: "s3-secret"},
		}},
	}
	kube, ks := kubefake.NewSimpleClientset(), fake.NewSimpleClientset(bs)
	informed := lookuptest.NewInformed(t, kube, ks)
	r := &Reconciler{Kube: kube, Client: ks, Reads: informed.Reads}
	require.NoError(t, r.Reconcile(ctx, "demo", "s3"))
	// No CatalogServerAccount, so no grant to the catalog server.
	assert.Equal(t, []string{"update backupstorages/status demo/s3"}, informed.Writes())
	got, err := ks.StorageV1alpha1().BackupStorages("demo").Get(ctx, "s3", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, storagev1alpha1.BackupStoragePhaseNotReady, got.Status.Phase)
	c := conditions.Get(got.Status.Conditions, storagev1alpha1.TypeBackendSecretFound)
	require.NotNil(t, c)
	assert.Contains(t, c.Message, "demo/s3-secret: not found")
}

// TestLocalStorageWhereNotAllowed: a tenant's local BackupStorage on a
// directory no administrator allowed, or on a system directory, stays
// NotReady with the field named, and nothing is written there.
func TestLocalStorageWhereNotAllowed(t *testing.T) {
	allowed := t.TempDir()
	for _, c := range []struct {
		name, path string
		allowed    []string
		wantErr    string
	}{
		{name: "outside the allowed directories", path: t.TempDir(), allowed: []string{allowed},
			wantErr: "spec.storage.local.hostPath.path: Forbidden: "},
		{name: "nothing allowed", path: t.TempDir(),
			wantErr: "--local-backend-dirs (none are allowed now)"},
		{name: "a system directory, even with / allowed", path: "/usr", allowed: []string{"/"},
			wantErr: "spec.storage.local.hostPath.path: Forbidden: /usr is a system directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			bs := &storagev1alpha1.BackupStorage{
				ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "local"},
				Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.Backend{
					Provider: storagev1alpha1.ProviderLocal,
					Local: &storagev1alpha1.LocalSpec{MountPath: "/safe/data",
						VolumeSource: storagev1alpha1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: c.path}}},
				}},
			}
			kube, ks := kubefake.NewSimpleClientset(), fake.NewSimpleClientset(bs)
			informed := lookuptest.NewInformed(t, kube, ks)
			r := &Reconciler{Kube: kube, Client: ks, Reads: informed.Reads, Build: storagebackend.Builder{LocalDirs: backenddirs.Policy{Allowed: c.allowed}}.Build}
			require.NoError(t, r.Reconcile(ctx, "tenant", "local"))
			// The refusal is in status, and nowhere else.
			assert.Equal(t, []string{"update backupstorages/status tenant/local"}, informed.Writes())
			got, err := ks.StorageV1alpha1().BackupStorages("tenant").Get(ctx, "local", metav1.GetOptions{})
			require.NoError(t, err)
			assert.Equal(t, storagev1alpha1.BackupStoragePhaseNotReady, got.Status.Phase)
			cond := conditions.Get(got.Status.Conditions, storagev1alpha1.TypeBackendInitialized)
			require.NotNil(t, cond)
			assert.Contains(t, cond.Message, c.wantErr)
			_, err = os.Stat(filepath.Join(c.path, "metadata.yaml"))
			assert.True(t, os.IsNotExist(err), "nothing written: %v", err)
		})
	}
}

// TestCatalogServerGrantedTheSecret: reconciling a storage grants the
// catalog server's account get on its Secret alone (even while the
// Secret is missing: it may come), next to the storage.
func TestCatalogServerGrantedTheSecret(t *testing.T) {
	ctx := context.Background()
	bs := &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "s3", UID: "bs-uid"},
		Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.Backend{
			Provider: storagev1alpha1.ProviderS3,
			S3:       &storagev1alpha1.S3Spec{Endpoint: "http://127.0.0.1:1", Bucket: "b", SecretName: "s3-secret"},
		}},
	}
	kube := kubefake.NewSimpleClientset()
	ks := fake.NewSimpleClientset(bs)
	informed := lookuptest.NewInformed(t, kube, ks)
	r := &Reconciler{Kube: kube, Client: ks, CatalogServerAccount: access.DefaultCatalogServerAccount, Reads: informed.Reads}
	require.NoError(t, r.Reconcile(ctx, "demo", "s3"))
	assert.Equal(t, []string{"create roles demo/kubestash-catalog-s3", "create rolebindings demo/kubestash-catalog-s3",
		"update backupstorages/status demo/s3"}, informed.Writes())
	role, err := kube.RbacV1().Roles("demo").Get(ctx, "kubestash-catalog-s3", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: []string{"s3-secret"}}}, role.Rules)
	rb, err := kube.RbacV1().RoleBindings("demo").Get(ctx, "kubestash-catalog-s3", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "catalog-apiserver", Namespace: "kubestash"}}, rb.Subjects)
}

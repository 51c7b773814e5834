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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/controller/access"
	"kubestash.dev/kubestash/pkg/controller/lookup/lookuptest"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned/fake"
)

// TestBackupStorageLifecycle follows one S3 BackupStorage with
// deletionPolicy WipeOut, shared with every namespace, through the
// reconciles the controller makes of it, with the caches caught up between
// them as the controller's are, and checks the writes each one makes: a
// reconcile of an unchanged state writes nothing.
func TestBackupStorageLifecycle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	all := storagev1alpha1.NamespacesFromAll
	bs := &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "s3", UID: "bs-uid"},
		Spec: storagev1alpha1.BackupStorageSpec{DeletionPolicy: storagev1alpha1.DeletionPolicyWipeOut,
			Storage:     storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderS3, S3: &storagev1alpha1.S3Spec{Bucket: "b", SecretName: "s3-secret"}},
			UsagePolicy: &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: &all}}}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "s3-secret"}}
	// What a backup of namespace tenant was granted of the storage.
	grant := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "kubestash-use-s3-tenant", Labels: map[string]string{
		storagev1alpha1.LabelManagedBy: storagev1alpha1.LabelManagedByValue, access.LabelGrantStorage: "s3", access.LabelGrantNamespace: "tenant"}}}
	kube := kubefake.NewSimpleClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}, secret, grant)
	ks := fake.NewSimpleClientset(bs)
	informed := lookuptest.NewInformed(t, kube, ks)
	// The bucket is a folder: the Secret is read, its content not used.
	r := &Reconciler{Kube: kube, Client: ks, CatalogServerAccount: access.DefaultCatalogServerAccount, Reads: informed.Reads,
		Build: func(*storagev1alpha1.BackupStorage, *corev1.Secret) (backend.Backend, error) {
			return backend.NewLocal(dir)
		}}
	update := func(t *testing.T, change func(*storagev1alpha1.BackupStorage)) {
		got, err := ks.StorageV1alpha1().BackupStorages("demo").Get(ctx, "s3", metav1.GetOptions{})
		require.NoError(t, err)
		change(got)
		_, err = ks.StorageV1alpha1().BackupStorages("demo").Update(ctx, got, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	for _, step := range []struct {
		name       string
		before     func(t *testing.T)
		wantWrites []string
		wantPhase  storagev1alpha1.BackupStoragePhase
		wantRepos  []string
		wantMeta   bool // metadata.yaml is in the backend
		wantGone   bool
	}{
		// The finalizer first, alone: its update brings the next reconcile.
		{name: "new", wantWrites: []string{"update backupstorages demo/s3"}},
		{name: "finalizer added", wantPhase: storagev1alpha1.BackupStoragePhaseReady, wantMeta: true, wantWrites: []string{
			"create roles demo/kubestash-catalog-s3", "create rolebindings demo/kubestash-catalog-s3", "update backupstorages/status demo/s3"}},
		{name: "ready", wantPhase: storagev1alpha1.BackupStoragePhaseReady, wantMeta: true},
		{name: "a Repository kept in it", before: func(t *testing.T) {
			_, err := ks.CatalogV1alpha1().Repositories("tenant").Create(ctx, &catalogv1alpha1.Repository{
				ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "repo"},
				Spec:       catalogv1alpha1.RepositorySpec{StorageRef: kmapi.ObjectReference{Namespace: "demo", Name: "s3"}, Path: "/tenant/repo"},
				Status:     catalogv1alpha1.RepositoryStatus{Size: "1 KiB"}}, metav1.CreateOptions{})
			require.NoError(t, err)
		}, wantPhase: storagev1alpha1.BackupStoragePhaseReady, wantMeta: true, wantRepos: []string{"tenant/repo"},
			wantWrites: []string{"update backupstorages/status demo/s3"}},
		{name: "listed", wantPhase: storagev1alpha1.BackupStoragePhaseReady, wantMeta: true, wantRepos: []string{"tenant/repo"}},
		// tenant's grant is no longer allowed: it goes.
		{name: "shared no more", before: func(t *testing.T) {
			update(t, func(bs *storagev1alpha1.BackupStorage) { bs.Spec.UsagePolicy = nil })
		}, wantPhase: storagev1alpha1.BackupStoragePhaseReady, wantMeta: true, wantRepos: []string{"tenant/repo"},
			wantWrites: []string{"delete rolebindings demo/kubestash-use-s3-tenant"}},
		{name: "Secret deleted", before: func(t *testing.T) {
			require.NoError(t, kube.CoreV1().Secrets("demo").Delete(ctx, "s3-secret", metav1.DeleteOptions{}))
		}, wantPhase: storagev1alpha1.BackupStoragePhaseNotReady, wantMeta: true, wantRepos: []string{"tenant/repo"},
			wantWrites: []string{"update backupstorages/status demo/s3"}},
		{name: "Secret missing", wantPhase: storagev1alpha1.BackupStoragePhaseNotReady, wantMeta: true, wantRepos: []string{"tenant/repo"}},
		{name: "Secret back", before: func(t *testing.T) {
			_, err := kube.CoreV1().Secrets("demo").Create(ctx, secret, metav1.CreateOptions{})
			require.NoError(t, err)
		}, wantPhase: storagev1alpha1.BackupStoragePhaseReady, wantMeta: true, wantRepos: []string{"tenant/repo"},
			wantWrites: []string{"update backupstorages/status demo/s3"}},
		// Deleted explicitly: its data goes, then its finalizer; nothing
		// else is written.
		{name: "deleted", before: func(t *testing.T) {
			update(t, func(bs *storagev1alpha1.BackupStorage) { bs.DeletionTimestamp = ptr.To(metav1.Now()) })
		}, wantPhase: storagev1alpha1.BackupStoragePhaseReady, wantRepos: []string{"tenant/repo"},
			wantWrites: []string{"update backupstorages demo/s3"}},
		// What the API server does once the finalizer is gone.
		{name: "gone", before: func(t *testing.T) {
			require.NoError(t, ks.StorageV1alpha1().BackupStorages("demo").Delete(ctx, "s3", metav1.DeleteOptions{}))
		}, wantGone: true},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.before != nil {
				step.before(t)
			}
			writes, err := informed.Reconcile(t, func() error { return r.Reconcile(ctx, "demo", "s3") })
			require.NoError(t, err)
			assert.Equal(t, step.wantWrites, writes)
			_, err = os.Stat(filepath.Join(dir, "metadata.yaml"))
			assert.Equal(t, step.wantMeta, err == nil, "metadata.yaml: %v", err)
			got, err := ks.StorageV1alpha1().BackupStorages("demo").Get(ctx, "s3", metav1.GetOptions{})
			if step.wantGone {
				assert.True(t, apierrors.IsNotFound(err), "gone: %v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, step.wantPhase, got.Status.Phase)
			var repos []string
			for _, r := range got.Status.Repositories {
				repos = append(repos, r.Namespace+"/"+r.Name)
			}
			assert.Equal(t, step.wantRepos, repos)
		})
	}
}

package restoresession

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/yaml"

	addonsv1alpha1 "kubestash.dev/kubestash/pkg/apis/addons/v1alpha1"
	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/conditions"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned/fake"
)

var now = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func load[T any](t *testing.T, name string) *T {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "artifacts", "addons", name))
	require.NoError(t, err)
	var v T
	require.NoError(t, yaml.UnmarshalStrict(b, &v))
	return &v
}

// newEnv is a restore of Snapshot repo-1 of Repository repo (namespace
// demo) into PVC target-pvc, kept in BackupStorage storageNS/s3-storage,
// shared with every namespace; mutate changes the RestoreSession.
func newEnv(t *testing.T, storageNS string, mutate func(*catalogv1alpha1.RestoreSession)) (*Reconciler, *kubefake.Clientset, *fake.Clientset) {
	all := storagev1alpha1.NamespacesFromAll
	storage := &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: storageNS, Name: "s3-storage", UID: "bs-uid"}, Spec: storagev1alpha1.BackupStorageSpec{
		Storage:     storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderS3, S3: &storagev1alpha1.S3Spec{Bucket: "b", SecretName: "s3-secret"}},
		UsagePolicy: &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: &all}}}}
	repo := &catalogv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "repo"}, Spec: catalogv1alpha1.RepositorySpec{
		StorageRef: kmapi.ObjectReference{Namespace: storageNS, Name: "s3-storage"}, EncryptionSecret: &kmapi.ObjectReference{Name: "encrypt-secret"}}}
	snap := &catalogv1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "repo-1"},
		Spec:   catalogv1alpha1.SnapshotSpec{Repository: "repo", AppRef: kmapi.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "target-pvc", Namespace: "demo"}},
		Status: catalogv1alpha1.SnapshotStatus{Phase: catalogv1alpha1.SnapshotSucceeded, Components: map[string]catalogv1alpha1.Component{"dump": {}}}}
	rs := &catalogv1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "restore", CreationTimestamp: metav1.NewTime(now)},
		Spec: catalogv1alpha1.RestoreSessionSpec{
			DataSource: catalogv1alpha1.RestoreDataSource{Namespace: "demo", Repository: "repo", Snapshot: "repo-1"},
			Addon:      &corev1alpha1.AddonInfo{Name: "pvc-addon", Tasks: []corev1alpha1.TaskReference{{Name: "logical-backup-restore"}}},
		}}
	if mutate != nil {
		mutate(rs)
	}
	kube := kubefake.NewClientset(&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "target-pvc"}})
	ks := fake.NewSimpleClientset(storage, repo, snap, rs,
		load[addonsv1alpha1.Addon](t, "pvc-addon.yaml"), load[addonsv1alpha1.Function](t, "pvc-restore-function.yaml"))
	r := &Reconciler{Kube: kube, Client: ks, Recorder: record.NewFakeRecorder(100), Now: func() time.Time { return now }}
	return r, kube, ks
}

// TestRestoreStorageGrantedOnlyToOwnAccount: the restore Job runs as the
// controller's kubestash-restore whatever the jobTemplate names, and only
// that account is granted a storage of another namespace.
func TestRestoreStorageGrantedOnlyToOwnAccount(t *testing.T) {
	for _, c := range []struct {
		name, storageNS, userSA string
		wantGrant               bool
	}{
		{name: "shared storage", storageNS: "stash", wantGrant: true},
		{name: "shared storage, the user's account in jobTemplate", storageNS: "stash", userSA: "my-sa", wantGrant: true},
		{name: "own storage, the user's account in jobTemplate", storageNS: "demo", userSA: "my-sa"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			r, kube, _ := newEnv(t, c.storageNS, func(rs *catalogv1alpha1.RestoreSession) {
				if c.userSA != "" {
					rs.Spec.Addon.JobTemplate = &storagev1alpha1.PodTemplateSpec{Spec: storagev1alpha1.PodSpec{ServiceAccountName: c.userSA}}
				}
			})
			_ = r.Reconcile(ctx, "demo", "restore")
			job, err := kube.BatchV1().Jobs("demo").Get(ctx, "restore", metav1.GetOptions{})
			require.NoError(t, err)
			assert.Equal(t, RestoreServiceAccount, job.Spec.Template.Spec.ServiceAccountName)

			grants, err := kube.RbacV1().RoleBindings("stash").List(ctx, metav1.ListOptions{})
			require.NoError(t, err)
			if !c.wantGrant {
				assert.Empty(t, grants.Items)
				return
			}
			require.Len(t, grants.Items, 1)
			assert.Equal(t, []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: RestoreServiceAccount, Namespace: "demo"}}, grants.Items[0].Subjects)
		})
	}
}

// TestRestoreRefusesUserHostPath: a RestoreSession stored before the
// catalog server refused it, with a hostPath in addonVolumes, gets no Job
// (it would write into the node's folder as root): the restore fails,
// naming the field.
func TestRestoreRefusesUserHostPath(t *testing.T) {
	for _, c := range []struct {
		name    string
		source  storagev1alpha1.VolumeSource
		wantErr string
	}{
		{name: "emptyDir", source: storagev1alpha1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{name: "hostPath", source: storagev1alpha1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc"}},
			wantErr: "task logical-backup-restore: spec.addon.tasks[0].addonVolumes[0].source.hostPath: Forbidden: only persistentVolumeClaim"},
		{name: "nfs", source: storagev1alpha1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs", Path: "/"}},
			wantErr: "spec.addon.tasks[0].addonVolumes[0].source.nfs: Forbidden"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			r, kube, ks := newEnv(t, "demo", func(rs *catalogv1alpha1.RestoreSession) {
				rs.Spec.Addon.Tasks[0].AddonVolumes = []corev1alpha1.AddonVolumeInfo{{Name: "kubestash-data-volume",
					Source: &addonsv1alpha1.VolumeSource{VolumeSource: c.source}}}
			})
			_ = r.Reconcile(ctx, "demo", "restore")
			_, jobErr := kube.BatchV1().Jobs("demo").Get(ctx, "restore", metav1.GetOptions{})
			rs, err := ks.CatalogV1alpha1().RestoreSessions("demo").Get(ctx, "restore", metav1.GetOptions{})
			require.NoError(t, err)
			cond := conditions.Get(rs.Status.Conditions, catalogv1alpha1.TypeRestoreExecutorEnsured)
			require.NotNil(t, cond)
			if c.wantErr == "" {
				assert.NoError(t, jobErr)
				assert.Equal(t, metav1.ConditionTrue, cond.Status)
				return
			}
			assert.True(t, apierrors.IsNotFound(jobErr), "no Job: %v", jobErr)
			assert.Equal(t, catalogv1alpha1.ReasonFailedToEnsureRestoreExecutor, cond.Reason)
			assert.Contains(t, cond.Message, c.wantErr)
			assert.Equal(t, catalogv1alpha1.RestoreFailed, rs.Status.Phase)
		})
	}
}

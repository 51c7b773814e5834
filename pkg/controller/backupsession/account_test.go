package backupsession

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/conditions"
)

// The writes of the first reconcile of session bc-daily-1, piece by piece:
// the account its Jobs run as, the grant of a shared storage to it, its
// Job, and its Snapshot and status; when the Job is refused, its Snapshot
// fails too (writesRefused).
var (
	writesAccount = []string{"create serviceaccounts demo/kubestash-backup", "create rolebindings demo/kubestash-backup"}
	writesGrant   = []string{"create roles stash/kubestash-use-s3-storage", "create rolebindings stash/kubestash-use-s3-storage-72487bdacd"}
	writesJob     = []string{"create jobs demo/bc-daily-1"}
	writesStarted = []string{"create snapshots demo/repo-bc-daily-1", "update snapshots/status demo/repo-bc-daily-1", "update backupsessions/status demo/bc-daily-1"}
	writesRefused = []string{"create snapshots demo/repo-bc-daily-1", "update snapshots/status demo/repo-bc-daily-1",
		"update snapshots/status demo/repo-bc-daily-1", "update backupsessions/status demo/bc-daily-1"}
)

// TestStorageGrantedOnlyToOwnAccount: a BackupStorage of another namespace
// is granted (a RoleBinding next to it on its Secret) only to the
// ServiceAccount the controller makes for backup Jobs. A
// jobTemplate.spec.serviceAccountName of the user's is used as the Job's
// account when the storages are of the session's namespace, and refused,
// naming the field, when one is not: no RoleBinding is made for it.
func TestStorageGrantedOnlyToOwnAccount(t *testing.T) {
	for _, c := range []struct {
		name   string
		shared bool   // the storage is in namespace stash, shared with all
		userSA string // jobTemplate.spec.serviceAccountName
		// wantSA is the Job's account; empty: no Job, the session fails.
		wantSA      string
		wantGrantTo string // the grantee of the RoleBinding in stash, if any
		wantErr     string
		wantWrites  []string
	}{
		{name: "own storage, own account", wantSA: BackupServiceAccount, wantWrites: slices.Concat(writesAccount, writesJob, writesStarted)},
		{name: "own storage, the user's account", userSA: "my-sa", wantSA: "my-sa", wantWrites: slices.Concat(writesAccount, writesJob, writesStarted)},
		{name: "shared storage, own account", shared: true, wantSA: BackupServiceAccount, wantGrantTo: BackupServiceAccount,
			wantWrites: slices.Concat(writesAccount, writesGrant, writesJob, writesStarted)},
		{name: "shared storage, own account named", shared: true, userSA: BackupServiceAccount, wantSA: BackupServiceAccount, wantGrantTo: BackupServiceAccount,
			wantWrites: slices.Concat(writesAccount, writesGrant, writesJob, writesStarted)},
		{name: "shared storage, the user's account", shared: true, userSA: "my-sa",
			wantErr: `spec.sessions[daily].addon.jobTemplate.spec.serviceAccountName: Forbidden: the controller grants BackupStorage stash/s3-storage of another namespace ` +
				`only to the ServiceAccount it makes for its Jobs (kubestash-backup), not to ServiceAccount "my-sa"; ` +
				`leave serviceAccountName unset, or use a BackupStorage in namespace demo`,
			wantWrites: slices.Concat(writesAccount, writesRefused)},
		{name: "shared storage, the namespace's default account", shared: true, userSA: "default", wantErr: `not to ServiceAccount "default"`,
			wantWrites: slices.Concat(writesAccount, writesRefused)},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, corev1alpha1.BackupInvokerReady, session("bc-daily-1", now))
			bc, err := e.ks.CoreV1alpha1().BackupConfigurations("demo").Get(ctx, "bc", metav1.GetOptions{})
			require.NoError(t, err)
			if c.shared {
				all := storagev1alpha1.NamespacesFromAll
				_, err := e.ks.StorageV1alpha1().BackupStorages("stash").Create(ctx, &storagev1alpha1.BackupStorage{
					ObjectMeta: metav1.ObjectMeta{Namespace: "stash", Name: "s3-storage", UID: "shared-uid"},
					Spec: storagev1alpha1.BackupStorageSpec{
						Storage:     storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderS3, S3: &storagev1alpha1.S3Spec{Bucket: "b", SecretName: "s3-secret"}},
						UsagePolicy: &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: &all}},
					}}, metav1.CreateOptions{})
				require.NoError(t, err)
				bc.Spec.Backends[0].StorageRef.Namespace = "stash"
			}
			if c.userSA != "" {
				bc.Spec.Sessions[0].Addon.JobTemplate = &storagev1alpha1.PodTemplateSpec{Spec: storagev1alpha1.PodSpec{ServiceAccountName: c.userSA}}
			}
			_, err = e.ks.CoreV1alpha1().BackupConfigurations("demo").Update(ctx, bc, metav1.UpdateOptions{})
			require.NoError(t, err)

			e.informed.Reset()
			_ = e.reconcile(t, "bc-daily-1")
			assert.Equal(t, c.wantWrites, e.informed.Writes())

			grants, err := e.kube.RbacV1().RoleBindings("stash").List(ctx, metav1.ListOptions{})
			require.NoError(t, err)
			if c.wantGrantTo == "" {
				assert.Empty(t, grants.Items, "no grant on the storage's namespace")
			} else {
				require.Len(t, grants.Items, 1)
				assert.Equal(t, []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: c.wantGrantTo, Namespace: "demo"}}, grants.Items[0].Subjects)
			}
			// Whatever the Job runs as, nothing binds the user's account.
			for _, ns := range []string{"demo", "stash"} {
				if c.userSA == "" || c.userSA == BackupServiceAccount {
					break
				}
				rbs, err := e.kube.RbacV1().RoleBindings(ns).List(ctx, metav1.ListOptions{})
				require.NoError(t, err)
				for _, rb := range rbs.Items {
					for _, s := range rb.Subjects {
						assert.NotEqual(t, c.userSA, s.Name, "RoleBinding %s/%s binds the user's account", ns, rb.Name)
					}
				}
			}

			job, err := e.kube.BatchV1().Jobs("demo").Get(ctx, "bc-daily-1", metav1.GetOptions{})
			bs := e.get(t, "bc-daily-1")
			if c.wantErr == "" {
				require.NoError(t, err)
				assert.Equal(t, c.wantSA, job.Spec.Template.Spec.ServiceAccountName)
				assert.True(t, conditions.IsTrue(bs.Status.Conditions, catalogv1alpha1.TypeBackupExecutorEnsured))
				return
			}
			assert.True(t, apierrors.IsNotFound(err), "no Job: %v", err)
			assert.Equal(t, catalogv1alpha1.BackupSessionFailed, bs.Status.Phase)
			cond := conditions.Get(bs.Status.Conditions, catalogv1alpha1.TypeBackupExecutorEnsured)
			require.NotNil(t, cond)
			assert.Equal(t, catalogv1alpha1.ReasonFailedToEnsureBackupExecutor, cond.Reason)
			assert.Contains(t, cond.Message, c.wantErr)
			assert.False(t, ptr.Deref(bs.Status.Retried, false))
			// Its Snapshot fails too, saying why, instead of staying Pending.
			snap, err := e.ks.CatalogV1alpha1().Snapshots("demo").Get(ctx, "repo-bc-daily-1", metav1.GetOptions{})
			require.NoError(t, err)
			assert.Equal(t, catalogv1alpha1.SnapshotFailed, snap.Status.Phase)
			require.Len(t, bs.Status.Snapshots, 1)
			assert.Equal(t, catalogv1alpha1.SnapshotFailed, bs.Status.Snapshots[0].Phase)
			assert.True(t, conditions.IsFalse(bs.Status.Conditions, TypeBackupSucceeded), "the session says its backup failed")
		})
	}
}

// TestBackupJobTemplateApplied: the backup Job takes every field of the
// session's jobTemplate (the same rules as a restore's, executor's
// ApplyJobTemplate), and a privileged container is refused naming it.
func TestBackupJobTemplateApplied(t *testing.T) {
	for _, c := range []struct {
		name       string
		jt         storagev1alpha1.PodTemplateSpec
		wantErr    string
		wantWrites []string
	}{
		{name: "applied", jt: storagev1alpha1.PodTemplateSpec{
			Metadata: storagev1alpha1.PartialObjectMeta{Labels: map[string]string{"team": "a"}},
			Spec: storagev1alpha1.PodSpec{SchedulerName: "my-scheduler", TerminationGracePeriodSeconds: ptr.To(int64(3)),
				Resources: &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}}},
		}, wantWrites: slices.Concat(writesAccount, writesJob, writesStarted)},
		{name: "privileged", jt: storagev1alpha1.PodTemplateSpec{Spec: storagev1alpha1.PodSpec{
			ContainerSecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}},
			wantErr:    "spec.sessions[daily].addon.jobTemplate.spec.containerSecurityContext.privileged: Forbidden",
			wantWrites: slices.Concat(writesAccount, writesRefused)},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, corev1alpha1.BackupInvokerReady, session("bc-daily-1", now))
			bc, err := e.ks.CoreV1alpha1().BackupConfigurations("demo").Get(ctx, "bc", metav1.GetOptions{})
			require.NoError(t, err)
			bc.Spec.Sessions[0].Addon.JobTemplate = &c.jt
			_, err = e.ks.CoreV1alpha1().BackupConfigurations("demo").Update(ctx, bc, metav1.UpdateOptions{})
			require.NoError(t, err)
			e.informed.Reset()
			_ = e.reconcile(t, "bc-daily-1")
			assert.Equal(t, c.wantWrites, e.informed.Writes())
			job, err := e.kube.BatchV1().Jobs("demo").Get(ctx, "bc-daily-1", metav1.GetOptions{})
			if c.wantErr != "" {
				assert.True(t, apierrors.IsNotFound(err), "no Job: %v", err)
				cond := conditions.Get(e.get(t, "bc-daily-1").Status.Conditions, catalogv1alpha1.TypeBackupExecutorEnsured)
				require.NotNil(t, cond)
				assert.Contains(t, cond.Message, c.wantErr)
				return
			}
			require.NoError(t, err)
			pod := job.Spec.Template
			assert.Equal(t, "a", pod.Labels["team"])
			assert.Equal(t, "my-scheduler", pod.Spec.SchedulerName)
			assert.Equal(t, ptr.To(int64(3)), pod.Spec.TerminationGracePeriodSeconds)
			assert.Equal(t, *c.jt.Spec.Resources, pod.Spec.Containers[0].Resources)
		})
	}
}

package backupconfiguration

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
)

// TestBackupConfigurationLifecycle follows one configuration through the
// reconciles the controller makes of it, with the caches caught up between
// them as the controller's are, and checks the writes each one makes: a
// reconcile of an unchanged state writes nothing, and the first backup of
// a session is taken once.
func TestBackupConfigurationLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	const cronJob = "trigger-pvc-backup-frequent-backup"
	status := "update backupconfigurations/status demo/pvc-backup"
	change := func(f func(*corev1alpha1.BackupConfiguration)) func(t *testing.T) {
		return func(t *testing.T) {
			bc := e.bc(t)
			f(bc)
			_, err := e.ks.CoreV1alpha1().BackupConfigurations("demo").Update(ctx, bc, metav1.UpdateOptions{})
			require.NoError(t, err)
		}
	}
	for _, step := range []struct {
		name         string
		before       func(t *testing.T)
		wantWrites   []string
		wantRequeue  bool
		wantPhase    corev1alpha1.BackupInvokerPhase // "": the configuration is gone
		wantSchedule string                          // of the CronJob of frequent-backup
		wantSuspend  bool
		wantBackups  int // BackupSessions
	}{
		{name: "new", wantPhase: corev1alpha1.BackupInvokerReady, wantSchedule: "*/5 * * * *", wantBackups: 1, wantWrites: []string{
			"create roles demo/kubestash-catalog-encryption-pvc-backup", "create rolebindings demo/kubestash-catalog-encryption-pvc-backup",
			"create serviceaccounts demo/kubestash-trigger", "create rolebindings demo/kubestash-trigger", "create cronjobs demo/" + cronJob,
			"create repositories demo/s3-repo", status, fmt.Sprintf("create backupsessions demo/pvc-backup-frequent-backup-%d", now.Unix()), status}},
		{name: "unchanged", wantPhase: corev1alpha1.BackupInvokerReady, wantSchedule: "*/5 * * * *", wantBackups: 1},
		// The CronJob follows, and the status has the next schedule.
		{name: "schedule changed", before: change(func(bc *corev1alpha1.BackupConfiguration) {
			bc.Spec.Sessions[0].Scheduler.Schedule = "0 * * * *"
		}), wantPhase: corev1alpha1.BackupInvokerReady, wantSchedule: "0 * * * *", wantBackups: 1,
			wantWrites: []string{"update cronjobs demo/" + cronJob, status}},
		{name: "paused", before: change(func(bc *corev1alpha1.BackupConfiguration) { bc.Spec.Paused = true }),
			wantPhase: corev1alpha1.BackupInvokerReady, wantSchedule: "0 * * * *", wantSuspend: true, wantBackups: 1,
			wantWrites: []string{"update cronjobs demo/" + cronJob, status}},
		{name: "unchanged while paused", wantPhase: corev1alpha1.BackupInvokerReady, wantSchedule: "0 * * * *", wantSuspend: true, wantBackups: 1},
		// No second first backup.
		{name: "resumed", before: change(func(bc *corev1alpha1.BackupConfiguration) { bc.Spec.Paused = false }),
			wantPhase: corev1alpha1.BackupInvokerReady, wantSchedule: "0 * * * *", wantBackups: 1,
			wantWrites: []string{"update cronjobs demo/" + cronJob, status}},
		// Someone else's change to the CronJob is undone; the status,
		// which said it was in place, stays.
		{name: "CronJob deleted", before: func(t *testing.T) {
			require.NoError(t, e.kube.BatchV1().CronJobs("demo").Delete(ctx, cronJob, metav1.DeleteOptions{}))
		}, wantPhase: corev1alpha1.BackupInvokerReady, wantSchedule: "0 * * * *", wantBackups: 1,
			wantWrites: []string{"create cronjobs demo/" + cronJob}},
		{name: "CronJob suspended by hand", before: func(t *testing.T) {
			cj, err := e.kube.BatchV1().CronJobs("demo").Get(ctx, cronJob, metav1.GetOptions{})
			require.NoError(t, err)
			cj.Spec.Suspend = ptr.To(true)
			_, err = e.kube.BatchV1().CronJobs("demo").Update(ctx, cj, metav1.UpdateOptions{})
			require.NoError(t, err)
		}, wantPhase: corev1alpha1.BackupInvokerReady, wantSchedule: "0 * * * *", wantBackups: 1,
			wantWrites: []string{"update cronjobs demo/" + cronJob}},
		// Not ready: said, and looked at again; the requeue writes nothing.
		{name: "target PVC deleted", before: func(t *testing.T) {
			require.NoError(t, e.kube.CoreV1().PersistentVolumeClaims("demo").Delete(ctx, "target-pvc", metav1.DeleteOptions{}))
		}, wantPhase: corev1alpha1.BackupInvokerNotReady, wantRequeue: true, wantSchedule: "0 * * * *", wantBackups: 1,
			wantWrites: []string{status}},
		{name: "target PVC still missing", wantPhase: corev1alpha1.BackupInvokerNotReady, wantRequeue: true, wantSchedule: "0 * * * *", wantBackups: 1},
		{name: "target PVC back", before: func(t *testing.T) {
			_, err := e.kube.CoreV1().PersistentVolumeClaims("demo").Create(ctx,
				&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "target-pvc"}}, metav1.CreateOptions{})
			require.NoError(t, err)
		}, wantPhase: corev1alpha1.BackupInvokerReady, wantSchedule: "0 * * * *", wantBackups: 1,
			wantWrites: []string{status}},
		// A new session gets its CronJob and its own first backup.
		{name: "session added", before: change(func(bc *corev1alpha1.BackupConfiguration) {
			daily := *bc.Spec.Sessions[0].DeepCopy()
			daily.Name, daily.Scheduler.Schedule = "daily", "@daily"
			bc.Spec.Sessions = append(bc.Spec.Sessions, daily)
		}), wantPhase: corev1alpha1.BackupInvokerReady, wantSchedule: "0 * * * *", wantBackups: 2,
			wantWrites: []string{"create cronjobs demo/trigger-pvc-backup-daily", status,
				fmt.Sprintf("create backupsessions demo/pvc-backup-daily-%d", now.Unix()), status}},
		// Its CronJob goes (its Jobs would fail: the trigger would find
		// no session daily); its backups stay.
		{name: "session removed", before: change(func(bc *corev1alpha1.BackupConfiguration) {
			bc.Spec.Sessions = bc.Spec.Sessions[:1]
		}), wantPhase: corev1alpha1.BackupInvokerReady, wantSchedule: "0 * * * *", wantBackups: 2,
			wantWrites: []string{"delete cronjobs demo/trigger-pvc-backup-daily", status}},
		// The CronJobs and the catalog server's grant go with it through
		// their owner references (the garbage collector, not the
		// reconciler); the Repository and the backups stay.
		{name: "deleted", before: func(t *testing.T) {
			require.NoError(t, e.ks.CoreV1alpha1().BackupConfigurations("demo").Delete(ctx, "pvc-backup", metav1.DeleteOptions{}))
		}, wantBackups: 2},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.before != nil {
				step.before(t)
			}
			writes, err := e.reconcile(t)
			if step.wantRequeue {
				assert.True(t, IsRequeue(err), "looked at again: %v", err)
			} else {
				assert.NoError(t, err)
			}
			assert.Equal(t, step.wantWrites, writes)
			sessions, err := e.ks.CatalogV1alpha1().BackupSessions("demo").List(ctx, metav1.ListOptions{})
			require.NoError(t, err)
			assert.Len(t, sessions.Items, step.wantBackups)
			cj, err := e.kube.BatchV1().CronJobs("demo").Get(ctx, cronJob, metav1.GetOptions{})
			require.NoError(t, err)
			bc, bcErr := e.ks.CoreV1alpha1().BackupConfigurations("demo").Get(ctx, "pvc-backup", metav1.GetOptions{})
			if step.wantPhase == "" {
				assert.True(t, apierrors.IsNotFound(bcErr), "gone: %v", bcErr)
				assert.Equal(t, []metav1.OwnerReference{{APIVersion: corev1alpha1.SchemeGroupVersion.String(), Kind: "BackupConfiguration",
					Name: "pvc-backup", UID: "bc-uid", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}, cj.OwnerReferences)
				role, err := e.kube.RbacV1().Roles("demo").Get(ctx, "kubestash-catalog-encryption-pvc-backup", metav1.GetOptions{})
				require.NoError(t, err)
				require.Len(t, role.OwnerReferences, 1)
				assert.Equal(t, "bc-uid", string(role.OwnerReferences[0].UID))
				repo, err := e.ks.CatalogV1alpha1().Repositories("demo").Get(ctx, "s3-repo", metav1.GetOptions{})
				require.NoError(t, err)
				assert.Empty(t, repo.OwnerReferences)
				return
			}
			require.NoError(t, bcErr)
			assert.Equal(t, step.wantPhase, bc.Status.Phase)
			assert.Equal(t, step.wantSchedule, cj.Spec.Schedule)
			assert.Equal(t, step.wantSuspend, ptr.Deref(cj.Spec.Suspend, false))
		})
	}
}

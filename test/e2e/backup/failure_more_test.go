package backup

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/conditions"
	"kubestash.dev/kubestash/pkg/restic/restictest"
)

// readyMessage is the message of the BackupConfiguration's Ready
// condition when it is False, "" otherwise.
func readyMessage(bc *corev1alpha1.BackupConfiguration) string {
	c := conditions.Get(bc.Status.Conditions, corev1alpha1.TypeReady)
	if c == nil || c.Status != metav1.ConditionFalse {
		return ""
	}
	return c.Message
}

func isReady(bc *corev1alpha1.BackupConfiguration) bool {
	return bc.Status.Phase == corev1alpha1.BackupInvokerReady && conditions.IsTrue(bc.Status.Conditions, corev1alpha1.TypeReady)
}

// assertSkippedBeforeBackup: a session started while the configuration is
// not Ready ends Skipped at once, with no Snapshot and no Job: nothing is
// left Running.
func (e *failEnv) assertSkippedBeforeBackup(name string) {
	e.t.Helper()
	e.backupNow(name)
	assert.Equal(e.t, catalogv1alpha1.BackupSessionSkipped, e.waitSession(name), "a session while the configuration is not Ready")
	skipped := conditions.Get(e.session(name).Status.Conditions, catalogv1alpha1.TypeBackupSkipped)
	if assert.NotNil(e.t, skipped) {
		assert.Contains(e.t, skipped.Message, "not Ready")
	}
	_, err := e.client.CatalogV1alpha1().Snapshots(e.o.NS).Get(e.ctx, catalogv1alpha1.GenerateSnapshotName(failRepo, name), metav1.GetOptions{})
	assert.True(e.t, apierrors.IsNotFound(err), "no Snapshot for a skipped session: %v", err)
}

// TestEncryptionSecretDeletedThenRecreated: the encryption Secret is
// deleted (a namespace clean-up, a GitOps prune). The configuration turns
// NotReady and its status names the Secret; a session started meanwhile
// is Skipped without a Snapshot; the earlier backup is untouched; once the
// Secret is back, the next backup succeeds.
func TestEncryptionSecretDeletedThenRecreated(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	podLogsOnFailure(t, "fail-encsecret")
	e := newFailEnv(ctx, t, failOptions{NS: "fail-encsecret", BC: "encsecret-backup", Directory: "/encsecret"})

	require.NoError(t, env.KubeClient.CoreV1().Secrets(e.o.NS).Delete(ctx, "encrypt-secret", metav1.DeleteOptions{}))
	bc := e.waitBC("NotReady, naming the missing Secret", func(bc *corev1alpha1.BackupConfiguration) bool {
		return bc.Status.Phase == corev1alpha1.BackupInvokerNotReady && readyMessage(bc) != ""
	})
	assert.Contains(t, readyMessage(bc), "encryption Secret fail-encsecret/encrypt-secret of repository s3-repo not found")
	assert.Contains(t, bc.Status.Dependencies, corev1alpha1.ResourceFoundStatus{Kind: "Secret", Namespace: e.o.NS, Name: "encrypt-secret", Found: ptr.To(false)})

	e.assertSkippedBeforeBackup(e.sessionName(2))
	e.assertFirstUntouched()

	e.applySecret("encrypt-secret")
	e.waitBC("Ready again", isReady)
	e.backupNow(e.sessionName(3))
	require.Equal(t, catalogv1alpha1.BackupSessionSucceeded, e.waitSession(e.sessionName(3)), "the next backup succeeds once the Secret is back")
	assert.Equal(t, catalogv1alpha1.SnapshotSucceeded, e.snapshot(e.sessionName(3)).Status.Phase)
	e.assertFirstUntouched()
}

// TestStorageSecretDeletedThenRecreated: the Secret with the S3
// credentials is deleted. The BackupStorage turns NotReady naming it, and
// the configuration NotReady with the storage's reason; the earlier backup
// stays listed throughout (the catalog serves the storage read-only); once
// the Secret is back the next backup succeeds.
func TestStorageSecretDeletedThenRecreated(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	podLogsOnFailure(t, "fail-s3secret")
	e := newFailEnv(ctx, t, failOptions{NS: "fail-s3secret", BC: "s3secret-backup", Directory: "/s3secret"})

	require.NoError(t, env.KubeClient.CoreV1().Secrets(e.o.NS).Delete(ctx, "s3-secret", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		bs, err := e.client.StorageV1alpha1().BackupStorages(e.o.NS).Get(ctx, "s3-storage", metav1.GetOptions{})
		if err != nil || bs.Status.Phase != storagev1alpha1.BackupStoragePhaseNotReady {
			return false
		}
		c := conditions.Get(bs.Status.Conditions, storagev1alpha1.TypeBackendSecretFound)
		return c != nil && c.Status == metav1.ConditionFalse
	}, 2*time.Minute, time.Second, "the BackupStorage turns NotReady")
	bs, err := e.client.StorageV1alpha1().BackupStorages(e.o.NS).Get(ctx, "s3-storage", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, conditions.Get(bs.Status.Conditions, storagev1alpha1.TypeBackendSecretFound).Message, "Secret fail-s3secret/s3-secret: not found")

	// (Before the controller has seen the storage NotReady, the message
	// may say that the catalog no longer serves the storage.)
	bc := e.waitBC("NotReady, naming the storage and its Secret", func(bc *corev1alpha1.BackupConfiguration) bool {
		return bc.Status.Phase == corev1alpha1.BackupInvokerNotReady &&
			strings.Contains(readyMessage(bc), "BackupStorage fail-s3secret/s3-storage is not Ready: Secret fail-s3secret/s3-secret: not found")
	})
	if assert.Len(t, bc.Status.Backends, 1) && assert.NotNil(t, bc.Status.Backends[0].Storage) {
		assert.Contains(t, bc.Status.Backends[0].Storage.Reason, "Secret fail-s3secret/s3-secret: not found")
	}

	// Without credentials the catalog keeps serving what it has read of
	// the storage, as in an outage: the earlier backup stays listed, and
	// a write is refused (503) naming the Secret. A session created before
	// the catalog noticed must then be Skipped, not run.
	_, err = e.client.CatalogV1alpha1().Snapshots(e.o.NS).Get(ctx, catalogv1alpha1.GenerateSnapshotName(failRepo, e.first), metav1.GetOptions{})
	assert.NoError(t, err, "the earlier backup is still listed while the storage's Secret is missing")
	_, err = e.client.CatalogV1alpha1().BackupSessions(e.o.NS).Create(ctx, &catalogv1alpha1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{Name: e.sessionName(2), Namespace: e.o.NS, Labels: map[string]string{catalogv1alpha1.LabelInvokerName: e.o.BC}},
		Spec: catalogv1alpha1.BackupSessionSpec{
			Invoker: corev1.TypedLocalObjectReference{APIGroup: ptr.To("core.kubestash.com"), Kind: "BackupConfiguration", Name: e.o.BC},
			Session: failSession,
		},
	}, metav1.CreateOptions{})
	if err == nil {
		assert.Equal(t, catalogv1alpha1.BackupSessionSkipped, e.waitSession(e.sessionName(2)))
	} else {
		assert.True(t, apierrors.IsServiceUnavailable(err), "503, nothing written: %v", err)
		assert.Contains(t, err.Error(), "secret fail-s3secret/s3-secret not found", "the refusal names the Secret")
	}
	e.assertFirstUntouched()

	e.applySecret("s3-secret")
	e.waitBC("Ready again", isReady)
	e.backupNow(e.sessionName(3))
	require.Equal(t, catalogv1alpha1.BackupSessionSucceeded, e.waitSession(e.sessionName(3)), "the next backup succeeds once the Secret is back")
	e.assertFirstUntouched()
}

// TestTargetPVCDeletedThenRecreated: the target PVC is deleted. A PVC
// stays Terminating while any Pod that mounts it exists, finished ones
// too; the controller deletes its finished Jobs that mount it (the backup
// Pods the session history keeps), so the PVC goes in seconds. The
// configuration turns NotReady saying the PVC is not found, and a session
// started meanwhile is Skipped without a Snapshot. When the PVC is back the
// next backup succeeds, and the earlier backup is untouched throughout.
// (While a PVC is being deleted, the configuration says so; the unit tests
// of backupconfiguration cover that message.)
func TestTargetPVCDeletedThenRecreated(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	podLogsOnFailure(t, "fail-pvc")
	e := newFailEnv(ctx, t, failOptions{NS: "fail-pvc", BC: "pvc-gone-backup", Directory: "/pvc-gone"})
	pvcs := env.KubeClient.CoreV1().PersistentVolumeClaims(e.o.NS)

	require.NoError(t, pvcs.Delete(ctx, "target-pvc", metav1.DeleteOptions{}))
	// The finished backup Pod that the session history keeps mounts it
	// ("Used By" in `kubectl describe pvc`); the controller deletes that
	// finished Job, so the PVC goes in seconds instead of waiting for it.
	require.Eventually(t, func() bool {
		_, err := pvcs.Get(ctx, "target-pvc", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 30*time.Second, 250*time.Millisecond, "the PVC is gone, not held by a finished backup Pod")
	bc := e.waitBC("NotReady: the PVC is not found", func(bc *corev1alpha1.BackupConfiguration) bool {
		return strings.Contains(readyMessage(bc), "target PersistentVolumeClaim fail-pvc/target-pvc not found")
	})
	assert.Equal(t, corev1alpha1.BackupInvokerNotReady, bc.Status.Phase)
	assert.False(t, ptr.Deref(bc.Status.TargetFound, true))
	e.assertSkippedBeforeBackup(e.sessionName(2))
	e.assertFirstUntouched()

	// The PVC comes back (its data was kept: the PV's policy is Retain).
	pvClaim(ctx, t, e.o.NS, "target-pvc", e.data)
	e.waitBC("Ready again", isReady)
	e.backupNow(e.sessionName(3))
	require.Equal(t, catalogv1alpha1.BackupSessionSucceeded, e.waitSession(e.sessionName(3)), "the next backup succeeds once the PVC is back")
	e.assertFirstUntouched()
}

// TestBackendDownMidBackupThenBack: MinIO stops while restic is uploading.
// The session does not hang for restic's quarter of an hour of retries:
// after the outage timeout set on the task the Snapshot fails with a
// message naming the unreachable backend, recorded as soon as the catalog
// (which lives in the same bucket) can be written again; the earlier
// backup is untouched, served from the catalog's index meanwhile; and the
// next backup succeeds.
func TestBackendDownMidBackupThenBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	podLogsOnFailure(t, "fail-backend")
	e := newFailEnv(ctx, t, failOptions{NS: "fail-backend", BC: "backend-down-backup", Directory: "/backend-down",
		Variables: map[string]string{"KUBESTASH_BACKEND_OUTAGE_TIMEOUT": "15s"}})
	m := env.MinIO
	t.Cleanup(func() {
		// Whatever happened, the other tests need MinIO.
		if exited, _ := m.Exited(); exited {
			sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := m.Start(sctx); err != nil {
				t.Errorf("restart MinIO: %v", err)
			}
		}
	})

	e.addData("large", restictest.Dataset{LargeFiles: 8, LargeSize: 16 << 20, Seed: 31})
	s2 := e.sessionName(2)
	e.backupNow(s2)
	// Freeze restic in the middle of the data, take MinIO away once the
	// session is recorded as Running, let restic go on: it finds the
	// storage gone mid-run.
	p := waitBackupReading(t, s2, 16<<20)
	require.NoError(t, syscall.Kill(p.pid, syscall.SIGSTOP))
	require.Eventually(t, func() bool {
		bs := e.session(s2)
		return bs.Status.Phase == catalogv1alpha1.BackupSessionRunning &&
			conditions.IsTrue(bs.Status.Conditions, catalogv1alpha1.TypeBackupExecutorEnsured)
	}, time.Minute, 200*time.Millisecond, "the session is recorded Running")
	stopErr := m.Stop(10 * time.Second)
	_ = syscall.Kill(p.pid, syscall.SIGCONT)
	require.NoError(t, stopErr)
	down := time.Now()

	// Meanwhile the catalog serves what it has: the earlier backup is
	// there, the session is not Succeeded.
	e.assertFirstUntouched()
	assert.NotEqual(t, catalogv1alpha1.BackupSessionSucceeded, e.session(s2).Status.Phase)

	// restic gives up after the outage timeout, not after 15 minutes.
	waitGone(t, "restic", resticBackupIn(s2), 2*time.Minute)
	t.Logf("restic ended %s after MinIO stopped", time.Since(down).Round(time.Second))
	assert.NotEqual(t, catalogv1alpha1.BackupSessionSucceeded, e.session(s2).Status.Phase)

	// The outage goes on for longer than a status write's usual
	// retries: the agent waits to record why the backup failed rather
	// than end with nothing recorded.
	assert.Never(t, func() bool { return len(findProcesses(agentBackupOf(s2))) != 1 }, 40*time.Second, time.Second,
		"the agent waits for the catalog to record the failure")
	require.NoError(t, m.Start(ctx))
	require.Equal(t, catalogv1alpha1.BackupSessionFailed, e.waitSession(s2), "the session ends Failed, not stuck Running")
	snap := e.snapshot(s2)
	assert.Equal(t, catalogv1alpha1.SnapshotFailed, snap.Status.Phase)
	dump := snap.Status.Components["dump"]
	assert.Equal(t, catalogv1alpha1.ComponentPhaseFailed, dump.Phase)
	assert.Contains(t, dump.Error, "backend unreachable", "the error names the cause")
	assert.Contains(t, dump.Error, m.Host, "and the backend")
	assert.Contains(t, dump.Error, "connection refused")
	assert.NotContains(t, dump.Error, m.SecretKey)
	t.Logf("the Snapshot's error: %s", dump.Error)
	e.assertFirstUntouched()

	// The storage (checked by the controller) is Ready again, and so the
	// configuration; then the next backup succeeds.
	e.waitBC("Ready again", isReady)
	s3 := e.sessionName(3)
	e.backupNow(s3)
	require.Equal(t, catalogv1alpha1.BackupSessionSucceeded, e.waitSession(s3), "the next backup succeeds once MinIO is back")
	e.assertFirstUntouched()
}

// TestAgentKilledMidBackup: the backup Job's container is killed with
// SIGKILL in the middle of the data (OOM kill of the pod, a lost node):
// the agent and restic die at once, leaving restic's lock behind. The
// Snapshot ends Failed with the reason, the session Failed, and the next
// backup succeeds with no manual `restic unlock`, and removes the stale
// lock. Then restic alone is killed (the OOM killer picks the biggest
// process): the agent reports that restic was killed.
func TestAgentKilledMidBackup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	podLogsOnFailure(t, "fail-kill")
	e := newFailEnv(ctx, t, failOptions{NS: "fail-kill", BC: "kill-backup", Directory: "/kill"})

	// The whole container.
	e.addData("large-1", restictest.Dataset{LargeFiles: 8, LargeSize: 16 << 20, Seed: 41})
	s2 := e.sessionName(2)
	e.killBackupMidway(s2)

	require.Equal(t, catalogv1alpha1.BackupSessionFailed, e.waitSession(s2), "the session of the killed Job")
	snap := e.snapshot(s2)
	assert.Equal(t, catalogv1alpha1.SnapshotFailed, snap.Status.Phase)
	incomplete := conditions.Get(snap.Status.Conditions, catalogv1alpha1.TypeBackupIncomplete)
	if assert.NotNil(t, incomplete, "the Snapshot says why: %+v", snap.Status) {
		assert.Equal(t, metav1.ConditionTrue, incomplete.Status)
		assert.Equal(t, catalogv1alpha1.ReasonBackupExecutorTerminatedBeforeCompletion, incomplete.Reason)
		assert.Contains(t, incomplete.Message, "Job failed")
		t.Logf("the Snapshot's reason: %s: %s", incomplete.Reason, incomplete.Message)
	}
	e.assertFirstUntouched()

	s3 := e.sessionName(3)
	e.backupNow(s3)
	require.Equal(t, catalogv1alpha1.BackupSessionSucceeded, e.waitSession(s3), "the next backup succeeds, no manual unlock")
	locks, err := e.repo().Locks(ctx)
	require.NoError(t, err)
	assert.Empty(t, locks, "the agent removed the stale lock")

	// restic alone.
	e.addData("large-2", restictest.Dataset{LargeFiles: 8, LargeSize: 16 << 20, Seed: 42})
	s4 := e.sessionName(4)
	e.backupNow(s4)
	p := waitBackupReading(t, s4, 16<<20)
	require.NoError(t, syscall.Kill(p.pid, syscall.SIGKILL))
	require.Equal(t, catalogv1alpha1.BackupSessionFailed, e.waitSession(s4), "the session whose restic was killed")
	dump := e.snapshot(s4).Status.Components["dump"]
	assert.Equal(t, catalogv1alpha1.ComponentPhaseFailed, dump.Phase)
	assert.Contains(t, dump.Error, "restic was killed: signal 9", "the error names the cause")
	t.Logf("the Snapshot's error: %s", dump.Error)

	s5 := e.sessionName(5)
	e.backupNow(s5)
	require.Equal(t, catalogv1alpha1.BackupSessionSucceeded, e.waitSession(s5), "the next backup succeeds")
	e.assertFirstUntouched()
	assert.Equal(t, catalogv1alpha1.SnapshotSucceeded, e.snapshot(s3).Status.Phase)
}

package backupsession

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/controller/loop"
)

// TestBackupLifecycle follows one backup through the reconciles the
// controller makes of it, with the caches caught up between them as the
// controller's are, and checks the writes each one makes: a reconcile of
// an unchanged state writes nothing.
func TestBackupLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, corev1alpha1.BackupInvokerReady, session("bc-daily-2", now))
	snapName := catalogv1alpha1.GenerateSnapshotName("repo", "bc-daily-2")
	endJob := func(t *testing.T, name string) {
		job, err := e.kube.BatchV1().Jobs("demo").Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		job.Status = batchv1.JobStatus{Succeeded: 1, CompletionTime: ptr.To(metav1.NewTime(now)), Conditions: []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue}, {Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}
		_, err = e.kube.BatchV1().Jobs("demo").UpdateStatus(ctx, job, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	for _, step := range []struct {
		name        string
		before      func(t *testing.T)
		wantWrites  []string
		wantRequeue bool
		wantPhase   catalogv1alpha1.BackupSessionPhase // "": the BackupSession is gone
		wantJobs    []string
	}{
		// The account, the Snapshot (Pending) and the Job; the session
		// waits for the agent.
		{name: "new", wantRequeue: true, wantPhase: catalogv1alpha1.BackupSessionPending, wantJobs: []string{"bc-daily-2"}, wantWrites: []string{
			"create serviceaccounts demo/kubestash-backup", "create rolebindings demo/kubestash-backup", "create jobs demo/bc-daily-2",
			"create snapshots demo/repo-bc-daily-2", "update snapshots/status demo/repo-bc-daily-2", "update backupsessions/status demo/bc-daily-2"}},
		{name: "Job pending", wantRequeue: true, wantPhase: catalogv1alpha1.BackupSessionPending, wantJobs: []string{"bc-daily-2"}},
		{name: "component running", before: func(t *testing.T) { e.report(t, snapName, catalogv1alpha1.ComponentPhaseRunning) },
			wantRequeue: true, wantPhase: catalogv1alpha1.BackupSessionRunning, wantJobs: []string{"bc-daily-2"},
			wantWrites: []string{"update snapshots/status demo/repo-bc-daily-2", "update backupsessions/status demo/bc-daily-2"}},
		{name: "Job running", wantRequeue: true, wantPhase: catalogv1alpha1.BackupSessionRunning, wantJobs: []string{"bc-daily-2"}},
		// keep-one removes the older Snapshot from the catalog (WipeOut,
		// then delete); the retention Job forgets its restic data.
		{name: "Job succeeded", before: func(t *testing.T) {
			// The agent records its component in the Snapshot, then its Job completes.
			e.report(t, snapName, catalogv1alpha1.ComponentPhaseSucceeded)
			endJob(t, "bc-daily-2")
		}, wantRequeue: true, wantPhase: catalogv1alpha1.BackupSessionRunning, wantJobs: []string{"bc-daily-2", "retentionpolicy-bc-daily-2"}, wantWrites: []string{
			"create jobs demo/retentionpolicy-bc-daily-2", "update snapshots/status demo/repo-bc-daily-2",
			"update snapshots demo/repo-old", "delete snapshots demo/repo-old", "update backupsessions/status demo/bc-daily-2"}},
		{name: "retention Job running", wantRequeue: true, wantPhase: catalogv1alpha1.BackupSessionRunning, wantJobs: []string{"bc-daily-2", "retentionpolicy-bc-daily-2"}},
		{name: "retention Job succeeded", before: func(t *testing.T) { endJob(t, "retentionpolicy-bc-daily-2") },
			wantPhase: catalogv1alpha1.BackupSessionSucceeded, wantJobs: []string{"bc-daily-2", "retentionpolicy-bc-daily-2"},
			wantWrites: []string{"update repositories/status demo/repo", "update backupsessions/status demo/bc-daily-2"}},
		// Recorded: the Jobs stay for their log (FinishedJobTTL 0).
		{name: "outcome recorded", wantPhase: catalogv1alpha1.BackupSessionSucceeded, wantJobs: []string{"bc-daily-2", "retentionpolicy-bc-daily-2"}},
		{name: "BackupSession deleted", before: func(t *testing.T) {
			require.NoError(t, e.ks.CatalogV1alpha1().BackupSessions("demo").Delete(ctx, "bc-daily-2", metav1.DeleteOptions{}))
		}, wantWrites: []string{"delete jobs demo/bc-daily-2", "delete jobs demo/retentionpolicy-bc-daily-2"}},
		{name: "gone"},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.before != nil {
				step.before(t)
			}
			e.informed.Settle(t)
			e.informed.Reset()
			err := e.r.Reconcile(ctx, "demo", "bc-daily-2")
			if step.wantRequeue {
				assert.ErrorIs(t, err, loop.ErrRequeue)
			} else {
				assert.NoError(t, err)
			}
			assert.Equal(t, step.wantWrites, e.informed.Writes())
			assert.Equal(t, step.wantJobs, e.jobNames(t))
			bs, err := e.ks.CatalogV1alpha1().BackupSessions("demo").Get(ctx, "bc-daily-2", metav1.GetOptions{})
			if step.wantPhase == "" {
				assert.True(t, apierrors.IsNotFound(err), "gone: %v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, step.wantPhase, bs.Status.Phase)
		})
	}
}

// TestFailedBackupLifecycle follows a failed backup that has a retry left
// and whose Jobs are kept for an hour after they end: it fails, waits for
// its retry's delay, creates the retry once, and its Job goes when its hour
// is up. A reconcile of an unchanged state writes nothing.
func TestFailedBackupLifecycle(t *testing.T) {
	ctx := context.Background()
	bs := session("bc-daily-2", now)
	bs.Spec.RetryLeft = 1
	e := newEnv(t, corev1alpha1.BackupInvokerReady, bs)
	e.r.FinishedJobTTL = time.Hour
	bc, err := e.ks.CoreV1alpha1().BackupConfigurations("demo").Get(ctx, "bc", metav1.GetOptions{})
	require.NoError(t, err)
	bc.Spec.Sessions[0].RetryConfig = &corev1alpha1.RetryConfig{MaxRetry: 1, Delay: metav1.Duration{Duration: time.Minute}}
	_, err = e.ks.CoreV1alpha1().BackupConfigurations("demo").Update(ctx, bc, metav1.UpdateOptions{})
	require.NoError(t, err)
	retry := catalogv1alpha1.ValidNameWithPrefixNSuffix("bc", "daily", fmt.Sprint(now.Add(61*time.Second).Unix()))
	snapName := catalogv1alpha1.GenerateSnapshotName("repo", "bc-daily-2")
	for _, step := range []struct {
		name         string
		before       func(t *testing.T)
		at           time.Time // the controller's clock; zero: now
		wantWrites   []string
		wantErr      error
		wantPhase    catalogv1alpha1.BackupSessionPhase
		wantSessions []string
		wantJobs     []string
	}{
		{name: "new", wantErr: loop.ErrRequeue, wantPhase: catalogv1alpha1.BackupSessionPending,
			wantSessions: []string{"bc-daily-2"}, wantJobs: []string{"bc-daily-2"}, wantWrites: []string{
				"create serviceaccounts demo/kubestash-backup", "create rolebindings demo/kubestash-backup", "create jobs demo/bc-daily-2",
				"create snapshots demo/repo-bc-daily-2", "update snapshots/status demo/repo-bc-daily-2", "update backupsessions/status demo/bc-daily-2"}},
		// Failed: nothing for keep-one to remove (the older Snapshot is the
		// last successful one), so no retention Job; the retry waits.
		{name: "Job failed", before: func(t *testing.T) {
			e.report(t, snapName, catalogv1alpha1.ComponentPhaseFailed)
			job, err := e.kube.BatchV1().Jobs("demo").Get(ctx, "bc-daily-2", metav1.GetOptions{})
			require.NoError(t, err)
			job.Status = batchv1.JobStatus{Failed: 1, Conditions: []batchv1.JobCondition{
				{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", LastTransitionTime: metav1.NewTime(now)}}}
			_, err = e.kube.BatchV1().Jobs("demo").UpdateStatus(ctx, job, metav1.UpdateOptions{})
			require.NoError(t, err)
		}, wantErr: loop.ErrRequeue, wantPhase: catalogv1alpha1.BackupSessionFailed, wantSessions: []string{"bc-daily-2"}, wantJobs: []string{"bc-daily-2"},
			wantWrites: []string{"update snapshots/status demo/repo-bc-daily-2", "update repositories/status demo/repo", "update backupsessions/status demo/bc-daily-2"}},
		{name: "retry delay running", wantErr: loop.ErrRequeue, wantPhase: catalogv1alpha1.BackupSessionFailed,
			wantSessions: []string{"bc-daily-2"}, wantJobs: []string{"bc-daily-2"}},
		{name: "retry delay passed", at: now.Add(61 * time.Second), wantPhase: catalogv1alpha1.BackupSessionFailed,
			wantSessions: []string{"bc-daily-2", retry}, wantJobs: []string{"bc-daily-2"},
			wantWrites: []string{"create backupsessions demo/" + retry, "update backupsessions/status demo/bc-daily-2"}},
		// Recorded: its Job stays for its log until an hour after it ended.
		{name: "outcome recorded", at: now.Add(61 * time.Second), wantErr: loop.RequeueAfter(time.Hour - 61*time.Second),
			wantPhase: catalogv1alpha1.BackupSessionFailed, wantSessions: []string{"bc-daily-2", retry}, wantJobs: []string{"bc-daily-2"}},
		{name: "Job kept an hour", at: now.Add(time.Hour), wantPhase: catalogv1alpha1.BackupSessionFailed,
			wantSessions: []string{"bc-daily-2", retry}, wantWrites: []string{"delete jobs demo/bc-daily-2"}},
		{name: "nothing left to do", at: now.Add(time.Hour), wantPhase: catalogv1alpha1.BackupSessionFailed, wantSessions: []string{"bc-daily-2", retry}},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.before != nil {
				step.before(t)
			}
			at := now
			if !step.at.IsZero() {
				at = step.at
			}
			e.r.Clock = clocktesting.NewFakePassiveClock(at)
			e.informed.Settle(t)
			e.informed.Reset()
			assert.Equal(t, step.wantErr, e.r.Reconcile(ctx, "demo", "bc-daily-2"))
			assert.Equal(t, step.wantWrites, e.informed.Writes())
			assert.Equal(t, step.wantJobs, e.jobNames(t))
			sessions, err := e.ks.CatalogV1alpha1().BackupSessions("demo").List(ctx, metav1.ListOptions{})
			require.NoError(t, err)
			var names []string
			for _, s := range sessions.Items {
				names = append(names, s.Name)
			}
			assert.ElementsMatch(t, step.wantSessions, names)
			assert.Equal(t, step.wantPhase, e.get(t, "bc-daily-2").Status.Phase)
		})
	}
}

// jobNames are the names of the Jobs of namespace demo.
func (e *env) jobNames(t *testing.T) []string {
	t.Helper()
	jobs, err := e.kube.BatchV1().Jobs("demo").List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	var names []string
	for _, j := range jobs.Items {
		names = append(names, j.Name)
	}
	return names
}

package backup

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
)

// TestFinishedJobsGoAfterTheirTTL: once a session's outcome is in its
// status, its finished Jobs (and their pods) are deleted --finished-job-ttl
// after they ended, and the sessions, Snapshots and restored data stay.
func TestFinishedJobsGoAfterTheirTTL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	metricsAddr := restartController(t, "controller.finishedJobTTL=10s")
	const ns = "jobttl-e2e"
	e := newFailEnv(ctx, t, failOptions{NS: ns, BC: "pvc-backup", Directory: "/jobttl"})
	podLogsOnFailure(t, ns)
	jobs := env.KubeClient.BatchV1().Jobs(ns)

	// gone waits for Job name and its pods to be deleted, and says how long
	// after the Job ended that was.
	gone := func(name string) {
		t.Helper()
		job, err := jobs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			job = nil // already gone
		}
		require.Eventually(t, func() bool {
			_, err := jobs.Get(ctx, name, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}, 2*time.Minute, 500*time.Millisecond, "Job %s/%s is deleted after its TTL", ns, name)
		require.Eventually(t, func() bool {
			pods, err := env.KubeClient.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + name})
			return err == nil && len(pods.Items) == 0
		}, time.Minute, 500*time.Millisecond, "the pods of Job %s go with it", name)
		if job != nil && job.Status.CompletionTime != nil {
			ttl := time.Since(job.Status.CompletionTime.Time)
			t.Logf("Job %s deleted %s after it completed", name, ttl.Round(time.Second))
			assert.GreaterOrEqual(t, ttl, 9*time.Second, "not before its TTL")
		}
	}

	// A backup: its Job goes, the session and its Snapshot stay Succeeded.
	session := e.sessionName(1)
	e.backupNow(session)
	require.Equal(t, catalogv1alpha1.BackupSessionSucceeded, e.waitSession(session))
	gone(session)
	assert.Equal(t, catalogv1alpha1.BackupSessionSucceeded, e.session(session).Status.Phase, "the session keeps its outcome")
	assert.Equal(t, catalogv1alpha1.SnapshotSucceeded, e.snapshot(session).Status.Phase, "the backup stays")
	// The initial session's Job went the same way.
	_, err := jobs.Get(ctx, e.first, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the initial session's Job is gone too: %v", err)

	// A restore: its Job goes, the RestoreSession stays Succeeded and is
	// not run again.
	rs := restoreLatest(ctx, t, env, ns, "pvc-restore", failRepo, e.data)
	gone(rs.Name)
	got, err := e.client.CatalogV1alpha1().RestoreSessions(ns).Get(ctx, rs.Name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, catalogv1alpha1.RestoreSucceeded, got.Status.Phase)
	assert.Equal(t, rs.Status.Duration, got.Status.Duration, "the recorded outcome is unchanged")
	assert.Never(t, func() bool {
		_, err := jobs.Get(ctx, rs.Name, metav1.GetOptions{})
		return err == nil
	}, 15*time.Second, time.Second, "no second restore Job")

	// The controller counted what it did on its /metrics.
	counts := scrapeRequests(t, metricsAddr)
	assert.GreaterOrEqual(t, counts["create batch/jobs"], 3.0, "backup, initial backup and restore Jobs: %v", counts)
	assert.GreaterOrEqual(t, counts["delete batch/jobs"], 3.0, "their deletions after the TTL: %v", counts)
}

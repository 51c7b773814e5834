package backup

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/restic/restictest"
)

// TestStaleLocksOnRealNode: every pod has its own hostname, so restic
// takes the lock a killed backup pod left for live for 30 minutes. Here a
// backup pod's container is killed by the runtime (SIGKILL), and another
// backup pod is deleted with grace period 0; each time the next backup,
// its retention `forget --prune` and a wipe-out Job succeed within two
// minutes, with no manual unlock.
func TestStaleLocksOnRealNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	podLogsOnFailure(t, "stale-locks")
	e := newFailEnv(ctx, t, failOptions{NS: "stale-locks", BC: "locks-backup", Directory: "/locks", KeepLast: 1})
	big := func(seed uint64) restictest.Dataset {
		return restictest.Dataset{LargeFiles: 8, LargeSize: 16 << 20, Seed: seed}
	}

	// nextBackupAndPrune: within two minutes the next session succeeds and
	// its retention (keep the last one: forget --prune of the one before)
	// is applied, and no lock is left.
	nextBackupAndPrune := func(session string) {
		t.Helper()
		start := time.Now()
		e.backupNow(session)
		require.Equal(t, catalogv1alpha1.BackupSessionSucceeded, e.waitSession(session), "the backup after the kill")
		bs := e.session(session)
		require.Len(t, bs.Status.RetentionPolicies, 1)
		assert.Equal(t, catalogv1alpha1.RetentionPolicyApplied, bs.Status.RetentionPolicies[0].Phase, "forget --prune ran: %+v", bs.Status.RetentionPolicies[0])
		took := time.Since(start)
		t.Logf("%s and its retention took %s", session, took.Round(time.Second))
		assert.Less(t, took, 2*time.Minute, "backup and prune after a killed pod")
		locks, err := e.repo().Locks(ctx)
		require.NoError(t, err)
		assert.Empty(t, locks, "the dead pod's lock is gone")
	}

	// 1. The container is killed by the runtime mid-backup.
	e.addData("large-1", big(51))
	s2 := e.sessionName(2)
	e.killBackupMidway(s2)
	require.Equal(t, catalogv1alpha1.BackupSessionFailed, e.waitSession(s2))
	nextBackupAndPrune(e.sessionName(3))

	// 2. The pod is deleted with grace period 0 mid-backup.
	e.addData("large-2", big(52))
	s4 := e.sessionName(4)
	e.backupNow(s4)
	waitBackupReading(t, s4, 16<<20)
	pods, err := env.KubeClient.CoreV1().Pods(e.o.NS).List(ctx, metav1.ListOptions{FieldSelector: "status.phase=Running"})
	require.NoError(t, err)
	require.Len(t, pods.Items, 1, "the backup pod of %s", s4)
	require.NoError(t, env.KubeClient.CoreV1().Pods(e.o.NS).Delete(ctx, pods.Items[0].Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	require.Equal(t, catalogv1alpha1.BackupSessionFailed, e.waitSession(s4))

	// A wipe-out of the kept snapshot runs while that pod's lock may be
	// left: its Job forgets and prunes within two minutes.
	kept := e.snapshot(e.sessionName(3))
	keptID := kept.Status.Components["dump"].ResticStats[0].Summary.ID
	_, err = e.client.CatalogV1alpha1().Snapshots(e.o.NS).Patch(ctx, kept.Name, types.MergePatchType, []byte(`{"spec":{"deletionPolicy":"WipeOut"}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, e.client.CatalogV1alpha1().Snapshots(e.o.NS).Delete(ctx, kept.Name, metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		jobs, err := env.KubeClient.BatchV1().Jobs(e.o.NS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=kubestash-wipeout"})
		if err != nil || len(jobs.Items) == 0 {
			return false
		}
		for _, c := range jobs.Items[0].Status.Conditions {
			if c.Type == "Complete" && c.Status == corev1.ConditionTrue {
				return true
			}
			if c.Type == "Failed" && c.Status == corev1.ConditionTrue {
				t.Fatalf("the wipe-out Job failed: %s", c.Message)
			}
		}
		return false
	}, 2*time.Minute, time.Second, "the wipe-out Job completes within two minutes")
	t.Logf("wipe-out took %s after the deletion", time.Since(start).Round(time.Second))
	have, err := e.repo().Snapshots(ctx)
	require.NoError(t, err)
	for _, s := range have {
		assert.NotEqual(t, keptID, s.ID, "restic forgot the wiped-out snapshot")
	}
	nextBackupAndPrune(e.sessionName(5))
}

package backup

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
)

// TestWrongPasswordThenFixed: a backup with a wrong restic password ends
// Failed with a message that names the cause, the earlier snapshot stays
// Succeeded, and the next backup succeeds once the Secret is fixed.
func TestWrongPasswordThenFixed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	podLogsOnFailure(t, "failure-e2e")
	e := newFailEnv(ctx, t, failOptions{NS: "failure-e2e", BC: "pvc-backup", Directory: "/failure", Password: "right-password"})

	setPassword := func(pw string) {
		sec, err := env.KubeClient.CoreV1().Secrets(e.o.NS).Get(ctx, "encrypt-secret", metav1.GetOptions{})
		require.NoError(t, err)
		sec.Data["RESTIC_PASSWORD"] = []byte(pw)
		_, err = env.KubeClient.CoreV1().Secrets(e.o.NS).Update(ctx, sec, metav1.UpdateOptions{})
		require.NoError(t, err)
	}

	setPassword("wrong-password")
	e.backupNow(e.sessionName(2))
	require.Equal(t, catalogv1alpha1.BackupSessionFailed, e.waitSession(e.sessionName(2)))
	snap := e.snapshot(e.sessionName(2))
	assert.Equal(t, catalogv1alpha1.SnapshotFailed, snap.Status.Phase)
	assert.Contains(t, snap.Status.Components["dump"].Error, "wrong password", "the error names the cause")
	assert.NotContains(t, snap.Status.Components["dump"].Error, "wrong-password", "no secret in status")
	e.assertFirstUntouched()
	// The session, not only its Snapshot, says why (messages_test.go).
	assertSessionSaysWhy(t, e, e.sessionName(2), "wrong password", "wrong-password")

	setPassword("right-password")
	e.backupNow(e.sessionName(3))
	require.Equal(t, catalogv1alpha1.BackupSessionSucceeded, e.waitSession(e.sessionName(3)), "the next backup succeeds once fixed")
	// Status that stays true when Snapshots are deleted (messages_test.go).
	assertRepositoryFollowsDeletes(t, e, e.sessionName(2))
}

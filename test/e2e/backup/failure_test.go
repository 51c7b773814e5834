package backup

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
)

// TestWrongPasswordThenFixed: a backup with a wrong restic password ends
// Failed with a message that names the cause, the earlier snapshot stays
// Succeeded, and the next backup succeeds once the Secret is fixed.
func TestWrongPasswordThenFixed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	client, err := versioned.NewForConfig(env.Config)
	require.NoError(t, err)

	ns := "failure-e2e"
	_, err = env.KubeClient.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
	pvClaim(ctx, t, ns, "target-pvc", t.TempDir())
	m := env.MinIO
	_, _, err = env.Kubectl(ctx, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: s3-secret, namespace: %[1]s}
stringData: {AWS_ACCESS_KEY_ID: %[2]s, AWS_SECRET_ACCESS_KEY: %[3]s}
---
apiVersion: v1
kind: Secret
metadata: {name: encrypt-secret, namespace: %[1]s}
stringData: {RESTIC_PASSWORD: right-password}
---
apiVersion: storage.kubestash.com/v1alpha1
kind: BackupStorage
metadata: {name: s3-storage, namespace: %[1]s}
spec:
  storage:
    provider: s3
    s3: {endpoint: %[4]s, bucket: %[5]s, region: us-east-1, prefix: failure-e2e, secretName: s3-secret}
---
apiVersion: storage.kubestash.com/v1alpha1
kind: RetentionPolicy
metadata: {name: keep, namespace: %[1]s}
spec:
  successfulSnapshots: {last: 5}
---
apiVersion: core.kubestash.com/v1alpha1
kind: BackupConfiguration
metadata: {name: pvc-backup, namespace: %[1]s}
spec:
  target: {apiGroup: "", kind: PersistentVolumeClaim, name: target-pvc, namespace: %[1]s}
  backends:
  - name: s3
    storageRef: {name: s3-storage}
    retentionPolicy: {name: keep}
  sessions:
  - name: manual
    # Only the initial backup and the sessions this test creates run.
    scheduler: {schedule: "0 0 1 1 *"}
    sessionHistoryLimit: 5
    repositories:
    - name: s3-repo
      backend: s3
      directory: /failure
      encryptionSecret: {name: encrypt-secret}
    addon:
      name: pvc-addon
      tasks:
      - name: logical-backup
`, ns, m.AccessKey, m.SecretKey, m.Endpoint, m.Bucket), "apply", "-f", "-")
	require.NoError(t, err)

	sessionPhase := func(name string) catalogv1alpha1.BackupSessionPhase {
		var phase catalogv1alpha1.BackupSessionPhase
		require.Eventually(t, func() bool {
			bs, err := client.CatalogV1alpha1().BackupSessions(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false
			}
			phase = bs.Status.Phase
			return phase.IsTerminal()
		}, 3*time.Minute, time.Second, "session %s ends", name)
		return phase
	}
	// The initial backup.
	var first string
	require.Eventually(t, func() bool {
		l, err := client.CatalogV1alpha1().BackupSessions(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) == 0 {
			return false
		}
		first = l.Items[0].Name
		return true
	}, 2*time.Minute, time.Second, "the initial BackupSession")
	require.Equal(t, catalogv1alpha1.BackupSessionSucceeded, sessionPhase(first))

	backupNow := func(name string) {
		_, err := client.CatalogV1alpha1().BackupSessions(ns).Create(ctx, &catalogv1alpha1.BackupSession{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{catalogv1alpha1.LabelInvokerName: "pvc-backup"}},
			Spec: catalogv1alpha1.BackupSessionSpec{
				Invoker: corev1.TypedLocalObjectReference{APIGroup: ptr.To("core.kubestash.com"), Kind: "BackupConfiguration", Name: "pvc-backup"},
				Session: "manual",
			},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	setPassword := func(pw string) {
		sec, err := env.KubeClient.CoreV1().Secrets(ns).Get(ctx, "encrypt-secret", metav1.GetOptions{})
		require.NoError(t, err)
		sec.Data["RESTIC_PASSWORD"] = []byte(pw)
		_, err = env.KubeClient.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{})
		require.NoError(t, err)
	}

	setPassword("wrong-password")
	backupNow("pvc-backup-manual-2")
	require.Equal(t, catalogv1alpha1.BackupSessionFailed, sessionPhase("pvc-backup-manual-2"))
	snap, err := client.CatalogV1alpha1().Snapshots(ns).Get(ctx, catalogv1alpha1.GenerateSnapshotName("s3-repo", "pvc-backup-manual-2"), metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, catalogv1alpha1.SnapshotFailed, snap.Status.Phase)
	assert.Contains(t, snap.Status.Components["dump"].Error, "wrong password", "the error names the cause")
	assert.NotContains(t, snap.Status.Components["dump"].Error, "wrong-password", "no secret in status")

	first1, err := client.CatalogV1alpha1().Snapshots(ns).Get(ctx, catalogv1alpha1.GenerateSnapshotName("s3-repo", first), metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, catalogv1alpha1.SnapshotSucceeded, first1.Status.Phase, "the earlier backup is untouched")

	setPassword("right-password")
	backupNow("pvc-backup-manual-3")
	assert.Equal(t, catalogv1alpha1.BackupSessionSucceeded, sessionPhase("pvc-backup-manual-3"), "the next backup succeeds once fixed")
}

package backup

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/restic/restictest"
	"kubestash.dev/kubestash/test/framework"
)

// TestDisasterRecovery backs a PVC up in one cluster, then starts a second,
// fresh control plane pointed at the same bucket: its catalog shows the old
// cluster's snapshot at once, and the same RestoreSession manifest the old
// cluster ran brings the data back there file for file.
func TestDisasterRecovery(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)

	ns := "dr"
	data := t.TempDir()
	_, err := restictest.Generate(data, restictest.Dataset{SmallFiles: 100, SmallMax: 8 << 10, LargeFiles: 1, LargeSize: 1 << 20, Seed: 11})
	require.NoError(t, err)
	storage := func(cp *framework.ControlPlane) {
		_, _, err := cp.Kubectl(ctx, s3StorageManifest(ns, "dr", "kept-outside-the-cluster"), "apply", "-f", "-")
		require.NoError(t, err)
	}

	// The old cluster: one backup.
	storage(env)
	pvClaimIn(ctx, t, env.KubeClient, ns, "target-pvc", data)
	_, _, err = env.Kubectl(ctx, fmt.Sprintf(`apiVersion: storage.kubestash.com/v1alpha1
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
  - name: nightly
    scheduler: {schedule: "0 0 1 1 *"}
    repositories:
    - name: s3-repo
      backend: s3
      directory: /pvc
      encryptionSecret: {name: encrypt-secret}
    addon:
      name: pvc-addon
      tasks:
      - name: logical-backup
`, ns), "apply", "-f", "-")
	require.NoError(t, err)
	old, err := versioned.NewForConfig(env.Config)
	require.NoError(t, err)
	waitSnapshot(ctx, t, old, ns)
	// The tutorial's restore, in the old cluster; its RestoreSession stays
	// in the bucket.
	before := restoreLatest(ctx, t, env, ns, "dr-restore", "s3-repo", data)

	// The old cluster's node goes, as in a disaster (and a host has room
	// for one kubelet); the new cluster gets a node of its own. The old
	// node comes back for the tests that follow.
	env.Node.Stop()
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		require.NoError(t, startNode(rctx, env), "the old cluster's node comes back")
		// Its kubelet starts the servers' pods again.
		require.NoError(t, release.WaitReady(rctx), "the old cluster's servers come back")
	}()
	// The new cluster: nothing but the storage, its Secrets and the
	// password kept outside the old cluster.
	cp2, err := framework.Start(ctx, framework.Options{NoMinIO: true, Node: true})
	require.NoError(t, err)
	defer cp2.Stop()
	require.NoError(t, startNode(ctx, cp2))
	release2, err := install(ctx, cp2)
	if release2 != nil {
		defer func() {
			release2.StopLogs()
			if t.Failed() {
				for _, c := range framework.ChartComponents {
					t.Logf("new cluster's %s log: %s", c, release2.LogTail(c, 40))
				}
			}
		}()
	}
	require.NoError(t, err)
	storage(cp2)
	fresh, err := versioned.NewForConfig(cp2.Config)
	require.NoError(t, err)
	snap := waitSnapshot(ctx, t, fresh, ns)
	t.Logf("the new cluster sees %s from the bucket", snap)

	// The new cluster restores the old cluster's data, file for file, with
	// the same RestoreSession manifest: a new restore, not the old cluster's
	// Succeeded one (which is history, not served).
	after := restoreLatest(ctx, t, cp2, ns, "dr-restore", "s3-repo", data)
	require.NotEqual(t, before.UID, after.UID, "the fresh cluster ran a restore of its own")
}

// waitSnapshot waits for a Succeeded Snapshot in ns and returns its name.
func waitSnapshot(ctx context.Context, t *testing.T, c versioned.Interface, ns string) string {
	var name string
	require.Eventually(t, func() bool {
		l, err := c.CatalogV1alpha1().Snapshots(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, s := range l.Items {
			if s.Status.Phase == catalogv1alpha1.SnapshotSucceeded {
				name = s.Name
				return true
			}
		}
		return false
	}, 3*time.Minute, time.Second, "a Succeeded snapshot in %s", ns)
	return name
}

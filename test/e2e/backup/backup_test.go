package backup

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/restic/restictest"
)

// TestScheduledBackup: the first backup is triggered when the configuration
// becomes Ready, the next by the real CronJob controller a minute later;
// both end Succeeded with integrity, the second uploading far less than
// the data's size.
func TestScheduledBackup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	client, err := versioned.NewForConfig(env.Config)
	require.NoError(t, err)

	ns := "backup-e2e"
	_, err = env.KubeClient.CoreV1().Namespaces().Create(ctx, tenantNamespace(ns), metav1.CreateOptions{})
	require.NoError(t, err)
	data := t.TempDir()
	_, err = restictest.Generate(data, restictest.Dataset{SmallFiles: 200, SmallMax: 16 << 10, LargeFiles: 2, LargeSize: 1 << 20, Seed: 7})
	require.NoError(t, err)
	pvClaim(ctx, t, ns, "target-pvc", data)

	m := env.MinIO
	manifests := fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: s3-secret, namespace: %[1]s}
stringData: {AWS_ACCESS_KEY_ID: %[2]s, AWS_SECRET_ACCESS_KEY: %[3]s}
---
apiVersion: v1
kind: Secret
metadata: {name: encrypt-secret, namespace: %[1]s}
stringData: {RESTIC_PASSWORD: not-a-real-password}
---
apiVersion: storage.kubestash.com/v1alpha1
kind: BackupStorage
metadata: {name: s3-storage, namespace: %[1]s}
spec:
  storage:
    provider: s3
    s3: {endpoint: %[4]s, bucket: %[5]s, region: us-east-1, prefix: e2e, secretName: s3-secret}
  deletionPolicy: Delete
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
  - name: frequent
    scheduler: {schedule: "* * * * *"}
    repositories:
    - name: s3-repo
      backend: s3
      directory: /pvc-backup
      encryptionSecret: {name: encrypt-secret}
    addon:
      name: pvc-addon
      tasks:
      - name: logical-backup
`, ns, m.AccessKey, m.SecretKey, m.Endpoint, m.Bucket)
	_, _, err = env.Kubectl(ctx, manifests, "apply", "-f", "-")
	require.NoError(t, err)

	// Two Succeeded snapshots: the initial one and one from the CronJob.
	var snaps []catalogv1alpha1.Snapshot
	require.Eventually(t, func() bool {
		l, err := client.CatalogV1alpha1().Snapshots(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		snaps = nil
		for _, s := range l.Items {
			if s.Status.Phase == catalogv1alpha1.SnapshotFailed {
				t.Fatalf("snapshot %s failed: %+v", s.Name, s.Status)
			}
			if s.Status.Phase == catalogv1alpha1.SnapshotSucceeded {
				snaps = append(snaps, s)
			}
		}
		return len(snaps) >= 2
	}, 5*time.Minute, 2*time.Second, "two successful snapshots")

	sessions, err := client.CatalogV1alpha1().BackupSessions(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	jobs, err := env.KubeClient.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	cronTriggered := false
	for _, j := range jobs.Items {
		if strings.HasPrefix(j.Name, "trigger-pvc-backup-frequent-") {
			cronTriggered = true
		}
	}
	assert.True(t, cronTriggered, "a BackupSession was created by the CronJob's trigger Job")
	assert.NotEmpty(t, sessions.Items)

	for _, s := range snaps {
		assert.True(t, ptr.Deref(s.Status.Integrity, false), "integrity of %s", s.Name)
		dump := s.Status.Components["dump"]
		require.Len(t, dump.ResticStats, 1)
		require.NotNil(t, dump.ResticStats[0].Summary)
		assert.NotEmpty(t, dump.ResticStats[0].Summary.ID)
		t.Logf("%s: size %s uploaded %s", s.Name, dump.ResticStats[0].Summary.Size, dump.ResticStats[0].Summary.Uploaded)
	}

	// The Repository sums its snapshots up.
	require.Eventually(t, func() bool {
		r, err := client.CatalogV1alpha1().Repositories(ns).Get(ctx, "s3-repo", metav1.GetOptions{})
		return err == nil && r.Status.Phase == catalogv1alpha1.RepositoryReady && ptr.Deref(r.Status.Integrity, false) &&
			ptr.Deref(r.Status.SnapshotCount, 0) >= 2 && r.Status.LastBackupTime != nil
	}, time.Minute, time.Second, "Repository status: Ready, integrity, count, last backup")

	// The catalog files are in the bucket, next to the restic data.
	mc, err := m.Client()
	require.NoError(t, err)
	for _, s := range snaps {
		_, err := mc.StatObject(ctx, m.Bucket, "e2e/pvc-backup/snapshots/"+s.Name+".yaml", minio.StatObjectOptions{})
		assert.NoError(t, err, "snapshot file of %s", s.Name)
	}
	_, err = mc.StatObject(ctx, m.Bucket, "e2e/pvc-backup/repository/v1/frequent/dump/config", minio.StatObjectOptions{})
	assert.NoError(t, err, "restic repository config")

	// Restore the latest snapshot into a new, empty PVC: byte for byte,
	// with modes, mtimes, symlinks and empty folders.
	rs := restoreLatest(ctx, t, env, ns, "restore", "s3-repo", data)
	assert.Empty(t, rs.Status.PausedBackups, "backups resumed")
	bc, err := client.CoreV1alpha1().BackupConfigurations(ns).Get(ctx, "pvc-backup", metav1.GetOptions{})
	require.NoError(t, err)
	assert.False(t, bc.Spec.Paused, "the configuration is not left paused")
}

// pvClaim makes a hostPath PV on dir and a PVC bound to it.
func pvClaim(ctx context.Context, t testing.TB, ns, name, dir string) {
	pvClaimIn(ctx, t, env.KubeClient, ns, name, dir)
}

// pvClaimIn is pvClaim in the cluster of kube.
func pvClaimIn(ctx context.Context, t testing.TB, kube kubernetes.Interface, ns, name, dir string) {
	pv, err := kube.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{GenerateName: name + "-"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			StorageClassName: ptr.To(""),
			VolumeName:       pv.Name,
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

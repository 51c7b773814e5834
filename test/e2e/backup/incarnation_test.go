package backup

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/layout"
)

// TestSessionsBelongToTheirNamespaceIncarnation follows the upstream
// tutorial past its end: back up, restore, clean up, then lose the
// namespace and apply the same manifests again.
//
//   - Deleting a RestoreSession takes its Job and pods with it, and deleting
//     a PVC whose backups and restores are done completes in seconds (no
//     finished pod keeps it).
//   - After the namespace is deleted and created again, the RestoreSession
//     manifest applied unchanged is a new restore ("created", not the old
//     Succeeded) that brings the data back; the old session stays in the
//     bucket's history folder and is not served.
func TestSessionsBelongToTheirNamespaceIncarnation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	const ns, restore = "reborn", "pvc-restore"
	opts := failOptions{NS: ns, BC: "pvc-backup", Directory: "/reborn"}
	e := newFailEnv(ctx, t, opts)
	podLogsOnFailure(t, ns)

	first := restoreLatest(ctx, t, env, ns, restore, failRepo, e.data)
	jobs := env.KubeClient.BatchV1().Jobs(ns)

	t.Run("deleting a RestoreSession deletes its Job and pods", func(t *testing.T) {
		const name = "throwaway"
		restoreLatest(ctx, t, env, ns, name, failRepo, e.data)
		_, err := jobs.Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err, "the finished restore Job is kept while its RestoreSession is")
		require.NoError(t, e.client.CatalogV1alpha1().RestoreSessions(ns).Delete(ctx, name, metav1.DeleteOptions{}))
		require.Eventually(t, func() bool {
			_, err := jobs.Get(ctx, name, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}, 30*time.Second, 500*time.Millisecond, "Job %s/%s is deleted with its RestoreSession", ns, name)
		require.Eventually(t, func() bool {
			pods, err := env.KubeClient.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + name})
			return err == nil && len(pods.Items) == 0
		}, 30*time.Second, 500*time.Millisecond, "the restore's pods go with the Job")
	})

	t.Run("a PVC whose backup is done is deleted in seconds", func(t *testing.T) {
		backupJob, err := jobs.Get(ctx, e.first, metav1.GetOptions{})
		require.NoError(t, err, "the finished backup Job of %s is kept for its log", e.first)
		require.NotEmpty(t, backupJob.Status.Succeeded)
		start := time.Now()
		require.NoError(t, env.KubeClient.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "target-pvc", metav1.DeleteOptions{}))
		require.Eventually(t, func() bool {
			_, err := env.KubeClient.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "target-pvc", metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}, 30*time.Second, 250*time.Millisecond, "the PVC is not held by the finished backup pod")
		t.Logf("PVC deleted in %s", time.Since(start).Round(100*time.Millisecond))
		snap := e.snapshot(e.first)
		assert.Equal(t, catalogv1alpha1.SnapshotSucceeded, snap.Status.Phase, "the backup is untouched")
	})

	// The namespace is lost, then created again with the same manifests.
	require.NoError(t, env.KubeClient.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		_, err := env.KubeClient.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 3*time.Minute, time.Second, "namespace %s is deleted", ns)
	l, err := e.client.CatalogV1alpha1().RestoreSessions(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, rs := range l.Items {
		assert.NotEqual(t, ns, rs.Namespace, "no session of a namespace that does not exist is served")
	}

	e2 := newFailEnv(ctx, t, opts)
	second := restoreLatest(ctx, t, env, ns, restore, failRepo, e2.data)
	assert.NotEqual(t, first.UID, second.UID, "a new restore, not the earlier incarnation's")
	assert.NotEqual(t, first.Annotations[catalogv1alpha1.AnnotationNamespaceUID], second.Annotations[catalogv1alpha1.AnnotationNamespaceUID])

	sessions, err := e2.client.CatalogV1alpha1().BackupSessions(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, bs := range sessions.Items {
		assert.NotEqual(t, e.first, bs.Name, "the earlier incarnation's BackupSession is not served")
	}
	snaps, err := e2.client.CatalogV1alpha1().Snapshots(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(snaps.Items), 2, "Snapshots are backups: both incarnations' are served")

	mc, err := env.MinIO.Client()
	require.NoError(t, err)
	var history []string
	prefix := ns + strings.TrimSuffix(opts.Directory, "/") + "/restoresessions/" + layout.HistoryDir + "/"
	for o := range mc.ListObjects(ctx, env.MinIO.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		require.NoError(t, o.Err)
		history = append(history, o.Key)
	}
	require.Len(t, history, 1, "the earlier RestoreSession is kept in %s", prefix)
	obj, err := mc.GetObject(ctx, env.MinIO.Bucket, history[0], minio.GetObjectOptions{})
	require.NoError(t, err)
	defer obj.Close()
	data, err := io.ReadAll(obj)
	require.NoError(t, err)
	assert.Contains(t, string(data), string(first.UID))
	assert.Contains(t, string(data), "phase: Succeeded")
}

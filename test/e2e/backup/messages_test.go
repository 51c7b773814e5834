package backup

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/utils/ptr"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/conditions"
	"kubestash.dev/kubestash/pkg/controller/backupsession"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
)

// events lists the Events about one object of kind in ns.
func events(ctx context.Context, t *testing.T, ns, kind, name string) []corev1.Event {
	t.Helper()
	sel := fields.Set{"involvedObject.kind": kind, "involvedObject.name": name}.AsSelector().String()
	l, err := env.KubeClient.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
	require.NoError(t, err)
	return l.Items
}

// occurrences counts how often events with reason were emitted (the
// recorder folds repeats into one Event with a count).
func occurrences(evs []corev1.Event, reason string) (n int32, messages []string) {
	for _, e := range evs {
		if e.Reason == reason {
			n += max(e.Count, 1)
			messages = append(messages, e.Message)
		}
	}
	return n, messages
}

// assertSessionSaysWhy: a session whose backup failed says why in its own
// conditions and in a Warning event, without the password.
func assertSessionSaysWhy(t *testing.T, e *failEnv, session, cause, secret string) {
	t.Helper()
	bs := e.session(session)
	c := conditions.Get(bs.Status.Conditions, backupsession.TypeBackupSucceeded)
	require.NotNil(t, c, "the session has a %s condition: %+v", backupsession.TypeBackupSucceeded, bs.Status.Conditions)
	assert.Equal(t, metav1.ConditionFalse, c.Status)
	assert.Equal(t, backupsession.ReasonComponentBackupFailed, c.Reason)
	assert.Contains(t, c.Message, cause)
	for _, c := range bs.Status.Conditions {
		assert.NotContains(t, c.Message, secret, "no secret in condition %s", c.Type)
	}
	var warn *corev1.Event
	require.Eventually(t, func() bool {
		for _, ev := range events(e.ctx, t, e.o.NS, "BackupSession", session) {
			if ev.Type == corev1.EventTypeWarning && ev.Reason == backupsession.ReasonComponentBackupFailed {
				warn = &ev
				return true
			}
		}
		return false
	}, 30*time.Second, time.Second, "a Warning event on BackupSession %s", session)
	assert.Contains(t, warn.Message, cause)
	assert.NotContains(t, warn.Message, secret)
}

// assertRepositoryFollowsDeletes: deleting Snapshots updates their
// Repository's count, recent list and size at once, not at the next backup.
func assertRepositoryFollowsDeletes(t *testing.T, e *failEnv, failed string) {
	t.Helper()
	repos := e.client.CatalogV1alpha1().Repositories(e.o.NS)
	snaps := e.client.CatalogV1alpha1().Snapshots(e.o.NS)
	repo, err := repos.Get(e.ctx, failRepo, metav1.GetOptions{})
	require.NoError(t, err)
	before := ptr.Deref(repo.Status.SnapshotCount, 0)
	require.GreaterOrEqual(t, before, int32(3))
	require.NotEmpty(t, repo.Status.Size)

	recent := func(r *catalogv1alpha1.Repository) []string {
		var out []string
		for _, s := range r.Status.RecentSnapshots {
			out = append(out, s.Name)
		}
		return out
	}
	waitRepo := func(what string, ok func(r *catalogv1alpha1.Repository) bool) {
		t.Helper()
		require.Eventually(t, func() bool {
			repo, err = repos.Get(e.ctx, failRepo, metav1.GetOptions{})
			return err == nil && ok(repo)
		}, 20*time.Second, 500*time.Millisecond, "Repository %s: %s; status %+v", failRepo, what, repo.Status)
	}

	failedSnap := catalogv1alpha1.GenerateSnapshotName(failRepo, failed)
	require.Contains(t, recent(repo), failedSnap)
	require.NoError(t, snaps.Delete(e.ctx, failedSnap, metav1.DeleteOptions{}))
	waitRepo("one Snapshot fewer, the deleted one gone from recentSnapshots", func(r *catalogv1alpha1.Repository) bool {
		return ptr.Deref(r.Status.SnapshotCount, 0) == before-1 && !strings.Contains(fmt.Sprint(recent(r)), failedSnap)
	})

	// Every Snapshot gone: nothing tells the size any more.
	list, err := snaps.List(e.ctx, metav1.ListOptions{LabelSelector: catalogv1alpha1.LabelRepoName + "=" + failRepo})
	require.NoError(t, err)
	for _, s := range list.Items {
		require.NoError(t, snaps.Delete(e.ctx, s.Name, metav1.DeleteOptions{}))
	}
	waitRepo("no Snapshot, no size", func(r *catalogv1alpha1.Repository) bool {
		return ptr.Deref(r.Status.SnapshotCount, -1) == 0 && len(r.Status.RecentSnapshots) == 0 && r.Status.Size == ""
	})
}

// TestQuietNotReadyEvents: a BackupConfiguration that waits on missing
// dependencies says so in one Warning, not one per requeue, and a new one
// when the reason changes; its Ready condition then carries the new reason.
func TestQuietNotReadyEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	client, err := versioned.NewForConfig(env.Config)
	require.NoError(t, err)
	const ns, name = "quiet-events", "waiting"
	_, err = env.KubeClient.CoreV1().Namespaces().Create(ctx, tenantNamespace(ns), metav1.CreateOptions{})
	require.NoError(t, err)
	_, stderr, err := env.Kubectl(ctx, fmt.Sprintf(`apiVersion: core.kubestash.com/v1alpha1
kind: BackupConfiguration
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  target: {apiGroup: "", kind: PersistentVolumeClaim, name: target-pvc, namespace: %[1]s}
  backends:
  - name: s3
    storageRef: {name: no-such-storage, namespace: %[1]s}
    retentionPolicy: {name: keep}
  sessions:
  - name: daily
    scheduler: {schedule: "0 0 1 1 *"}
    repositories:
    - {name: repo, backend: s3, directory: /quiet, encryptionSecret: {name: encrypt-secret}}
    addon:
      name: pvc-addon
      tasks:
      - name: logical-backup
`, ns, name), "apply", "-f", "-")
	require.NoError(t, err, stderr)

	// The readiness Warnings, NotReady or Invalid (however the check
	// classes a problem, it is said once).
	warnings := func() (int32, []string) {
		evs := events(ctx, t, ns, "BackupConfiguration", name)
		n1, m1 := occurrences(evs, "NotReady")
		n2, m2 := occurrences(evs, "Invalid")
		return n1 + n2, append(m1, m2...)
	}
	// Upstream's example saw the same Warning 18 times in 30 s.
	require.Eventually(t, func() bool { n, _ := warnings(); return n >= 1 }, time.Minute, time.Second, "a readiness Warning")
	assert.Never(t, func() bool { n, _ := warnings(); return n > 1 }, 25*time.Second, time.Second, "the same Warning again while the reason stays")
	n, msgs := warnings()
	assert.Equal(t, int32(1), n, "one Warning while the reason stays: %v", msgs)
	require.NotEmpty(t, msgs)
	assert.Contains(t, msgs[0], "target PersistentVolumeClaim "+ns+"/target-pvc not found")

	// The target appears: the reason changes, and so does what is shown.
	_, err = env.KubeClient.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "target-pvc", Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: ptr.To(""),
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	// What is left is the missing storage and policy.
	require.Eventually(t, func() bool {
		_, msgs := warnings()
		for _, m := range msgs {
			if !strings.Contains(m, "target-pvc") && strings.Contains(m, "no-such-storage") {
				return true
			}
		}
		return false
	}, time.Minute, time.Second, "a Warning with the new reason")
	bc, err := client.CoreV1alpha1().BackupConfigurations(ns).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	ready := conditions.Get(bc.Status.Conditions, corev1alpha1.TypeReady)
	require.NotNil(t, ready)
	assert.Equal(t, metav1.ConditionFalse, ready.Status)
	assert.NotContains(t, ready.Message, "target-pvc", "the stale reason is replaced in status")
	assert.Contains(t, ready.Message, "no-such-storage")
	assert.Never(t, func() bool { n, _ := warnings(); return n > 2 }, 15*time.Second, time.Second, "a Warning repeated")
	n, msgs = warnings()
	assert.Equal(t, int32(2), n, "one Warning per reason: %v", msgs)
}

// TestTotalSizeBlankUntilKnown: a BackupStorage without any sized
// Repository shows no totalSize, as upstream, not "0 B".
func TestTotalSizeBlankUntilKnown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	client, err := versioned.NewForConfig(env.Config)
	require.NoError(t, err)
	const ns = "total-size"
	_, err = env.KubeClient.CoreV1().Namespaces().Create(ctx, tenantNamespace(ns), metav1.CreateOptions{})
	require.NoError(t, err)
	_, stderr, err := env.Kubectl(ctx, fmt.Sprintf(`apiVersion: storage.kubestash.com/v1alpha1
kind: BackupStorage
metadata: {name: empty, namespace: %s}
spec:
  storage:
    provider: s3
    s3: {endpoint: %s, bucket: %s, region: us-east-1, prefix: total-size, secretName: no-such-secret}
`, ns, env.MinIO.Endpoint, env.MinIO.Bucket), "apply", "-f", "-")
	require.NoError(t, err, stderr)
	require.Eventually(t, func() bool {
		bs, err := client.StorageV1alpha1().BackupStorages(ns).Get(ctx, "empty", metav1.GetOptions{})
		return err == nil && bs.Status.Phase != ""
	}, time.Minute, time.Second, "the BackupStorage is reconciled")
	bs, err := client.StorageV1alpha1().BackupStorages(ns).Get(ctx, "empty", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Empty(t, bs.Status.TotalSize, "blank until a size is known")
	out, _, err := env.Kubectl(ctx, "", "get", "backupstorage", "empty", "-n", ns)
	require.NoError(t, err)
	assert.NotContains(t, out, "0 B")
}

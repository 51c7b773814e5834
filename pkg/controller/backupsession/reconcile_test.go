package backupsession

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	addonsv1alpha1 "kubestash.dev/kubestash/pkg/apis/addons/v1alpha1"
	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/conditions"
	"kubestash.dev/kubestash/pkg/controller/lookup/lookuptest"
	"kubestash.dev/kubestash/pkg/controller/loop"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned/fake"
)

var now = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func load[T any](t *testing.T, name string) *T {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "artifacts", "addons", name))
	require.NoError(t, err)
	var v T
	require.NoError(t, yaml.UnmarshalStrict(b, &v))
	return &v
}

type env struct {
	r        *Reconciler
	kube     *kubefake.Clientset
	ks       *fake.Clientset
	informed *lookuptest.Informed
}

func newEnv(t *testing.T, bcPhase corev1alpha1.BackupInvokerPhase, sessions ...*catalogv1alpha1.BackupSession) *env {
	bc := &corev1alpha1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "bc"},
		Spec: corev1alpha1.BackupConfigurationSpec{
			Target:   &kmapi.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "target-pvc", Namespace: "demo"},
			Backends: []corev1alpha1.BackendReference{{Name: "s3", StorageRef: &kmapi.ObjectReference{Name: "s3-storage"}, RetentionPolicy: &kmapi.ObjectReference{Name: "keep-one"}}},
			Sessions: []corev1alpha1.Session{{
				SessionConfig: corev1alpha1.SessionConfig{Name: "daily", SessionHistoryLimit: 1},
				Addon:         &corev1alpha1.AddonInfo{Name: "pvc-addon", Tasks: []corev1alpha1.TaskReference{{Name: "logical-backup"}}},
				Repositories:  []corev1alpha1.RepositoryInfo{{Name: "repo", Backend: "s3", Directory: "/r", EncryptionSecret: &kmapi.ObjectReference{Name: "encrypt-secret"}}},
			}},
		},
		Status: corev1alpha1.BackupConfigurationStatus{Phase: bcPhase},
	}
	oldSnap := &catalogv1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "repo-old", Labels: map[string]string{catalogv1alpha1.LabelRepoName: "repo"}},
		Spec:       catalogv1alpha1.SnapshotSpec{Repository: "repo"},
		Status:     catalogv1alpha1.SnapshotStatus{Phase: catalogv1alpha1.SnapshotSucceeded, SnapshotTime: ptr.To(metav1.NewTime(now.Add(-24 * time.Hour)))},
	}
	keepOne := &storagev1alpha1.RetentionPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "keep-one"},
		Spec: storagev1alpha1.RetentionPolicySpec{SuccessfulSnapshots: &storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Last: ptr.To(int32(1))}}}
	repo := &catalogv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "repo"}, Spec: catalogv1alpha1.RepositorySpec{
		StorageRef: kmapi.ObjectReference{Name: "s3-storage"}, EncryptionSecret: &kmapi.ObjectReference{Name: "encrypt-secret"}}}
	storage := &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "s3-storage"}, Spec: storagev1alpha1.BackupStorageSpec{
		Storage: storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderS3, S3: &storagev1alpha1.S3Spec{Bucket: "b", SecretName: "s3-secret"}}}}
	objs := []runtime.Object{bc, oldSnap, keepOne, repo, storage, load[addonsv1alpha1.Addon](t, "pvc-addon.yaml"), load[addonsv1alpha1.Function](t, "pvc-backup-function.yaml")}
	for _, s := range sessions {
		objs = append(objs, s)
	}
	e := &env{kube: kubefake.NewSimpleClientset(), ks: fake.NewSimpleClientset(objs...)}
	e.informed = lookuptest.NewInformed(t, e.kube, e.ks)
	e.r = &Reconciler{Kube: e.kube, Client: e.ks, Recorder: record.NewFakeRecorder(100), Clock: clocktesting.NewFakePassiveClock(now), Reads: e.informed.Reads,
		AgentImage: "ghcr.io/kubestash/agent:dev"}
	return e
}

// reconcile is one reconcile of demo/name as the controller makes it: its
// informers have seen every change made to the fakes so far.
func (e *env) reconcile(t *testing.T, name string) error {
	t.Helper()
	e.informed.Settle(t)
	return e.r.Reconcile(context.Background(), "demo", name)
}

func session(name string, created time.Time) *catalogv1alpha1.BackupSession {
	return &catalogv1alpha1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: name, CreationTimestamp: metav1.NewTime(created),
			Labels: map[string]string{catalogv1alpha1.LabelInvokerName: "bc"}},
		Spec: catalogv1alpha1.BackupSessionSpec{Invoker: corev1.TypedLocalObjectReference{Kind: "BackupConfiguration", Name: "bc"}, Session: "daily"},
	}
}

func (e *env) get(t *testing.T, name string) *catalogv1alpha1.BackupSession {
	bs, err := e.ks.CatalogV1alpha1().BackupSessions("demo").Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return bs
}

func (e *env) snapshot(t *testing.T, name string) *catalogv1alpha1.Snapshot {
	s, err := e.ks.CatalogV1alpha1().Snapshots("demo").Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return s
}

// report is what the agent does: set the component's outcome.
func (e *env) report(t *testing.T, snap string, phase catalogv1alpha1.ComponentPhase) {
	s := e.snapshot(t, snap)
	s.Status.Components = map[string]catalogv1alpha1.Component{"dump": {Phase: phase, Integrity: ptr.To(true), Size: "806 B"}}
	_, err := e.ks.CatalogV1alpha1().Snapshots("demo").UpdateStatus(context.Background(), s, metav1.UpdateOptions{})
	require.NoError(t, err)
}

func TestBackupSucceeds(t *testing.T) {
	ctx := context.Background()
	old := session("bc-daily-1", now.Add(-2*time.Hour))
	old.Status.Phase = catalogv1alpha1.BackupSessionSucceeded
	e := newEnv(t, corev1alpha1.BackupInvokerReady, old, session("bc-daily-2", now))

	require.ErrorIs(t, e.reconcile(t, "bc-daily-2"), errRequeueForTest())
	snapName := catalogv1alpha1.GenerateSnapshotName("repo", "bc-daily-2")
	assert.Equal(t, "repo-bc-daily-2", snapName)
	snap := e.snapshot(t, snapName)
	assert.Equal(t, "repo", snap.Labels[catalogv1alpha1.LabelRepoName])
	assert.Equal(t, "target-pvc", snap.Labels[catalogv1alpha1.LabelAppRefName])
	assert.Len(t, snap.Spec.SnapshotID, 26)
	assert.Equal(t, catalogv1alpha1.SnapshotPending, snap.Status.Phase)

	job, err := e.kube.BatchV1().Jobs("demo").Get(ctx, "bc-daily-2", metav1.GetOptions{})
	require.NoError(t, err)
	c := job.Spec.Template.Spec.Containers[0]
	assert.Contains(t, c.Args, "--backupsession=bc-daily-2")
	assert.Contains(t, c.Args, "--paths=/kubestash-data")
	assert.Equal(t, "target-pvc", job.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim.ClaimName)
	assert.Equal(t, BackupServiceAccount, job.Spec.Template.Spec.ServiceAccountName)
	assertSecretEnv(t, c.Env)
	assert.Equal(t, catalogv1alpha1.BackupSessionPending, e.get(t, "bc-daily-2").Status.Phase)

	e.report(t, snapName, catalogv1alpha1.ComponentPhaseRunning)
	require.Error(t, e.reconcile(t, "bc-daily-2"))
	assert.Equal(t, catalogv1alpha1.BackupSessionRunning, e.get(t, "bc-daily-2").Status.Phase)

	e.report(t, snapName, catalogv1alpha1.ComponentPhaseSucceeded)
	// successfulSnapshots.last 1: the older snapshot is set to WipeOut and
	// deleted; the retention Job forgets its restic data.
	require.ErrorIs(t, e.reconcile(t, "bc-daily-2"), errRequeueForTest())
	bs := e.get(t, "bc-daily-2")
	assert.Equal(t, catalogv1alpha1.BackupSessionRunning, bs.Status.Phase, "running until the restic data is forgotten")
	require.Len(t, bs.Status.RetentionPolicies, 1)
	assert.Equal(t, catalogv1alpha1.RetentionPolicyPending, bs.Status.RetentionPolicies[0].Phase)
	_, err = e.ks.CatalogV1alpha1().Snapshots("demo").Get(ctx, "repo-old", metav1.GetOptions{})
	assert.Error(t, err, "the older snapshot was removed by the retention policy")
	rj := e.retentionJob(t, "bc-daily-2")
	assert.Equal(t, []string{"forget", "--namespace=demo", "--repository=repo", "--scratch-dir=/kubestash-tmp"}, rj.Spec.Template.Spec.Containers[0].Args)
	assert.Equal(t, "ghcr.io/kubestash/agent:dev", rj.Spec.Template.Spec.Containers[0].Image)
	assert.Equal(t, BackupServiceAccount, rj.Spec.Template.Spec.ServiceAccountName)
	assertSecretEnv(t, rj.Spec.Template.Spec.Containers[0].Env)
	e.endJob(t, rj, batchv1.JobComplete)

	require.NoError(t, e.reconcile(t, "bc-daily-2"))
	bs = e.get(t, "bc-daily-2")
	assert.Equal(t, catalogv1alpha1.BackupSessionSucceeded, bs.Status.Phase)
	snap = e.snapshot(t, snapName)
	assert.Equal(t, catalogv1alpha1.SnapshotSucceeded, snap.Status.Phase)
	assert.True(t, *snap.Status.Integrity)
	assert.Equal(t, "806 B", snap.Status.Size)
	assert.NotNil(t, snap.Status.SnapshotTime)
	assert.True(t, conditions.IsTrue(bs.Status.Conditions, catalogv1alpha1.TypeSessionHistoryCleaned))
	_, err = e.ks.CatalogV1alpha1().BackupSessions("demo").Get(ctx, "bc-daily-1", metav1.GetOptions{})
	assert.Error(t, err, "sessionHistoryLimit 1: the older session is gone")

	require.Len(t, bs.Status.RetentionPolicies, 1)
	assert.Equal(t, catalogv1alpha1.RetentionPolicyApplied, bs.Status.RetentionPolicies[0].Phase)
	e.snapshot(t, snapName)

	// The Repository sums up its snapshots.
	r, err := e.ks.CatalogV1alpha1().Repositories("demo").Get(ctx, "repo", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, catalogv1alpha1.RepositoryReady, r.Status.Phase)
	assert.Equal(t, int32(1), *r.Status.SnapshotCount)
	assert.True(t, *r.Status.Integrity)
	assert.Equal(t, "806 B", r.Status.Size)
	require.Len(t, r.Status.RecentSnapshots, 1)
	assert.Equal(t, snapName, r.Status.RecentSnapshots[0].Name)
}

func errRequeueForTest() error { return loop.ErrRequeue }

func (e *env) retentionJob(t *testing.T, bs string) *batchv1.Job {
	job, err := e.kube.BatchV1().Jobs("demo").Get(context.Background(), "retentionpolicy-"+bs, metav1.GetOptions{})
	require.NoError(t, err)
	return job
}

// endJob is what the Job controller does when the pod ends.
func (e *env) endJob(t *testing.T, job *batchv1.Job, how batchv1.JobConditionType) {
	job.Status.Conditions = []batchv1.JobCondition{{Type: how, Status: corev1.ConditionTrue, Reason: "Ended"}}
	_, err := e.kube.BatchV1().Jobs(job.Namespace).UpdateStatus(context.Background(), job, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// A retention Job that fails fails the session, with the agent's message.
func TestRetentionJobFailed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, corev1alpha1.BackupInvokerReady, session("bc-daily-2", now))
	require.Error(t, e.reconcile(t, "bc-daily-2"))
	e.report(t, catalogv1alpha1.GenerateSnapshotName("repo", "bc-daily-2"), catalogv1alpha1.ComponentPhaseSucceeded)
	require.ErrorIs(t, e.reconcile(t, "bc-daily-2"), errRequeueForTest())

	rj := e.retentionJob(t, "bc-daily-2")
	_, err := e.kube.CoreV1().Pods("demo").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: rj.Name + "-x", Labels: map[string]string{batchv1.JobNameLabel: rj.Name}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "forget", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Message: "repository demo/repo: restic forget: wrong password or no key found"}}}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	e.endJob(t, rj, batchv1.JobFailed)

	require.NoError(t, e.reconcile(t, "bc-daily-2"))
	bs := e.get(t, "bc-daily-2")
	assert.Equal(t, catalogv1alpha1.BackupSessionFailed, bs.Status.Phase)
	require.Len(t, bs.Status.RetentionPolicies, 1)
	assert.Equal(t, catalogv1alpha1.RetentionPolicyFailedToApply, bs.Status.RetentionPolicies[0].Phase)
	assert.Contains(t, bs.Status.RetentionPolicies[0].Error, "wrong password", "the agent's reason")
}

func TestJobEndedEarlyFailsTheSnapshot(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, corev1alpha1.BackupInvokerReady, session("bc-daily-2", now))
	require.Error(t, e.reconcile(t, "bc-daily-2"))
	snapName := catalogv1alpha1.GenerateSnapshotName("repo", "bc-daily-2")
	e.report(t, snapName, catalogv1alpha1.ComponentPhaseRunning)

	// The pod was killed: the Job failed while the component ran.
	job, err := e.kube.BatchV1().Jobs("demo").Get(ctx, "bc-daily-2", metav1.GetOptions{})
	require.NoError(t, err)
	job.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit"}}
	_, err = e.kube.BatchV1().Jobs("demo").UpdateStatus(ctx, job, metav1.UpdateOptions{})
	require.NoError(t, err)

	require.NoError(t, e.reconcile(t, "bc-daily-2"))
	snap := e.snapshot(t, snapName)
	assert.Equal(t, catalogv1alpha1.SnapshotFailed, snap.Status.Phase)
	c := conditions.Get(snap.Status.Conditions, catalogv1alpha1.TypeBackupIncomplete)
	require.NotNil(t, c)
	assert.Contains(t, c.Message, "BackoffLimitExceeded")
	assert.Equal(t, catalogv1alpha1.BackupSessionFailed, e.get(t, "bc-daily-2").Status.Phase, "no session stays Running")
}

func TestSkipped(t *testing.T) {
	ctx := context.Background()
	t.Run("configuration not ready", func(t *testing.T) {
		e := newEnv(t, corev1alpha1.BackupInvokerNotReady, session("bc-daily-2", now))
		require.NoError(t, e.reconcile(t, "bc-daily-2"))
		bs := e.get(t, "bc-daily-2")
		assert.Equal(t, catalogv1alpha1.BackupSessionSkipped, bs.Status.Phase)
		assert.Contains(t, conditions.Get(bs.Status.Conditions, catalogv1alpha1.TypeBackupSkipped).Message, "not Ready")
		assert.Equal(t, []string{"update backupsessions/status demo/bc-daily-2"}, e.informed.Writes(), "a skipped session starts nothing")
	})
	t.Run("another session running", func(t *testing.T) {
		running := session("bc-daily-1", now.Add(-time.Minute))
		running.Status.Phase = catalogv1alpha1.BackupSessionRunning
		running.Status.Conditions = []kmapi.Condition{conditions.True(catalogv1alpha1.TypeSnapshotsEnsured, catalogv1alpha1.ReasonSuccessfullyEnsuredSnapshots, "")}
		e := newEnv(t, corev1alpha1.BackupInvokerReady, running, session("bc-daily-2", now))
		require.NoError(t, e.reconcile(t, "bc-daily-2"))
		bs := e.get(t, "bc-daily-2")
		assert.Equal(t, catalogv1alpha1.BackupSessionSkipped, bs.Status.Phase)
		assert.Contains(t, conditions.Get(bs.Status.Conditions, catalogv1alpha1.TypeBackupSkipped).Message, "bc-daily-1")
		jobs, err := e.kube.BatchV1().Jobs("demo").List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		assert.Empty(t, jobs.Items, "a skipped session starts nothing")
		assert.Equal(t, []string{"update backupsessions/status demo/bc-daily-2"}, e.informed.Writes(), "nor writes but its status")
	})
	// The guard against two sessions at once fails closed: a lookup that
	// fails starts nothing and decides nothing; the reconcile is retried.
	for _, tc := range []struct{ verb, resource string }{{"list", "backupsessions"}, {"get", "snapshots"}} {
		t.Run(tc.verb+" "+tc.resource+" fails", func(t *testing.T) {
			e := newEnv(t, corev1alpha1.BackupInvokerReady, session("bc-daily-2", now))
			e.ks.PrependReactor(tc.verb, tc.resource, func(clienttesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewServiceUnavailable("catalog server restarting")
			})
			err := e.reconcile(t, "bc-daily-2")
			require.Error(t, err)
			assert.Contains(t, err.Error(), "catalog server restarting")
			bs := e.get(t, "bc-daily-2")
			assert.Empty(t, bs.Status.Phase, "nothing decided")
			jobs, err := e.kube.BatchV1().Jobs("demo").List(ctx, metav1.ListOptions{})
			require.NoError(t, err)
			assert.Empty(t, jobs.Items, "nothing started")
			assert.Empty(t, e.informed.Writes(), "nothing written")
		})
	}
}

func TestULID(t *testing.T) {
	a, b := newULID(now), newULID(now.Add(time.Millisecond))
	assert.Len(t, a, 26)
	assert.Less(t, a, b, "ULIDs sort by time")
	for _, c := range a {
		assert.Contains(t, crockford, string(c))
	}
	assert.NotEqual(t, newULID(now), newULID(now), "random part")
}

func TestRetryAfterDelay(t *testing.T) {
	ctx := context.Background()
	bs := session("bc-daily-2", now)
	bs.Spec.RetryLeft = 1
	e := newEnv(t, corev1alpha1.BackupInvokerReady, bs)
	bc, err := e.ks.CoreV1alpha1().BackupConfigurations("demo").Get(ctx, "bc", metav1.GetOptions{})
	require.NoError(t, err)
	bc.Spec.Sessions[0].RetryConfig = &corev1alpha1.RetryConfig{MaxRetry: 1, Delay: metav1.Duration{Duration: time.Minute}}
	_, err = e.ks.CoreV1alpha1().BackupConfigurations("demo").Update(ctx, bc, metav1.UpdateOptions{})
	require.NoError(t, err)

	require.Error(t, e.reconcile(t, "bc-daily-2"))
	e.report(t, catalogv1alpha1.GenerateSnapshotName("repo", "bc-daily-2"), catalogv1alpha1.ComponentPhaseFailed)
	// Failed, and the retry waits for its delay.
	require.ErrorIs(t, e.reconcile(t, "bc-daily-2"), loop.ErrRequeue)
	got := e.get(t, "bc-daily-2")
	assert.Equal(t, catalogv1alpha1.BackupSessionFailed, got.Status.Phase)
	require.NotNil(t, got.Status.NextRetry)
	assert.Equal(t, now.Add(time.Minute), got.Status.NextRetry.Time)
	list, err := e.ks.CatalogV1alpha1().BackupSessions("demo").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, list.Items, 1, "no retry before the delay")

	e.r.Clock = clocktesting.NewFakePassiveClock(now.Add(61 * time.Second))
	require.NoError(t, e.reconcile(t, "bc-daily-2"))
	assert.True(t, *e.get(t, "bc-daily-2").Status.Retried)
	list, err = e.ks.CatalogV1alpha1().BackupSessions("demo").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, list.Items, 2)
	for _, b := range list.Items {
		if b.Name != "bc-daily-2" {
			assert.Equal(t, int32(0), b.Spec.RetryLeft, "the retry has one retry less")
			assert.Equal(t, "daily", b.Spec.Session)
		}
	}
	// Idempotent: no second retry.
	require.NoError(t, e.reconcile(t, "bc-daily-2"))
	list, err = e.ks.CatalogV1alpha1().BackupSessions("demo").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, list.Items, 2)
}

// A backup pod that never starts (here: unschedulable) fails the session
// after the pending timeout, with the scheduler's reason, instead of
// leaving it Running.
func TestPodPendingTooLong(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, corev1alpha1.BackupInvokerReady, session("bc-daily-2", now))
	require.Error(t, e.reconcile(t, "bc-daily-2"))
	pod := func(age time.Duration) {
		_, err := e.kube.CoreV1().Pods("demo").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "bc-daily-2-x", CreationTimestamp: metav1.NewTime(now.Add(-age)),
				Labels: map[string]string{batchv1.JobNameLabel: "bc-daily-2"}},
			Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
				Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."}}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	pod(9 * time.Minute)
	require.ErrorIs(t, e.reconcile(t, "bc-daily-2"), errRequeueForTest(), "not yet: within the timeout")
	assert.Equal(t, catalogv1alpha1.BackupSessionPending, e.get(t, "bc-daily-2").Status.Phase)

	e.r.Clock = clocktesting.NewFakePassiveClock(now.Add(2 * time.Minute))
	require.NoError(t, e.reconcile(t, "bc-daily-2"))
	bs := e.get(t, "bc-daily-2")
	assert.Equal(t, catalogv1alpha1.BackupSessionFailed, bs.Status.Phase)
	c := conditions.Get(bs.Status.Conditions, catalogv1alpha1.TypePodHasBeenInPendingStateForLongerThanExpected)
	require.NotNil(t, c)
	assert.Contains(t, c.Message, "Unschedulable")
	snap := e.snapshot(t, catalogv1alpha1.GenerateSnapshotName("repo", "bc-daily-2"))
	assert.Equal(t, catalogv1alpha1.SnapshotFailed, snap.Status.Phase)
	assert.Contains(t, conditions.Get(snap.Status.Conditions, catalogv1alpha1.TypeBackupIncomplete).Message, "node affinity/selector")
	_, err := e.kube.BatchV1().Jobs("demo").Get(ctx, "bc-daily-2", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the stuck Job is deleted")
}

// assertSecretEnv: the repository's Secrets reach the container only by
// secretKeyRef (pkg/secretenv), never as values.
func assertSecretEnv(t *testing.T, env []corev1.EnvVar) {
	t.Helper()
	refs := map[string]string{}
	for _, e := range env {
		assert.Empty(t, e.Value, e.Name)
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			refs[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
	}
	assert.Equal(t, map[string]string{
		"RESTIC_PASSWORD_repo":       "encrypt-secret/RESTIC_PASSWORD",
		"AWS_ACCESS_KEY_ID_repo":     "s3-secret/AWS_ACCESS_KEY_ID",
		"AWS_SECRET_ACCESS_KEY_repo": "s3-secret/AWS_SECRET_ACCESS_KEY",
		"CA_CERT_DATA_repo":          "s3-secret/CA_CERT_DATA",
	}, refs)
}

// A session whose status lost SnapshotsEnsured after it started (a status
// write during an outage) is not Skipped when its configuration turns
// NotReady meanwhile: its Job runs and its outcome counts.
func TestStartedSessionIsNotSkipped(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, corev1alpha1.BackupInvokerReady, session("bc-daily-2", now))
	require.Error(t, e.reconcile(t, "bc-daily-2"))
	bs := e.get(t, "bc-daily-2")
	bs.Status = catalogv1alpha1.BackupSessionStatus{} // the lost write
	_, err := e.ks.CatalogV1alpha1().BackupSessions("demo").UpdateStatus(ctx, bs, metav1.UpdateOptions{})
	require.NoError(t, err)
	bc, err := e.ks.CoreV1alpha1().BackupConfigurations("demo").Get(ctx, "bc", metav1.GetOptions{})
	require.NoError(t, err)
	bc.Status.Phase = corev1alpha1.BackupInvokerNotReady
	_, err = e.ks.CoreV1alpha1().BackupConfigurations("demo").UpdateStatus(ctx, bc, metav1.UpdateOptions{})
	require.NoError(t, err)

	require.Error(t, e.reconcile(t, "bc-daily-2"))
	got := e.get(t, "bc-daily-2")
	assert.NotEqual(t, catalogv1alpha1.BackupSessionSkipped, got.Status.Phase)
	assert.Nil(t, conditions.Get(got.Status.Conditions, catalogv1alpha1.TypeBackupSkipped))
	e.report(t, catalogv1alpha1.GenerateSnapshotName("repo", "bc-daily-2"), catalogv1alpha1.ComponentPhaseFailed)
	require.NoError(t, e.reconcile(t, "bc-daily-2"))
	assert.Equal(t, catalogv1alpha1.BackupSessionFailed, e.get(t, "bc-daily-2").Status.Phase, "its outcome counts")
}

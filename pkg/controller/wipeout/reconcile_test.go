package wipeout

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/backenddirs"
	"kubestash.dev/kubestash/pkg/controller/executor"
	"kubestash.dev/kubestash/pkg/controller/lookup/lookuptest"
	"kubestash.dev/kubestash/pkg/controller/loop"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned/fake"
	"kubestash.dev/kubestash/pkg/layout"
)

// newReconciler is a Reconciler of Repository demo/s3-repo, whose backend
// it returns, reading through informers over fakes that hold kubeObjs.
func newReconciler(t *testing.T, kubeObjs ...*batchv1.Job) (*Reconciler, backend.Backend, *lookuptest.Informed) {
	t.Helper()
	b, err := backend.NewLocal(t.TempDir())
	require.NoError(t, err)
	repo := &catalogv1alpha1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "s3-repo", Namespace: "demo"},
		Spec: catalogv1alpha1.RepositorySpec{
			StorageRef:       kmapi.ObjectReference{Name: "storage"},
			Path:             "/demo/pvc",
			EncryptionSecret: &kmapi.ObjectReference{Name: "encrypt-secret"},
		},
	}
	bs := &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Name: "storage", Namespace: "demo"},
		Spec:       storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderLocal, Local: &storagev1alpha1.LocalSpec{MountPath: "/backup"}}},
	}
	kube := kubefake.NewClientset()
	for _, j := range kubeObjs {
		_, err := kube.BatchV1().Jobs(j.Namespace).Create(context.Background(), j, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	client := fake.NewSimpleClientset(repo, bs)
	informed := lookuptest.NewInformed(t, kube, client)
	informed.Reset() // the fixture's creates are not the reconciler's writes
	return &Reconciler{
		Kube: kube, Client: client, Reads: informed.Reads, RetentionComponent: "kubestash-retention-policy",
		Forget: executor.Forget{Client: client, Kube: kube, Image: "agent:test", ServiceAccount: "kubestash-backup", ClusterRole: "kubestash-backup-job",
			LocalDirs: backenddirs.Policy{Allowed: []string{"/backup"}}},
		OpenBackend: func(context.Context, *storagev1alpha1.BackupStorage) (backend.Backend, error) { return b, nil },
	}, b, informed
}

func mark(t *testing.T, b backend.Backend, name string) {
	t.Helper()
	_, err := layout.AddForgetMark(context.Background(), b, "/demo/pvc", layout.ForgetSnapshot{Name: name, Namespace: "demo", Repository: "s3-repo", UID: name + "-uid"})
	require.NoError(t, err)
}

func jobs(t *testing.T, r *Reconciler) []batchv1.Job {
	t.Helper()
	l, err := r.Kube.BatchV1().Jobs("demo").List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	var out []batchv1.Job
	for _, j := range l.Items {
		if j.Labels[storagev1alpha1.LabelComponent] == JobComponent {
			out = append(out, j)
		}
	}
	return out
}

func TestMarksGetOneJob(t *testing.T) {
	ctx := context.Background()
	r, b, informed := newReconciler(t)

	require.NoError(t, r.Reconcile(ctx, "demo", "s3-repo"))
	assert.Empty(t, jobs(t, r), "no marks, no Job")

	mark(t, b, "snap-1")
	require.NoError(t, r.Reconcile(ctx, "demo", "s3-repo"))
	// The Jobs are listed from the cache alone: it has the new one by the
	// next reconcile, which the Job's creation brings.
	informed.Settle(t)
	assert.ErrorIs(t, r.Reconcile(ctx, "demo", "s3-repo"), loop.ErrRequeue, "its own Job runs")
	got := jobs(t, r)
	require.Len(t, got, 1, "the same marks never get two Jobs")
	job := got[0]
	assert.Equal(t, "s3-repo", job.Labels[LabelRepository])
	assert.NotNil(t, job.Spec.TTLSecondsAfterFinished, "finished clean-up Jobs go by themselves")
	c := job.Spec.Template.Spec.Containers[0]
	assert.Equal(t, []string{"forget", "--namespace=demo", "--repository=s3-repo", "--scratch-dir=" + executor.ForgetScratchDir}, c.Args)
	assert.Equal(t, "kubestash-backup", job.Spec.Template.Spec.ServiceAccountName)
	for _, e := range c.Env {
		assert.Empty(t, e.Value, "Secrets only by reference: %s", e.Name)
	}

	// A second deletion while that Job runs waits for it.
	mark(t, b, "snap-2")
	assert.ErrorIs(t, r.Reconcile(ctx, "demo", "s3-repo"), loop.ErrRequeue)
	// Once it ended, the marks left get a Job of their own.
	job.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	_, err := r.Kube.BatchV1().Jobs("demo").UpdateStatus(ctx, &job, metav1.UpdateOptions{})
	require.NoError(t, err)
	informed.Settle(t)
	require.NoError(t, r.Reconcile(ctx, "demo", "s3-repo"))
	assert.Len(t, jobs(t, r), 2)
}

func TestWaitsForARetentionJob(t *testing.T) {
	ctx := context.Background()
	running := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "retentionpolicy-x", Namespace: "demo",
		Labels: map[string]string{storagev1alpha1.LabelManagedBy: storagev1alpha1.LabelManagedByValue, storagev1alpha1.LabelComponent: "kubestash-retention-policy"}}}
	r, b, informed := newReconciler(t, running)
	mark(t, b, "snap-1")
	assert.ErrorIs(t, r.Reconcile(ctx, "demo", "s3-repo"), loop.ErrRequeue, "the session's retention Job may be forgetting these marks")
	assert.Empty(t, jobs(t, r))
	assert.Empty(t, informed.Writes(), "nothing written")
}

func TestRepositoryGone(t *testing.T) {
	r, _, informed := newReconciler(t)
	assert.NoError(t, r.Reconcile(context.Background(), "demo", "other"))
	assert.Empty(t, informed.Writes(), "nothing written")
}

// A mark younger than MinAge may be a session's retention mark whose
// retention Job is being created: it waits, and gets a Job once old enough.
func TestYoungMarksWait(t *testing.T) {
	ctx := context.Background()
	r, b, informed := newReconciler(t)
	mark(t, b, "snap-1")
	clk := clocktesting.NewFakePassiveClock(time.Now())
	r.MinAge, r.Clock = 30*time.Second, clk

	err := r.Reconcile(ctx, "demo", "s3-repo")
	require.Error(t, err)
	assert.NotErrorIs(t, err, loop.ErrRequeue, "a known wait, not a back-off")
	assert.Contains(t, err.Error(), "requeue after")
	assert.Empty(t, jobs(t, r), "no Job for a mark just written")
	assert.Empty(t, informed.Writes(), "nothing written")

	clk.SetTime(clk.Now().Add(31 * time.Second))
	require.NoError(t, r.Reconcile(ctx, "demo", "s3-repo"))
	assert.Len(t, jobs(t, r), 1, "an old enough mark gets its Job")
}

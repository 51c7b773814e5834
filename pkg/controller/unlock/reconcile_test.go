package unlock

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backenddirs"
	"kubestash.dev/kubestash/pkg/conditions"
	"kubestash.dev/kubestash/pkg/controller/executor"
	"kubestash.dev/kubestash/pkg/controller/lookup/lookuptest"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned/fake"
)

// env is a Reconciler over fakes, reading them through started, synced
// informers as the controller's does.
type env struct {
	*Reconciler
	kube     *kubefake.Clientset
	ks       *fake.Clientset
	informed *lookuptest.Informed
}

// newReconciler is an env with Repository demo/s3-repo, annotated with
// annotations, in a local BackupStorage.
func newReconciler(t *testing.T, annotations map[string]string) *env {
	t.Helper()
	repo := &catalogv1alpha1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "s3-repo", Namespace: "demo", Annotations: annotations},
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
	client := fake.NewSimpleClientset(repo, bs)
	informed := lookuptest.NewInformed(t, kube, client)
	return &env{kube: kube, ks: client, informed: informed, Reconciler: &Reconciler{
		Kube: kube, Client: client, Reads: informed.Reads, Recorder: record.NewFakeRecorder(10),
		Pods: executor.Forget{Client: client, Kube: kube, Image: "agent:test", ServiceAccount: "kubestash-backup", ClusterRole: "kubestash-backup-job",
			LocalDirs: backenddirs.Policy{Allowed: []string{"/backup"}}},
	}}
}

// reconcile reconciles demo/s3-repo once the caches have caught up with
// the fakes, and returns the writes it made to both.
func (e *env) reconcile(t *testing.T) ([]string, error) {
	t.Helper()
	return e.informed.Reconcile(t, func() error { return e.Reconcile(context.Background(), "demo", "s3-repo") })
}

func (r *Reconciler) repo(t *testing.T) *catalogv1alpha1.Repository {
	t.Helper()
	repo, err := r.Client.CatalogV1alpha1().Repositories("demo").Get(context.Background(), "s3-repo", metav1.GetOptions{})
	require.NoError(t, err)
	return repo
}

func (r *Reconciler) jobs(t *testing.T) []batchv1.Job {
	t.Helper()
	l, err := r.Kube.BatchV1().Jobs("demo").List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	return l.Items
}

// end makes job end as the Job controller would, with a pod whose
// container exited with code and message.
func (r *Reconciler) end(t *testing.T, job *batchv1.Job, code int32, message string) {
	t.Helper()
	ctx := context.Background()
	cond := batchv1.JobComplete
	if code != 0 {
		cond, job.Status.Failed = batchv1.JobFailed, 1
	} else {
		job.Status.Succeeded = 1
	}
	job.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue}}
	_, err := r.Kube.BatchV1().Jobs("demo").UpdateStatus(ctx, job, metav1.UpdateOptions{})
	require.NoError(t, err)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-abcde", Namespace: "demo", Labels: map[string]string{batchv1.JobNameLabel: job.Name}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "unlock",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Message: message}}}}},
	}
	_, err = r.Kube.CoreV1().Pods("demo").Create(ctx, pod, metav1.CreateOptions{})
	require.NoError(t, err)
}

func TestUnlockRequestGetsOneJobAndAnAnswer(t *testing.T) {
	ctx := context.Background()
	r := newReconciler(t, map[string]string{catalogv1alpha1.AnnotationUnlockRequest: "t1"})

	writes, err := r.reconcile(t)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "requeue after", "it looks again while the Job runs")
	// The Job and the account it runs as.
	assert.Equal(t, []string{"create serviceaccounts demo/kubestash-backup", "create rolebindings demo/kubestash-backup",
		"create jobs demo/" + catalogv1alpha1.UnlockJobName("s3-repo", "t1")}, writes)
	jobs := r.jobs(t)
	require.Len(t, jobs, 1)
	job := jobs[0]
	assert.Equal(t, catalogv1alpha1.UnlockJobName("s3-repo", "t1"), job.Name)
	assert.Equal(t, JobComponent, job.Labels[storagev1alpha1.LabelComponent])
	c := job.Spec.Template.Spec.Containers[0]
	assert.Equal(t, []string{"unlock", "--namespace=demo", "--repository=s3-repo", "--scratch-dir=" + executor.ForgetScratchDir}, c.Args)
	assert.Equal(t, "kubestash-backup", job.Spec.Template.Spec.ServiceAccountName)
	for _, e := range c.Env {
		assert.Empty(t, e.Value, "Secrets only by reference: %s", e.Name)
	}

	// Running: looked at again, no second Job.
	writes, err = r.reconcile(t)
	require.Error(t, err)
	assert.Empty(t, writes)
	assert.Len(t, r.jobs(t), 1)

	r.end(t, &job, 0, "repository/v1/manual/dump: removed 1 stale lock(s), kept 0 lock(s) of a restic that may still run")
	writes, err = r.reconcile(t)
	require.NoError(t, err)
	// The condition first, then the token as answered.
	assert.Equal(t, []string{"update repositories/status demo/s3-repo", "update repositories demo/s3-repo"}, writes)
	repo := r.repo(t)
	assert.Equal(t, "t1", repo.Annotations[catalogv1alpha1.AnnotationUnlocked], "the request is answered")
	cond := conditions.Get(repo.Status.Conditions, catalogv1alpha1.TypeStaleLocksRemoved)
	require.NotNil(t, cond)
	assert.Equal(t, metav1.ConditionTrue, cond.Status)
	assert.Contains(t, cond.Message, "removed 1 stale lock(s)")

	// Answered: nothing more, whatever happens to the Job.
	require.NoError(t, r.Kube.BatchV1().Jobs("demo").Delete(ctx, job.Name, metav1.DeleteOptions{}))
	writes, err = r.reconcile(t)
	require.NoError(t, err)
	assert.Empty(t, writes)
	assert.Empty(t, r.jobs(t), "an answered request is not run again")
}

func TestUnlockFailureIsTheCondition(t *testing.T) {
	r := newReconciler(t, map[string]string{catalogv1alpha1.AnnotationUnlockRequest: "t2"})
	_, err := r.reconcile(t)
	require.Error(t, err)
	jobs := r.jobs(t)
	require.Len(t, jobs, 1)
	r.end(t, &jobs[0], 1, "repository/v1/manual/dump: wrong password")
	writes, err := r.reconcile(t)
	require.NoError(t, err)
	// A failure answers the request too: it is not run again by itself.
	assert.Equal(t, []string{"update repositories/status demo/s3-repo", "update repositories demo/s3-repo"}, writes)
	repo := r.repo(t)
	cond := conditions.Get(repo.Status.Conditions, catalogv1alpha1.TypeStaleLocksRemoved)
	require.NotNil(t, cond)
	assert.Equal(t, metav1.ConditionFalse, cond.Status)
	assert.Equal(t, catalogv1alpha1.ReasonUnlockFailed, cond.Reason)
	assert.Contains(t, cond.Message, "wrong password")
	assert.Equal(t, "t2", repo.Annotations[catalogv1alpha1.AnnotationUnlocked])
}

// TestNoRequestNoJob: without a request not yet answered, and for a
// Repository that is gone, a reconcile writes nothing.
func TestNoRequestNoJob(t *testing.T) {
	for _, c := range []struct {
		name        string
		annotations map[string]string
		repository  string
	}{
		{name: "no request", repository: "s3-repo"},
		{name: "answered", annotations: map[string]string{catalogv1alpha1.AnnotationUnlockRequest: "t3", catalogv1alpha1.AnnotationUnlocked: "t3"},
			repository: "s3-repo"},
		{name: "a Repository that is gone", repository: "gone"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newReconciler(t, c.annotations)
			require.NoError(t, r.Reconcile(context.Background(), "demo", c.repository))
			assert.Empty(t, r.informed.Writes())
			assert.Empty(t, r.jobs(t))
		})
	}
}

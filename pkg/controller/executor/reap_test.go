package executor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubefake "k8s.io/client-go/kubernetes/fake"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned/fake"
)

func sessionJob(name, claim string, finished bool, uid, repo string) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo", UID: types.UID("job-" + name),
			Labels: map[string]string{catalogv1alpha1.LabelInvokerName: name}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Volumes: []corev1.Volume{{
			Name: "target", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}},
		}}}}},
	}
	if uid != "" {
		Stamp(j, types.UID("uid-session-"+uid), "demo", repo)
	}
	if finished {
		j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	}
	return j
}

func jobNames(t *testing.T, kube *kubefake.Clientset) []string {
	l, err := kube.BatchV1().Jobs("demo").List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	var out []string
	for _, j := range l.Items {
		out = append(out, j.Name)
	}
	return out
}

func TestReap(t *testing.T) {
	repo := &catalogv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "served", Namespace: "demo"}}
	for _, tc := range []struct {
		name        string
		job         *batchv1.Job
		repos       []runtime.Object
		wantKept    bool
		wantPending bool
	}{
		{name: "a finished Job goes", job: sessionJob("s", "data", true, "a", "gone")},
		{name: "a running Job goes when the catalog serves its Repository", job: sessionJob("s", "data", false, "a", "served"), repos: []runtime.Object{repo}},
		{name: "a running Job stays while its Repository is not served (the catalog may not have read the storage)", job: sessionJob("s", "data", false, "a", "gone"), wantKept: true, wantPending: true},
		{name: "a running Job without the stamp stays", job: sessionJob("s", "data", false, "", ""), repos: []runtime.Object{repo}, wantKept: true, wantPending: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kube := kubefake.NewClientset(tc.job, sessionJob("other", "data", true, "b", "served"))
			client := fake.NewClientset(tc.repos...)
			pending, err := Reap(context.Background(), kube, client, "demo", labels.Set{catalogv1alpha1.LabelInvokerName: "s"})
			require.NoError(t, err)
			assert.Equal(t, tc.wantPending, pending)
			if tc.wantKept {
				assert.ElementsMatch(t, []string{"s", "other"}, jobNames(t, kube))
			} else {
				assert.Equal(t, []string{"other"}, jobNames(t, kube), "only the deleted session's Job goes")
			}
		})
	}
}

func TestForSession(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		job     *batchv1.Job
		session string
		wantErr error
	}{
		{name: "the session's own Job", job: sessionJob("s", "data", false, "a", "r"), session: "uid-session-a"},
		{name: "a Job made before the stamp is the session's", job: sessionJob("s", "data", true, "", ""), session: "uid-session-a"},
		{name: "the Job of an earlier session of the name is deleted", job: sessionJob("s", "data", true, "a", "r"), session: "uid-session-new", wantErr: ErrEarlierJob},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kube := kubefake.NewClientset(tc.job)
			got, err := ForSession(ctx, kube, tc.job, types.UID(tc.session))
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				_, gerr := kube.BatchV1().Jobs("demo").Get(ctx, "s", metav1.GetOptions{})
				assert.True(t, apierrors.IsNotFound(gerr), "the earlier Job is deleted: %v", gerr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.job, got)
		})
	}
}

func TestReleaseClaim(t *testing.T) {
	finished := sessionJob("done", "data", true, "a", "r")
	running := sessionJob("running", "data", false, "b", "r")
	elsewhere := sessionJob("elsewhere", "other", true, "c", "r")
	kube := kubefake.NewClientset(finished, running, elsewhere)
	require.NoError(t, ReleaseClaim(context.Background(), kube, []*batchv1.Job{finished, running, elsewhere}, "demo", "data"))
	assert.ElementsMatch(t, []string{"running", "elsewhere"}, jobNames(t, kube),
		"only finished Jobs that mount the claim go; a running one keeps it, as it should")
}

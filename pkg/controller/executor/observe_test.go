package executor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

func TestObserve(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	old := metav1.NewTime(now.Add(-time.Hour))
	job := func(conds ...batchv1.JobConditionType) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "s1", Namespace: "demo", CreationTimestamp: old, UID: "u1"}}
		for _, c := range conds {
			j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: c, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded"})
			if c == batchv1.JobFailed {
				j.Status.Failed = 1
			}
		}
		return j
	}
	pod := func(phase corev1.PodPhase, exit int32, msg string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "s1-abcde", Namespace: "demo", CreationTimestamp: old, Labels: map[string]string{batchv1.JobNameLabel: "s1"}},
			Status: corev1.PodStatus{Phase: phase}}
		if exit != 0 {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "backup", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exit, Message: msg}}}}
		}
		return p
	}
	for _, tc := range []struct {
		name    string
		job     *batchv1.Job
		pod     *corev1.Pod
		w       Watch
		want    Outcome
		deleted bool
	}{
		{name: "running", job: job(), pod: pod(corev1.PodRunning, 0, ""), w: Watch{What: "backup"},
			want: Outcome{}},
		{name: "completed", job: job(batchv1.JobComplete), w: Watch{What: "backup"},
			want: Outcome{Ended: true, Why: "the backup Job completed before reporting every component"}},
		{name: "failed: the pod says why", job: job(batchv1.JobFailed), pod: pod(corev1.PodFailed, 1, "wrong password"), w: Watch{What: "restore"},
			want: Outcome{Ended: true, Why: "the restore Job failed (BackoffLimitExceeded: ): pod s1-abcde container backup: exit code 1: wrong password"}},
		{name: "past the deadline: deleted", job: job(), pod: pod(corev1.PodRunning, 0, ""),
			w:    Watch{What: "backup", Deadline: &old, DeadlineExceeded: "backupTimeout 1h0m0s exceeded"},
			want: Outcome{Ended: true, Why: "backupTimeout 1h0m0s exceeded"}, deleted: true},
		{name: "stuck Pending: deleted", job: job(), pod: pod(corev1.PodPending, 0, ""), w: Watch{What: "backup", PendingTimeout: time.Minute},
			want: Outcome{Ended: true, Stuck: true, Why: "pod s1-abcde has been Pending for 1h0m0s: not scheduled"}, deleted: true},
		{name: "Pending but the work is done", job: job(), pod: pod(corev1.PodPending, 0, ""), w: Watch{What: "restore", PendingTimeout: time.Minute, SkipPending: true},
			want: Outcome{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			kube := kubefake.NewClientset(tc.job)
			if tc.pod != nil {
				_, err := kube.CoreV1().Pods("demo").Create(ctx, tc.pod, metav1.CreateOptions{})
				require.NoError(t, err)
			}
			tc.w.Now = now
			got, err := Observe(ctx, kube, tc.job, tc.w)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			_, err = kube.BatchV1().Jobs("demo").Get(ctx, "s1", metav1.GetOptions{})
			assert.Equal(t, tc.deleted, apierrors.IsNotFound(err), "deleted: %v", err)
		})
	}
}

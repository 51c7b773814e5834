package executor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

func TestExpireFinished(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	session := map[string]string{"session": "s1"}
	job := func(name string, lbls map[string]string, cond batchv1.JobConditionType, finishedAgo time.Duration) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo", Labels: lbls}}
		if cond != "" {
			j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-finishedAgo))}}
		}
		return j
	}
	for _, tc := range []struct {
		name     string
		ttl      time.Duration
		jobs     []*batchv1.Job
		wantLeft []string
		wantWait time.Duration
	}{
		{
			name: "finished long enough ago: deleted",
			ttl:  time.Hour,
			jobs: []*batchv1.Job{job("old", session, batchv1.JobComplete, 2*time.Hour), job("failed", session, batchv1.JobFailed, time.Hour)},
		},
		{
			name:     "finished recently: kept, and the wait says when",
			ttl:      time.Hour,
			jobs:     []*batchv1.Job{job("recent", session, batchv1.JobComplete, 20*time.Minute), job("older", session, batchv1.JobFailed, 50*time.Minute)},
			wantLeft: []string{"recent", "older"},
			wantWait: 10 * time.Minute,
		},
		{
			name:     "running: kept, no wait",
			ttl:      time.Hour,
			jobs:     []*batchv1.Job{job("running", session, "", 0)},
			wantLeft: []string{"running"},
		},
		{
			name:     "another session's Jobs: untouched",
			ttl:      time.Hour,
			jobs:     []*batchv1.Job{job("other", map[string]string{"session": "s2"}, batchv1.JobComplete, 5*time.Hour)},
			wantLeft: []string{"other"},
		},
		{
			name:     "ttl 0 keeps everything",
			ttl:      0,
			jobs:     []*batchv1.Job{job("old", session, batchv1.JobComplete, 100*time.Hour)},
			wantLeft: []string{"old"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			kube := kubefake.NewClientset()
			for _, j := range tc.jobs {
				_, err := kube.BatchV1().Jobs("demo").Create(ctx, j, metav1.CreateOptions{})
				require.NoError(t, err)
			}
			l, err := kube.BatchV1().Jobs("demo").List(ctx, metav1.ListOptions{LabelSelector: labels.Set(session).String()})
			require.NoError(t, err)
			var jobs []*batchv1.Job
			for i := range l.Items {
				jobs = append(jobs, &l.Items[i])
			}
			wait, err := ExpireFinished(ctx, kube, jobs, tc.ttl, now)
			require.NoError(t, err)
			assert.Equal(t, tc.wantWait, wait)
			l, err = kube.BatchV1().Jobs("demo").List(ctx, metav1.ListOptions{})
			require.NoError(t, err)
			var left []string
			for _, j := range l.Items {
				left = append(left, j.Name)
			}
			assert.ElementsMatch(t, tc.wantLeft, left)
		})
	}
}

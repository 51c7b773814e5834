package unlock

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/conditions"
	"kubestash.dev/kubestash/pkg/controller/loop"
)

// TestUnlockLifecycle follows one Repository through the unlock requests
// made of it and the reconciles the controller makes, with the caches
// caught up between them as the controller's are, and checks the writes
// each one makes: one Job a request, one answer, and nothing written while
// nothing changed.
func TestUnlockLifecycle(t *testing.T) {
	ctx := context.Background()
	r := newReconciler(t, nil)
	job := func(token string) string { return catalogv1alpha1.UnlockJobName("s3-repo", token) }
	// request is what `kubectl kubestash unlock` does: a new token.
	request := func(token string) func(t *testing.T) {
		return func(t *testing.T) {
			repo := r.repo(t)
			if repo.Annotations == nil {
				repo.Annotations = map[string]string{}
			}
			repo.Annotations[catalogv1alpha1.AnnotationUnlockRequest] = token
			_, err := r.Client.CatalogV1alpha1().Repositories("demo").Update(ctx, repo, metav1.UpdateOptions{})
			require.NoError(t, err)
		}
	}
	end := func(token string, code int32, message string) func(t *testing.T) {
		return func(t *testing.T) {
			j, err := r.Kube.BatchV1().Jobs("demo").Get(ctx, job(token), metav1.GetOptions{})
			require.NoError(t, err)
			r.end(t, j, code, message)
		}
	}
	for _, step := range []struct {
		name        string
		before      func(t *testing.T)
		wantWrites  []string
		wantRunning bool // it looks again in pollRunning
		wantJobs    []string
		// The answer on the Repository: the token, and the status and
		// words of StaleLocksRemoved ("": none).
		wantUnlocked, wantCondition, wantInMessage string
		wantGone                                   bool // the Repository
	}{
		{name: "no request"},
		{name: "requested", before: request("t1"), wantRunning: true, wantJobs: []string{job("t1")}, wantWrites: []string{
			"create serviceaccounts demo/kubestash-backup", "create rolebindings demo/kubestash-backup", "create jobs demo/" + job("t1")}},
		{name: "Job running", wantRunning: true, wantJobs: []string{job("t1")}},
		{name: "Job succeeded", before: end("t1", 0, "repository/v1/manual/dump: removed 1 stale lock(s)"), wantJobs: []string{job("t1")},
			wantWrites:   []string{"update repositories/status demo/s3-repo", "update repositories demo/s3-repo"},
			wantUnlocked: "t1", wantCondition: "True", wantInMessage: "removed 1 stale lock(s)"},
		{name: "answered", wantJobs: []string{job("t1")}, wantUnlocked: "t1", wantCondition: "True", wantInMessage: "removed 1 stale lock(s)"},
		// The Job goes after its TTL; the answer stays.
		{name: "Job deleted", before: func(t *testing.T) {
			require.NoError(t, r.Kube.BatchV1().Jobs("demo").Delete(ctx, job("t1"), metav1.DeleteOptions{}))
		}, wantUnlocked: "t1", wantCondition: "True", wantInMessage: "removed 1 stale lock(s)"},
		// The account is in place: only the Job.
		{name: "requested again", before: request("t2"), wantRunning: true, wantJobs: []string{job("t2")},
			wantWrites:   []string{"create jobs demo/" + job("t2")},
			wantUnlocked: "t1", wantCondition: "True", wantInMessage: "removed 1 stale lock(s)"},
		{name: "Job failed", before: end("t2", 1, "repository/v1/manual/dump: wrong password"), wantJobs: []string{job("t2")},
			wantWrites:   []string{"update repositories/status demo/s3-repo", "update repositories demo/s3-repo"},
			wantUnlocked: "t2", wantCondition: "False", wantInMessage: "wrong password"},
		{name: "failure answered", wantJobs: []string{job("t2")}, wantUnlocked: "t2", wantCondition: "False", wantInMessage: "wrong password"},
		// A request made while another's Job runs: the newer one gets its
		// Job and is the one answered; the older Job runs to its end.
		{name: "requested a third time", before: request("t3"), wantRunning: true, wantJobs: []string{job("t2"), job("t3")},
			wantWrites:   []string{"create jobs demo/" + job("t3")},
			wantUnlocked: "t2", wantCondition: "False", wantInMessage: "wrong password"},
		{name: "requested a fourth time before the third ended", before: request("t4"), wantRunning: true, wantJobs: []string{job("t2"), job("t3"), job("t4")},
			wantWrites:   []string{"create jobs demo/" + job("t4")},
			wantUnlocked: "t2", wantCondition: "False", wantInMessage: "wrong password"},
		{name: "the third Job ended", before: end("t3", 0, "removed 2 stale lock(s)"), wantRunning: true, wantJobs: []string{job("t2"), job("t3"), job("t4")},
			wantUnlocked: "t2", wantCondition: "False", wantInMessage: "wrong password"},
		{name: "the fourth Job ended", before: end("t4", 0, "removed 0 stale lock(s)"), wantJobs: []string{job("t2"), job("t3"), job("t4")},
			wantWrites:   []string{"update repositories/status demo/s3-repo", "update repositories demo/s3-repo"},
			wantUnlocked: "t4", wantCondition: "True", wantInMessage: "Job " + job("t4") + " completed: removed 0 stale lock(s)"},
		// A Repository being deleted is not unlocked.
		{name: "requested while being deleted", before: func(t *testing.T) {
			request("t5")(t)
			repo := r.repo(t)
			repo.Finalizers = []string{"kubestash.com/cleanup"}
			repo.DeletionTimestamp = &metav1.Time{Time: repo.CreationTimestamp.Time}
			_, err := r.Client.CatalogV1alpha1().Repositories("demo").Update(ctx, repo, metav1.UpdateOptions{})
			require.NoError(t, err)
		}, wantJobs: []string{job("t2"), job("t3"), job("t4")},
			wantUnlocked: "t4", wantCondition: "True", wantInMessage: "removed 0 stale lock(s)"},
		{name: "Repository gone", before: func(t *testing.T) {
			require.NoError(t, r.Client.CatalogV1alpha1().Repositories("demo").Delete(ctx, "s3-repo", metav1.DeleteOptions{}))
		}, wantJobs: []string{job("t2"), job("t3"), job("t4")}, wantGone: true},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.before != nil {
				step.before(t)
			}
			writes, err := r.reconcile(t)
			if step.wantRunning {
				assert.Equal(t, loop.RequeueAfter(pollRunning), err, "looked at again while the Job runs")
			} else {
				assert.NoError(t, err)
			}
			assert.Equal(t, step.wantWrites, writes)
			var jobs []string
			for _, j := range r.jobs(t) {
				jobs = append(jobs, j.Name)
			}
			assert.ElementsMatch(t, step.wantJobs, jobs)
			if step.wantGone {
				return
			}
			repo := r.repo(t)
			assert.Equal(t, step.wantUnlocked, repo.Annotations[catalogv1alpha1.AnnotationUnlocked])
			cond := conditions.Get(repo.Status.Conditions, catalogv1alpha1.TypeStaleLocksRemoved)
			if step.wantCondition == "" {
				assert.Nil(t, cond)
				return
			}
			require.NotNil(t, cond)
			assert.Equal(t, metav1.ConditionStatus(step.wantCondition), cond.Status)
			assert.Contains(t, cond.Message, step.wantInMessage)
		})
	}
}

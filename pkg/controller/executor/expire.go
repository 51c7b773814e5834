package executor

import (
	"context"
	"errors"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"kubestash.dev/kubestash/pkg/controller/loop"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
)

// ExpireFinished deletes, with their pods, those of jobs (a session's)
// that finished at least ttl ago. It is called only for a session
// whose outcome is recorded in the catalog, so nothing is left to read from
// them but their log, which ttl keeps for a while. Jobs still running are
// left alone; wait is how long until the next finished one is due (0:
// none). ttl <= 0 keeps every Job for as long as its session exists.
//
// Kubernetes' own ttlSecondsAfterFinished is not used for these Jobs: it
// would also delete the Job of a session whose outcome the controller has
// not recorded yet (a controller down for longer than ttl), and the session
// would run its backup or restore again.
func ExpireFinished(ctx context.Context, kube kubernetes.Interface, jobs []*batchv1.Job, ttl time.Duration, now time.Time) (wait time.Duration, err error) {
	if ttl <= 0 {
		return 0, nil
	}
	var errs []error
	for _, job := range jobs {
		finished, ok := FinishedAt(job)
		if !ok || job.DeletionTimestamp != nil {
			continue
		}
		if left := finished.Add(ttl).Sub(now); left > 0 {
			if wait == 0 || left < wait {
				wait = left
			}
			continue
		}
		klog.FromContext(ctx).V(1).Info("Deleting a finished Job whose session's outcome is recorded", "job", klog.KObj(job), "finished", finished)
		if err := DeleteJob(ctx, kube, job); err != nil {
			errs = append(errs, err)
		}
	}
	return wait, errors.Join(errs...)
}

// FinishedAt is when job completed or failed; ok is false while it runs.
func FinishedAt(job *batchv1.Job) (t time.Time, ok bool) {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete, batchv1.JobFailed:
			switch {
			case !c.LastTransitionTime.IsZero():
				return c.LastTransitionTime.Time, true
			case job.Status.CompletionTime != nil:
				return job.Status.CompletionTime.Time, true
			default:
				return job.CreationTimestamp.Time, true
			}
		}
	}
	return time.Time{}, false
}

// JobList lists the Jobs of a namespace that a selector matches
// (lookup.Reads.ListJobs).
type JobList func(ctx context.Context, namespace string, selector labels.Selector) ([]*batchv1.Job, error)

// SessionGone is what a session's reconcile does once the session is
// deleted: its Jobs and their pods go (Reap), and loop.ErrRequeue asks to
// look again while a running one waits for proof that the session is gone.
func SessionGone(ctx context.Context, kube kubernetes.Interface, client versioned.Interface, namespace string, jobs labels.Set) error {
	pending, err := Reap(ctx, kube, client, namespace, jobs)
	if err != nil {
		return err
	}
	if pending {
		return loop.ErrRequeue
	}
	return nil
}

// SessionRecorded is what a session's reconcile does once the session's
// outcome is recorded: its finished Jobs are kept for their log for ttl,
// then deleted (ExpireFinished). The error asks to look again when the
// next one is due.
func SessionRecorded(ctx context.Context, kube kubernetes.Interface, list JobList, namespace string, jobs labels.Set, ttl time.Duration, now time.Time) error {
	if ttl <= 0 {
		return nil
	}
	found, err := list(ctx, namespace, labels.SelectorFromSet(jobs))
	if err != nil {
		return fmt.Errorf("list Jobs %s in %s: %w", jobs, namespace, err)
	}
	wait, err := ExpireFinished(ctx, kube, found, ttl, now)
	if err == nil && wait > 0 {
		return loop.RequeueAfter(wait)
	}
	return err
}

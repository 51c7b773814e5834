package executor

import (
	"context"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Watch is how a session watches its Job.
type Watch struct {
	// What the Job does, for messages ("backup", "restore").
	What string
	// Deadline of the session (backupTimeout, restoreTimeout), if any;
	// DeadlineExceeded is the message once it passed.
	Deadline         *metav1.Time
	DeadlineExceeded string
	// PendingTimeout is how long its pod may stay Pending; 0 means
	// DefaultPendingTimeout. SkipPending leaves that check out (the work
	// is reported done).
	PendingTimeout time.Duration
	SkipPending    bool
	Now            time.Time
}

// Outcome is what a session's Job says.
type Outcome struct {
	// Ended is true once nothing more will come from the Job: it
	// finished, the deadline passed or its pod stayed Pending too long.
	Ended bool
	// Why it ended, for the components it left unfinished.
	Why string
	// Stuck is true when its pod stayed Pending too long.
	Stuck bool
}

// Observe is the one place a session's Job is looked at, for backups and
// restores alike: ended (with how its pods failed), past the session's
// deadline, or stuck Pending. A Job past the deadline or stuck is deleted
// with its pods before the outcome is returned: a failed delete is an
// error, and the caller retries before it records anything.
func Observe(ctx context.Context, kube kubernetes.Interface, job *batchv1.Job, w Watch) (Outcome, error) {
	ended, why := Ended(job, w.What)
	if ended {
		if job.Status.Failed > 0 {
			// How the container ended (OOMKilled, a signal, the agent's
			// own message) says more than the Job's backoff limit.
			if pf := PodFailure(ctx, kube, job); pf != "" {
				why += ": " + pf
			}
		}
		return Outcome{Ended: true, Why: why}, nil
	}
	if w.Deadline != nil && w.Now.After(w.Deadline.Time) {
		if err := DeleteJob(ctx, kube, job); err != nil {
			return Outcome{}, err
		}
		return Outcome{Ended: true, Why: w.DeadlineExceeded}, nil
	}
	if w.SkipPending {
		return Outcome{}, nil
	}
	if stuck, msg := Stuck(ctx, kube, job, w.Now, w.PendingTimeout); stuck {
		if err := DeleteJob(ctx, kube, job); err != nil {
			return Outcome{}, err
		}
		return Outcome{Ended: true, Why: msg, Stuck: true}, nil
	}
	return Outcome{}, nil
}

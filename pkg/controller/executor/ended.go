// Package executor builds, observes and retires the Jobs of the
// controller: a session's backup or restore Job (TaskJob, Observe), the
// forget Jobs of retention and wipe-out, what becomes of a session's Jobs
// once it is deleted or its outcome recorded (Reap, ExpireFinished).
package executor

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Ended reports whether a Job has finished, and how, in words for a
// condition's message; what names the Job ("backup", "restore").
func Ended(job *batchv1.Job, what string) (bool, string) {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet:
			return true, fmt.Sprintf("the %s Job completed before reporting every component", what)
		case batchv1.JobFailed, batchv1.JobFailureTarget:
			return true, fmt.Sprintf("the %s Job failed (%s: %s)", what, c.Reason, c.Message)
		}
	}
	return false, ""
}

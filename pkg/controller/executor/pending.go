package executor

import (
	"context"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// DefaultPendingTimeout is how long a Job's pod may stay Pending (not
// scheduled, volumes not attached, image not pulled) before its session is
// failed; upstream's condition PodHasBeenInPendingStateForLongerThanExpected.
const DefaultPendingTimeout = 10 * time.Minute

// PendingTooLong reports whether every pod of job has been Pending for
// longer than limit (and there is at least one), with why in words: the
// scheduler's or the kubelet's reason. A Job with a pod that started is
// never "pending too long". Errors listing pods count as not pending.
func PendingTooLong(ctx context.Context, kube kubernetes.Interface, job *batchv1.Job, now time.Time, limit time.Duration) (bool, string) {
	if limit <= 0 {
		return false, ""
	}
	pods, err := kube.CoreV1().Pods(job.Namespace).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job.Name})
	if err != nil || len(pods.Items) == 0 {
		return false, ""
	}
	var why []string
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodPending || p.DeletionTimestamp != nil || now.Sub(p.CreationTimestamp.Time) <= limit {
			return false, ""
		}
		why = append(why, fmt.Sprintf("pod %s has been Pending for %s: %s", p.Name, now.Sub(p.CreationTimestamp.Time).Round(time.Second), pendingReason(&p)))
	}
	return true, strings.Join(why, "; ")
}

// pendingReason is the most telling reason a pod is Pending.
func pendingReason(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return strings.TrimSpace(c.Reason + " " + c.Message)
		}
	}
	for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return strings.TrimSpace(w.Reason + " " + w.Message)
		}
	}
	if p.Spec.NodeName == "" {
		return "not scheduled"
	}
	return "not started on node " + p.Spec.NodeName
}

// Stuck is PendingTooLong for a Job still running, checked only once the
// Job itself is older than limit so that a healthy session lists no pods.
// A limit of 0 means DefaultPendingTimeout.
func Stuck(ctx context.Context, kube kubernetes.Interface, job *batchv1.Job, now time.Time, limit time.Duration) (bool, string) {
	if limit <= 0 {
		limit = DefaultPendingTimeout
	}
	if now.Sub(job.CreationTimestamp.Time) <= limit || job.Status.Succeeded > 0 || job.Status.Failed > 0 {
		return false, ""
	}
	if job.Status.Ready != nil && *job.Status.Ready > 0 {
		return false, ""
	}
	return PendingTooLong(ctx, kube, job, now, limit)
}

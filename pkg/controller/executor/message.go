package executor

import (
	"context"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// FailureMessage is the termination message of the newest failed
// container of job's pods (the agent writes its error there), "" when
// there is none or the pods cannot be listed: the caller then falls back
// to the Job's own condition.
func FailureMessage(ctx context.Context, kube kubernetes.Interface, job *batchv1.Job) string {
	pods, err := kube.CoreV1().Pods(job.Namespace).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job.Name})
	if err != nil {
		return ""
	}
	var msg string
	var at metav1.Time
	for _, p := range pods.Items {
		for _, c := range p.Status.ContainerStatuses {
			t := c.State.Terminated
			if t == nil || t.ExitCode == 0 || strings.TrimSpace(t.Message) == "" {
				continue
			}
			if msg == "" || at.Before(&t.FinishedAt) {
				msg, at = strings.TrimSpace(t.Message), t.FinishedAt
			}
		}
	}
	return msg
}

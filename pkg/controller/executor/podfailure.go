package executor

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"syscall"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// maxMessage bounds what one container's termination message adds.
const maxMessage = 512

// PodFailure tells how the Pods of a failed Job ended, in words to append
// to Ended's message: for each container that failed, its reason, exit
// code (with the signal, for 128+N) and termination message, where the
// agent writes its error. A Job's own condition only says that the
// backoff limit was reached; this says that the container was OOMKilled,
// or killed by SIGKILL, or why the agent gave up. It returns "" when the
// Pods are gone or tell nothing; errors listing them are not reported
// (the message is a courtesy).
func PodFailure(ctx context.Context, kube kubernetes.Interface, job *batchv1.Job) string {
	var out []string
	for _, p := range jobPods(ctx, kube, job) {
		for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			t := cs.State.Terminated
			if t == nil {
				t = cs.LastTerminationState.Terminated
			}
			if t == nil || t.ExitCode == 0 {
				continue
			}
			out = append(out, fmt.Sprintf("pod %s container %s: %s", p.Name, cs.Name, terminated(t)))
		}
	}
	return strings.Join(out, "; ")
}

// PodSuccess is what the Job's containers that exited 0 wrote as their
// termination message (the agent's summary), one line each; "" when the
// pods are gone or say nothing.
func PodSuccess(ctx context.Context, kube kubernetes.Interface, job *batchv1.Job) string {
	var out []string
	for _, p := range jobPods(ctx, kube, job) {
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil && t.ExitCode == 0 && strings.TrimSpace(t.Message) != "" {
				out = append(out, strings.TrimSpace(t.Message))
			}
		}
	}
	return strings.Join(out, "\n")
}

// jobPods are the pods of job, by name; none when they cannot be listed
// (what is read from them is a courtesy).
func jobPods(ctx context.Context, kube kubernetes.Interface, job *batchv1.Job) []corev1.Pod {
	// The Job controller labels its pods with the Job's name; the
	// selector it sets is the same set, plus the Job's UID.
	selector := batchv1.JobNameLabel + "=" + job.Name
	if job.Spec.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
		if err != nil {
			return nil
		}
		selector = sel.String()
	}
	pods, err := kube.CoreV1().Pods(job.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil
	}
	items := pods.Items
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	return items
}

// terminated is a terminated container's state in words.
func terminated(t *corev1.ContainerStateTerminated) string {
	var b strings.Builder
	if t.Reason != "" {
		b.WriteString(t.Reason + ", ")
	}
	fmt.Fprintf(&b, "exit code %d", t.ExitCode)
	if t.Signal != 0 {
		fmt.Fprintf(&b, " (signal %d, %v)", t.Signal, syscall.Signal(t.Signal))
	} else if t.ExitCode > 128 && t.ExitCode < 128+65 {
		fmt.Fprintf(&b, " (signal %d, %v)", t.ExitCode-128, syscall.Signal(t.ExitCode-128))
	}
	if msg := strings.TrimSpace(t.Message); msg != "" {
		if len(msg) > maxMessage {
			msg = msg[:maxMessage] + "…"
		}
		b.WriteString(": " + msg)
	}
	return b.String()
}

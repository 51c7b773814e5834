package executor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

func pod(name, job string, cs ...corev1.ContainerStatus) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo", Labels: map[string]string{"batch.kubernetes.io/job-name": job}},
		Status:     corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: cs},
	}
}

func TestPodFailure(t *testing.T) {
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "backup-1", Namespace: "demo"},
		Spec:       batchv1.JobSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/job-name": "backup-1"}}},
	}
	kube := kubefake.NewSimpleClientset(
		pod("backup-1-a", "backup-1", corev1.ContainerStatus{Name: "logical-backup", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}}}),
		pod("backup-1-b", "backup-1", corev1.ContainerStatus{Name: "logical-backup", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", Message: "restic backup: backend unreachable\n"}}}),
		pod("other", "backup-2", corev1.ContainerStatus{Name: "logical-backup", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: 2}}}),
	)
	assert.Equal(t, "pod backup-1-a container logical-backup: OOMKilled, exit code 137 (signal 9, killed); "+
		"pod backup-1-b container logical-backup: Error, exit code 1: restic backup: backend unreachable",
		PodFailure(context.Background(), kube, job))

	assert.Empty(t, PodFailure(context.Background(), kubefake.NewSimpleClientset(), job), "pods gone")
	assert.Empty(t, PodFailure(context.Background(), kube, &batchv1.Job{}), "no selector")
}

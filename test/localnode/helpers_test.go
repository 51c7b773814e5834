package localnode

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

const managedBy = "app.kubernetes.io/managed-by"

func needEnv(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a control plane")
	}
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newNamespace creates a namespace and waits for its default
// ServiceAccount, without which pods are refused. Namespaces are not
// deleted: the control plane goes at the end of the package.
func newNamespace(ctx context.Context, t *testing.T) string {
	t.Helper()
	ns, err := env.KubeClient.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "ln-"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := env.KubeClient.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	}, time.Minute, 200*time.Millisecond, "default ServiceAccount of %s", ns.Name)
	return ns.Name
}

// hostPathClaim creates a hostPath PV on a fresh folder and a PVC bound to
// it by the real PV binder; it returns the claim name and the folder.
func hostPathClaim(ctx context.Context, t *testing.T, ns string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "ln-pv-"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              "",
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}},
		},
	}
	pv, err := env.KubeClient.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	require.NoError(t, err)
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			StorageClassName: ptr.To(""),
			VolumeName:       pv.Name,
		},
	}
	_, err = env.KubeClient.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{})
	require.NoError(t, err)
	return pvc.Name, dir
}

// shellJob is a Job of this project (the label the node selects) whose one
// container runs script with the busybox image, mapped to /bin/sh.
func shellJob(ns, name, script string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{managedBy: "kubestash.com"}},
				Spec: corev1.PodSpec{
					RestartPolicy:                 corev1.RestartPolicyNever,
					TerminationGracePeriodSeconds: ptr.To[int64](2),
					Containers: []corev1.Container{{
						Name: "main", Image: "busybox:1.36",
						Args: []string{"-c", script},
					}},
				},
			},
		},
	}
}

func createJob(ctx context.Context, t *testing.T, job *batchv1.Job) *batchv1.Job {
	t.Helper()
	job, err := env.KubeClient.BatchV1().Jobs(job.Namespace).Create(ctx, job, metav1.CreateOptions{})
	require.NoError(t, err)
	return job
}

// waitJob waits for a Job condition (Complete or Failed) and fails the test
// on the other one.
func waitJob(ctx context.Context, t *testing.T, ns, name string, want batchv1.JobConditionType) *batchv1.Job {
	t.Helper()
	var job *batchv1.Job
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var err error
		job, err = env.KubeClient.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		require.NoError(c, err)
		for _, cond := range job.Status.Conditions {
			if cond.Status != corev1.ConditionTrue {
				continue
			}
			if (cond.Type == batchv1.JobComplete || cond.Type == batchv1.JobFailed) && cond.Type != want {
				t.Errorf("job %s/%s ended %s, not %s: %s %s", ns, name, cond.Type, want, cond.Reason, cond.Message)
				return
			}
			if cond.Type == want {
				return
			}
		}
		c.Errorf("job %s/%s has no condition %s yet: %+v", ns, name, want, job.Status)
	}, 2*time.Minute, 250*time.Millisecond)
	return job
}

// jobPods lists the pods of a Job.
func jobPods(ctx context.Context, t require.TestingT, ns, job string) []corev1.Pod {
	pods, err := env.KubeClient.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job})
	require.NoError(t, err)
	return pods.Items
}

// runningPod waits for the single pod of a Job to run its container and
// returns it with the container's pid.
func runningPod(ctx context.Context, t *testing.T, n *Node, ns, job string) (corev1.Pod, int) {
	t.Helper()
	var pod corev1.Pod
	var pid int
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		pods := jobPods(ctx, c, ns, job)
		require.Len(c, pods, 1)
		pod = pods[0]
		require.Equal(c, corev1.PodRunning, pod.Status.Phase)
		pid = n.Pids(ns, pod.Name)["main"]
		require.NotZero(c, pid)
	}, time.Minute, 200*time.Millisecond)
	return pod, pid
}

// waitPod waits until cond holds for a pod and returns it.
func waitPod(ctx context.Context, t *testing.T, ns, name string, cond func(*corev1.Pod) bool, msg string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var err error
		pod, err = env.KubeClient.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		require.NoError(c, err)
		require.True(c, cond(pod), "%s: pod status %+v", msg, pod.Status)
	}, 2*time.Minute, 200*time.Millisecond)
	return pod
}

func readLog(t *testing.T, n *Node, ns, pod, container string) string {
	t.Helper()
	b, err := os.ReadFile(n.LogPath(ns, pod, container))
	require.NoError(t, err)
	return string(b)
}

// processesOf lists the live processes started by n (for the named pod when
// pod is not empty), found by the variables every container process
// inherits. Zombies have no environment and are not listed. Other test
// packages run nodes of the same name at the same time: the instance, not
// the name, tells them apart.
func processesOf(n *Node, pod string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		vars := bytes.Split(b, []byte{0})
		mine, ofPod := false, pod == ""
		for _, v := range vars {
			s := string(v)
			if s == EnvNodeInstance+"="+n.Instance() {
				mine = true
			}
			if pod != "" && s == "HOSTNAME="+pod {
				ofPod = true
			}
		}
		if mine && ofPod {
			pids = append(pids, pid)
		}
	}
	return pids
}

func requireNoProcesses(t *testing.T, n *Node, pod string) {
	t.Helper()
	require.Eventually(t, func() bool { return len(processesOf(n, pod)) == 0 }, 10*time.Second, 100*time.Millisecond,
		"processes of pod %q on node %s remain: %v", pod, n.Name(), processesOf(n, pod))
}

func terminated(s corev1.ContainerStatus) *corev1.ContainerStateTerminated {
	if s.State.Terminated == nil {
		return &corev1.ContainerStateTerminated{ExitCode: -1, Reason: "not terminated: " + strings.TrimSpace(s.State.String())}
	}
	return s.State.Terminated
}

package localnode

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
)

// A Job's pod is bound, its init container runs before its container, an
// emptyDir is shared between them and the PVC is the hostPath of its PV;
// the real Job controller completes the Job.
func TestJobWritesIntoTheClaimsVolume(t *testing.T) {
	needEnv(t)
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	ns := newNamespace(ctx, t)
	claim, dir := hostPathClaim(ctx, t, ns)

	job := shellJob(ns, "write", `cat "$KUBESTASH_ROOT/scratch/from-init" > "$KUBESTASH_ROOT/data/out" && echo hi >> "$KUBESTASH_ROOT/data/out" && echo done; exit 0`)
	spec := &job.Spec.Template.Spec
	spec.Volumes = []corev1.Volume{
		{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	mounts := []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "scratch", MountPath: "/scratch"}}
	spec.Containers[0].VolumeMounts = mounts
	spec.InitContainers = []corev1.Container{{
		Name: "init", Image: "busybox", VolumeMounts: mounts,
		Command: []string{"/bin/sh", "-c", `echo init > "$KUBESTASH_ROOT/scratch/from-init"`},
	}}
	createJob(ctx, t, job)
	waitJob(ctx, t, ns, "write", batchv1.JobComplete)

	b, err := os.ReadFile(filepath.Join(dir, "out"))
	require.NoError(t, err)
	assert.Equal(t, "init\nhi\n", string(b), "the init container ran first, the PV's folder got the file")

	pods := jobPods(ctx, t, ns, "write")
	require.Len(t, pods, 1)
	pod := pods[0]
	assert.Equal(t, node.Name(), pod.Spec.NodeName)
	assert.Equal(t, corev1.PodSucceeded, pod.Status.Phase)
	assert.Equal(t, "127.0.0.1", pod.Status.PodIP)
	require.NotNil(t, pod.Status.StartTime)
	require.Len(t, pod.Status.InitContainerStatuses, 1)
	require.Len(t, pod.Status.ContainerStatuses, 1)
	initTerm, mainTerm := terminated(pod.Status.InitContainerStatuses[0]), terminated(pod.Status.ContainerStatuses[0])
	assert.Equal(t, int32(0), mainTerm.ExitCode)
	assert.Equal(t, "Completed", mainTerm.Reason)
	assert.False(t, mainTerm.StartedAt.Before(&initTerm.FinishedAt), "init ended before main started")
	assert.Equal(t, "done\n", readLog(t, node, ns, pod.Name, "main"))
	conds := map[corev1.PodConditionType]corev1.ConditionStatus{}
	for _, c := range pod.Status.Conditions {
		conds[c.Type] = c.Status
	}
	assert.Equal(t, corev1.ConditionTrue, conds[corev1.PodScheduled])
	assert.Equal(t, corev1.ConditionTrue, conds[corev1.PodInitialized])
	assert.Equal(t, corev1.ConditionFalse, conds[corev1.PodReady], "a completed pod is not ready")
}

// A failing command fails the pod with its exit code and, with
// FallbackToLogsOnError, the end of its log as the message; backoffLimit 0
// fails the Job.
func TestFailingCommandFailsTheJob(t *testing.T) {
	needEnv(t)
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	ns := newNamespace(ctx, t)
	job := shellJob(ns, "fail", `echo "cannot open repository" >&2; exit 3`)
	job.Spec.Template.Spec.Containers[0].TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	createJob(ctx, t, job)
	waitJob(ctx, t, ns, "fail", batchv1.JobFailed)

	pods := jobPods(ctx, t, ns, "fail")
	require.Len(t, pods, 1, "backoffLimit 0: no second pod")
	assert.Equal(t, corev1.PodFailed, pods[0].Status.Phase)
	term := terminated(pods[0].Status.ContainerStatuses[0])
	assert.Equal(t, int32(3), term.ExitCode)
	assert.Equal(t, "Error", term.Reason)
	assert.Equal(t, "cannot open repository", term.Message)
}

// env with values, secretKeyRef, configMapKeyRef, fieldRef and $(VAR)
// references, and envFrom, reach the process; so do the service variables.
func TestEnvironment(t *testing.T) {
	needEnv(t)
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	ns := newNamespace(ctx, t)
	_, err := env.KubeClient.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "restic"}, StringData: map[string]string{"RESTIC_PASSWORD": "s3cret"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = env.KubeClient.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"mode": "fast", "level": "3"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	job := shellJob(ns, "env", `echo "password=$PASSWORD ref=$REF mode=$MODE cm_level=$CM_level pod=$POD ns=$NS node=$NODE ip=$IP"; echo "api=$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"`)
	c := &job.Spec.Template.Spec.Containers[0]
	c.EnvFrom = []corev1.EnvFromSource{{Prefix: "CM_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}}
	c.Env = []corev1.EnvVar{
		{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "restic"}, Key: "RESTIC_PASSWORD"}}},
		{Name: "REF", Value: "[$(PASSWORD)] $(UNDEFINED) $$(PASSWORD)"},
		{Name: "MODE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "mode"}}},
		{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
		{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "OPTIONAL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Key: "k", Optional: ptr.To(true)}}},
	}
	createJob(ctx, t, job)
	waitJob(ctx, t, ns, "env", batchv1.JobComplete)

	pod := jobPods(ctx, t, ns, "env")[0]
	want := "password=s3cret ref=[s3cret] $(UNDEFINED) $(PASSWORD) mode=fast cm_level=3 pod=" + pod.Name + " ns=" + ns + " node=" + node.Name() + " ip=127.0.0.1\n" +
		"api=" + node.apiHost + ":" + node.apiPort + "\n"
	assert.Equal(t, want, readLog(t, node, ns, pod.Name, "main"))
}

// A program built on pkg/pathmap gets a working in-cluster client from the
// projected ServiceAccount token the admission plugin added to the pod: it
// acts as the pod's ServiceAccount, with that account's rights only.
func TestInClusterClient(t *testing.T) {
	needEnv(t)
	t.Parallel()
	ctx := testContext(t, 5*time.Minute)
	build := exec.CommandContext(ctx, "go", "build", "-o", helperBin, "./testdata/incluster")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build the helper: %s", out)

	ns := newNamespace(ctx, t)
	_, err = env.KubeClient.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "read-configmaps"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = env.KubeClient.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "read-configmaps"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "read-configmaps"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "default", Namespace: ns}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	job := shellJob(ns, "incluster", "")
	c := &job.Spec.Template.Spec.Containers[0]
	c.Image, c.Args = "ghcr.io/kubestash/agent:test", nil // the image rule runs the helper
	c.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	createJob(ctx, t, job)
	waitJob(ctx, t, ns, "incluster", batchv1.JobComplete)

	pod := jobPods(ctx, t, ns, "incluster")[0]
	log := readLog(t, node, ns, pod.Name, "main")
	assert.Contains(t, log, "user=system:serviceaccount:"+ns+":default\n")
	assert.Contains(t, log, "configmap=kube-root-ca.crt\n", "it listed its namespace's ConfigMaps")
	assert.Contains(t, log, "secrets forbidden=true\n", "and has no more rights than its ServiceAccount")
}

// Deleting a running Job's pod stops its process group (the shell and its
// child) within the grace period, and the deletion completes.
func TestDeletingThePodKillsItsProcesses(t *testing.T) {
	needEnv(t)
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	ns := newNamespace(ctx, t)
	createJob(ctx, t, shellJob(ns, "sleeper", `sleep 300 & sleep 301; wait`))
	pod, pid := runningPod(ctx, t, node, ns, "sleeper")
	require.Eventually(t, func() bool { return len(processesOf(node, pod.Name)) >= 3 }, 10*time.Second, 100*time.Millisecond, "the shell and its two sleeps run")

	require.NoError(t, env.KubeClient.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](1)}))
	requireNoProcesses(t, node, pod.Name)
	// The node reaps the killed shell right after it exits: a zombie may
	// linger for a moment.
	require.Eventually(t, func() bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }, 10*time.Second, 50*time.Millisecond,
		"the shell is reaped")
	require.Eventually(t, func() bool {
		_, err := env.KubeClient.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		return err != nil
	}, time.Minute, 200*time.Millisecond, "the pod's deletion completes, as a kubelet confirms it")
	waitJob(ctx, t, ns, "sleeper", batchv1.JobFailed)
}

// A process killed from outside ends its pod Failed with 128+signal.
func TestKilledProcessFailsThePod(t *testing.T) {
	needEnv(t)
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	ns := newNamespace(ctx, t)
	createJob(ctx, t, shellJob(ns, "victim", `sleep 300`))
	pod, pid := runningPod(ctx, t, node, ns, "victim")
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	waitJob(ctx, t, ns, "victim", batchv1.JobFailed)

	got := waitPod(ctx, t, ns, pod.Name, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed }, "pod failed")
	term := terminated(got.Status.ContainerStatuses[0])
	assert.Equal(t, int32(137), term.ExitCode)
	assert.Equal(t, int32(syscall.SIGKILL), term.Signal)
	requireNoProcesses(t, node, pod.Name)
}

// Pods run at the same time.
func TestParallelPods(t *testing.T) {
	needEnv(t)
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	ns := newNamespace(ctx, t)
	job := shellJob(ns, "wide", `sleep 4`)
	job.Spec.Parallelism, job.Spec.Completions = ptr.To[int32](3), ptr.To[int32](3)
	createJob(ctx, t, job)
	waitJob(ctx, t, ns, "wide", batchv1.JobComplete)

	pods := jobPods(ctx, t, ns, "wide")
	require.Len(t, pods, 3)
	var lastStart, firstEnd time.Time
	for _, p := range pods {
		term := terminated(p.Status.ContainerStatuses[0])
		if lastStart.IsZero() || term.StartedAt.Time.After(lastStart) {
			lastStart = term.StartedAt.Time
		}
		if firstEnd.IsZero() || term.FinishedAt.Time.Before(firstEnd) {
			firstEnd = term.FinishedAt.Time
		}
	}
	assert.True(t, lastStart.Before(firstEnd), "all three ran at once: last start %s, first end %s", lastStart, firstEnd)
}

// A pod with restartPolicy OnFailure is restarted in place until it
// succeeds; activeDeadlineSeconds ends a pod that runs too long. Bare pods
// that name the node are run without binding.
func TestRestartAndDeadline(t *testing.T) {
	needEnv(t)
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	ns := newNamespace(ctx, t)
	pods := env.KubeClient.CoreV1().Pods(ns)

	retry := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "retry"},
		Spec: corev1.PodSpec{
			NodeName: node.Name(), RestartPolicy: corev1.RestartPolicyOnFailure,
			Volumes: []corev1.Volume{{Name: "state", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			Containers: []corev1.Container{{
				Name: "main", Image: "busybox", Command: []string{"sh", "-c"},
				Args:         []string{`f="$KUBESTASH_ROOT/state/runs"; n=$(cat "$f" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$f"; echo run $n; [ $n -ge 2 ]`},
				VolumeMounts: []corev1.VolumeMount{{Name: "state", MountPath: "/state"}},
			}},
		},
	}
	_, err := pods.Create(ctx, retry, metav1.CreateOptions{})
	require.NoError(t, err)
	slow := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "slow"},
		Spec: corev1.PodSpec{
			NodeName: node.Name(), RestartPolicy: corev1.RestartPolicyNever,
			ActiveDeadlineSeconds: ptr.To[int64](2), TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers: []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"sleep", "300"}}},
		},
	}
	_, err = pods.Create(ctx, slow, metav1.CreateOptions{})
	require.NoError(t, err)

	got := waitPod(ctx, t, ns, "retry", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded }, "retry succeeds")
	assert.Equal(t, int32(1), got.Status.ContainerStatuses[0].RestartCount)
	assert.Equal(t, int32(1), terminated(corev1.ContainerStatus{State: got.Status.ContainerStatuses[0].LastTerminationState}).ExitCode)
	assert.Equal(t, "run 1\nrun 2\n", readLog(t, node, ns, "retry", "main"))

	got = waitPod(ctx, t, ns, "slow", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed }, "deadline")
	assert.Equal(t, "DeadlineExceeded", got.Status.Reason)
	requireNoProcesses(t, node, "slow")
}

// The real CronJob controller creates a Job every minute; the node runs its
// pod to completion. This takes up to a minute and a bit.
func TestCronJob(t *testing.T) {
	needEnv(t)
	t.Parallel()
	ctx := testContext(t, 4*time.Minute)
	ns := newNamespace(ctx, t)
	job := shellJob(ns, "", `echo tick`)
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "tick", Namespace: ns},
		Spec: batchv1.CronJobSpec{
			Schedule:          "* * * * *",
			ConcurrencyPolicy: batchv1.ForbidConcurrent,
			JobTemplate:       batchv1.JobTemplateSpec{Spec: job.Spec},
		},
	}
	_, err := env.KubeClient.BatchV1().CronJobs(ns).Create(ctx, cj, metav1.CreateOptions{})
	require.NoError(t, err)

	var name string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		jobs, err := env.KubeClient.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
		require.NoError(c, err)
		for _, j := range jobs.Items {
			for _, cond := range j.Status.Conditions {
				if cond.Type == batchv1.JobComplete && cond.Status == corev1.ConditionTrue {
					name = j.Name
					return
				}
			}
		}
		c.Errorf("no completed Job of the CronJob yet (%d jobs)", len(jobs.Items))
	}, 150*time.Second, time.Second)
	// Stop it here: the package's other tests do not need a Job a minute.
	_, err = env.KubeClient.BatchV1().CronJobs(ns).Patch(ctx, "tick", "application/merge-patch+json", []byte(`{"spec":{"suspend":true}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	pod := jobPods(ctx, t, ns, name)[0]
	assert.Equal(t, "tick\n", readLog(t, node, ns, pod.Name, "main"))
}

// Stopping a node kills every process group it started, grandchildren
// included, and fails its pods as a kubelet's graceful shutdown does. This
// node has its own name and selector, so it also shows both are
// configurable and that the shared node leaves its pods alone.
func TestStopKillsEverything(t *testing.T) {
	needEnv(t)
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	ns := newNamespace(ctx, t)
	const name = "local-node-stop"
	n, err := New(env.Config, Options{
		NodeName: name, Selector: labels.SelectorFromSet(labels.Set{"test": "stop"}),
		WorkDir: t.TempDir(), ShutdownGrace: time.Second,
	})
	require.NoError(t, err)
	nodeCtx, stop := context.WithCancel(context.Background())
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- n.Run(nodeCtx) }()
	select {
	case <-n.Ready():
	case err := <-runErr:
		t.Fatalf("node ended: %v", err)
	case <-ctx.Done():
		t.Fatal("node not ready")
	}

	// One pod to bind by label, one that names the node.
	byLabel := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "by-label", Labels: map[string]string{"test": "stop"}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			// Ignores SIGTERM: only SIGKILL after the grace ends it.
			Containers: []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"/bin/sh", "-c", `trap "" TERM; sleep 300 & sleep 301 & wait`}}},
		},
	}
	byName := byLabel.DeepCopy()
	byName.Name, byName.Labels, byName.Spec.NodeName = "by-name", nil, name
	for _, p := range []*corev1.Pod{byLabel, byName} {
		_, err := env.KubeClient.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	for _, p := range []string{"by-label", "by-name"} {
		got := waitPod(ctx, t, ns, p, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }, "running")
		assert.Equal(t, name, got.Spec.NodeName)
	}
	require.Eventually(t, func() bool { return len(processesOf(n, "")) >= 6 }, 10*time.Second, 100*time.Millisecond)

	stop()
	select {
	case err := <-runErr:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("Run did not return after its context ended")
	}
	assert.Empty(t, processesOf(n, ""), "no process survives the node")
	for _, p := range []string{"by-label", "by-name"} {
		got, err := env.KubeClient.CoreV1().Pods(ns).Get(ctx, p, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, corev1.PodFailed, got.Status.Phase, p)
		assert.Equal(t, "Terminated", got.Status.Reason, p)
		assert.Equal(t, int32(137), terminated(got.Status.ContainerStatuses[0]).ExitCode, "%s: SIGKILL after the grace", p)
	}
	nd, err := env.KubeClient.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	for _, c := range nd.Status.Conditions {
		if c.Type == corev1.NodeReady {
			assert.Equal(t, corev1.ConditionFalse, c.Status, "a stopped node is not Ready")
		}
	}
}

// The shared node is Ready and holds its Lease.
func TestNodeRegistered(t *testing.T) {
	needEnv(t)
	t.Parallel()
	ctx := testContext(t, time.Minute)
	nd, err := env.KubeClient.CoreV1().Nodes().Get(ctx, node.Name(), metav1.GetOptions{})
	require.NoError(t, err)
	ready := false
	for _, c := range nd.Status.Conditions {
		ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
	}
	assert.True(t, ready, "node Ready: %+v", nd.Status.Conditions)
	assert.False(t, nd.Status.Allocatable.Pods().IsZero())
	assert.False(t, nd.Status.Capacity.Cpu().IsZero())
	lease, err := env.KubeClient.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, node.Name(), metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, node.Name(), ptr.Deref(lease.Spec.HolderIdentity, ""))
	assert.WithinDuration(t, time.Now(), lease.Spec.RenewTime.Time, 30*time.Second)
}

// Deleting a Job lets the garbage collector delete its pod, which stops the
// pod's processes.
func TestDeletingTheJobKillsItsProcesses(t *testing.T) {
	needEnv(t)
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	ns := newNamespace(ctx, t)
	createJob(ctx, t, shellJob(ns, "doomed", `sleep 300`))
	pod, _ := runningPod(ctx, t, node, ns, "doomed")
	require.NoError(t, env.KubeClient.BatchV1().Jobs(ns).Delete(ctx, "doomed", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}))
	requireNoProcesses(t, node, pod.Name)
	require.Eventually(t, func() bool {
		_, err := env.KubeClient.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		return err != nil
	}, time.Minute, 200*time.Millisecond, "the pod goes with its Job")
}

// A node that comes back finds the pods an earlier run of it was running:
// their processes died with it, so they fail instead of staying Running.
func TestRestartedNodeFailsOrphans(t *testing.T) {
	needEnv(t)
	t.Parallel()
	ctx := testContext(t, 2*time.Minute)
	ns := newNamespace(ctx, t)
	const name = "local-node-restarted"
	pod, err := env.KubeClient.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan"},
		Spec: corev1.PodSpec{
			NodeName: name, RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"sleep", "300"}}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	// What the earlier run had written.
	now := metav1.Now()
	pod.Status.Phase, pod.Status.StartTime = corev1.PodRunning, &now
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: "main", Image: "busybox", Ready: true, Started: ptr.To(true),
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
	}}
	_, err = env.KubeClient.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	require.NoError(t, err)

	n, err := New(env.Config, Options{NodeName: name, Selector: labels.Nothing(), WorkDir: t.TempDir()})
	require.NoError(t, err)
	nodeCtx, stop := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- n.Run(nodeCtx) }()
	defer func() {
		stop()
		require.NoError(t, <-runErr)
	}()

	got := waitPod(ctx, t, ns, "orphan", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed }, "orphan failed")
	assert.Equal(t, "NodeRestarted", got.Status.Reason)
	assert.Equal(t, "ContainerStatusUnknown", terminated(got.Status.ContainerStatuses[0]).Reason)
	assert.Empty(t, processesOf(n, ""), "it was not started again")
}

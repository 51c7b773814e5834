package localnode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"kubestash.dev/kubestash/pkg/pathmap"
)

// killReason says why a pod's processes are being stopped; it decides the
// pod's final status.
type killReason int

const (
	killNone     killReason = iota
	killDeleted             // the pod is being deleted gracefully
	killDeadline            // activeDeadlineSeconds passed
	killShutdown            // the local node stops
	killGone                // the pod is no longer in the API: no status to write
)

// podWorker runs one pod, from its volumes to its final status. The sync
// loop only starts it and asks it to stop; everything else happens on the
// worker's goroutines, so a slow process never blocks the queue.
type podWorker struct {
	n               *Node
	uid             types.UID
	namespace, name string
	dir             string
	done            chan struct{}

	mu       sync.Mutex
	pod      *corev1.Pod
	reason   killReason
	killCh   chan struct{} // closed by the first kill request
	hardKill chan struct{} // closed when the grace period is over
	hardOnce sync.Once
	procs    map[string]*proc
	// Status kept by the worker and published whole.
	started       metav1.Time
	volumesReady  bool
	initDone      bool
	phase         corev1.PodPhase
	podReason     string
	podMessage    string
	initStatuses  []corev1.ContainerStatus
	statuses      []corev1.ContainerStatus
	disruptionMsg string

	publishMu sync.Mutex
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

// syncPod reconciles one pod of this node with its worker.
func (n *Node) syncPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := n.assigned.Pods(ns).Get(name)
	if err != nil && !isNotFound(err) {
		return err
	}
	if isNotFound(err) {
		pod = nil
	}

	n.mu.Lock()
	var w *podWorker
	var stale []*podWorker
	for _, x := range n.workers {
		if x.namespace != ns || x.name != name {
			continue
		}
		if pod != nil && x.uid == pod.UID {
			w = x
		} else {
			stale = append(stale, x)
		}
	}
	for _, x := range stale {
		// The pod is gone from the API (force-deleted, or deleted once
		// its final status was written): stop what remains, clean up.
		delete(n.workers, x.uid)
		x.kill(time.Second, killGone)
		go x.cleanup()
	}
	if pod == nil {
		n.mu.Unlock()
		return nil
	}
	if w != nil {
		w.update(pod)
		n.mu.Unlock()
		if pod.DeletionTimestamp == nil {
			return nil
		}
		select {
		case <-w.done:
			// Ended before or while the deletion came: confirm it.
			return n.deleteNow(ctx, pod)
		default:
		}
		w.kill(time.Duration(ptr.Deref(pod.DeletionGracePeriodSeconds, 0))*time.Second, killDeleted)
		// Look again once it has ended, whatever it decided meanwhile.
		go func() {
			<-w.done
			n.syncQueue.Add(key)
		}()
		return nil
	}
	terminal := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	switch {
	case pod.DeletionTimestamp != nil:
		// Nothing of it runs here: finish the deletion, as a kubelet
		// confirms it for a pod it has stopped.
		n.mu.Unlock()
		return n.deleteNow(ctx, pod)
	case terminal:
		n.mu.Unlock()
		return nil
	case pod.Status.StartTime != nil:
		// Started by an earlier run of this node: its processes died
		// with it.
		n.mu.Unlock()
		return n.failOrphan(ctx, pod)
	}
	select {
	case <-n.shutdown:
		n.mu.Unlock()
		return errStopped
	default:
	}
	w = newPodWorker(n, pod)
	n.workers[pod.UID] = w
	n.wg.Add(1)
	n.mu.Unlock()
	go w.run(klog.NewContext(context.WithoutCancel(ctx), klog.FromContext(ctx).WithValues("pod", klog.KObj(pod))))
	return nil
}

// deleteNow completes a graceful deletion once nothing of the pod runs.
func (n *Node) deleteNow(ctx context.Context, pod *corev1.Pod) error {
	err := n.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !isNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("complete deletion of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// failOrphan ends a pod whose processes an earlier run of the node started.
func (n *Node) failOrphan(ctx context.Context, pod *corev1.Pod) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := n.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil || cur.UID != pod.UID {
			return nil
		}
		cur.Status.Phase = corev1.PodFailed
		cur.Status.Reason = "NodeRestarted"
		cur.Status.Message = "the local node restarted while the pod ran; its processes are gone"
		now := metav1.Now()
		for _, list := range [][]corev1.ContainerStatus{cur.Status.InitContainerStatuses, cur.Status.ContainerStatuses} {
			for i := range list {
				if list[i].State.Terminated == nil {
					list[i].State = unknownTermination(now)
					list[i].Ready, list[i].Started = false, ptr.To(false)
				}
			}
		}
		_, err = n.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

func unknownTermination(now metav1.Time) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: 137, Reason: "ContainerStatusUnknown", FinishedAt: now,
		Message: "The container could not be located when the pod was terminated",
	}}
}

func newPodWorker(n *Node, pod *corev1.Pod) *podWorker {
	w := &podWorker{
		n: n, uid: pod.UID, namespace: pod.Namespace, name: pod.Name,
		dir:  filepath.Join(n.o.WorkDir, "pods", pod.Namespace+"_"+pod.Name+"_"+string(pod.UID)),
		done: make(chan struct{}), pod: pod.DeepCopy(),
		killCh: make(chan struct{}), hardKill: make(chan struct{}), procs: map[string]*proc{},
		phase: corev1.PodPending,
	}
	waiting := "ContainerCreating"
	if len(pod.Spec.InitContainers) > 0 {
		waiting = "PodInitializing"
	}
	for _, c := range pod.Spec.InitContainers {
		w.initStatuses = append(w.initStatuses, waitingStatus(c, "PodInitializing", ""))
	}
	for _, c := range pod.Spec.Containers {
		w.statuses = append(w.statuses, waitingStatus(c, waiting, ""))
	}
	return w
}

func waitingStatus(c corev1.Container, reason, msg string) corev1.ContainerStatus {
	return corev1.ContainerStatus{
		Name: c.Name, Image: c.Image, Started: ptr.To(false),
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}},
	}
}

func (w *podWorker) update(pod *corev1.Pod) {
	w.mu.Lock()
	w.pod = pod.DeepCopy()
	w.mu.Unlock()
}

func (w *podWorker) pids() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int{}
	for c, p := range w.procs {
		out[c] = p.pid()
	}
	return out
}

// kill stops the pod: each container's wait sends SIGTERM to its group now
// and SIGKILL after grace; no container starts any more. A later request
// may shorten the grace, or say the pod is gone; it never brings a pod back.
func (w *podWorker) kill(grace time.Duration, reason killReason) {
	w.mu.Lock()
	first := w.reason == killNone
	if first || reason == killGone {
		w.reason = reason
	}
	if first {
		close(w.killCh)
	}
	running := len(w.procs) > 0
	pod := w.pod
	w.mu.Unlock()
	if first && running && reason != killGone {
		w.n.recorder.Eventf(pod, corev1.EventTypeNormal, "Killing", "Stopping the pod's processes (grace %s)", grace)
	}
	go func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			w.hardOnce.Do(func() { close(w.hardKill) })
		case <-w.done:
		}
	}()
}

func (w *podWorker) killed() (killReason, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reason, w.reason != killNone
}

// cleanup removes the pod's folder once the worker has ended. Logs live
// elsewhere and stay.
func (w *podWorker) cleanup() {
	<-w.done
	if err := os.RemoveAll(w.dir); err != nil {
		klog.Background().V(1).Info("Could not remove a pod folder", "dir", w.dir, "err", err)
	}
}

// sleep waits d, or less if the pod is being stopped; false means stopped.
func (w *podWorker) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.killCh:
		return false
	}
}

// run is the life of the pod on this node.
func (w *podWorker) run(ctx context.Context) {
	defer w.n.wg.Done()
	defer close(w.done)
	logger := klog.FromContext(ctx)
	w.mu.Lock()
	w.started = metav1.Now()
	pod := w.pod
	w.mu.Unlock()
	w.publish(ctx)

	if s := pod.Spec.ActiveDeadlineSeconds; s != nil {
		grace := time.Duration(ptr.Deref(pod.Spec.TerminationGracePeriodSeconds, corev1.DefaultTerminationGracePeriodSeconds)) * time.Second
		t := time.AfterFunc(time.Duration(*s)*time.Second, func() { w.kill(grace, killDeadline) })
		defer t.Stop()
	}

	// Volumes, retried as a kubelet retries mounts: a PVC may still be
	// binding, a Secret may come later.
	var vols map[string]string
	for backoff := time.Second; ; backoff = min(2*backoff, 10*time.Second) {
		if err := os.MkdirAll(w.dir, 0o700); err != nil {
			logger.Error(err, "Pod folder")
		}
		var err error
		if vols, err = w.prepareVolumes(ctx, pod); err == nil {
			break
		}
		logger.V(1).Info("Volumes not ready", "err", err)
		w.n.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedMount", "%v", err)
		w.setWaitingAll("ContainerCreating", err.Error())
		w.publish(ctx)
		if !w.sleep(backoff) {
			break
		}
	}
	if _, stopped := w.killed(); !stopped {
		w.mu.Lock()
		w.volumesReady = true
		w.mu.Unlock()
		w.publish(ctx)
		w.runContainers(ctx, pod, vols)
	}
	w.finish(ctx)
}

// runContainers runs the init containers one after the other, then the
// containers together.
func (w *podWorker) runContainers(ctx context.Context, pod *corev1.Pod, vols map[string]string) {
	for i := range pod.Spec.InitContainers {
		code := w.runContainer(ctx, pod, &pod.Spec.InitContainers[i], i, true, vols)
		if _, stopped := w.killed(); stopped || code != 0 {
			return
		}
	}
	w.mu.Lock()
	w.initDone = true
	w.mu.Unlock()
	var wg sync.WaitGroup
	for i := range pod.Spec.Containers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.runContainer(ctx, pod, &pod.Spec.Containers[i], i, false, vols)
		}()
	}
	wg.Wait()
}

// status returns the status slot of a container; w.mu must be held.
func (w *podWorker) status(i int, init bool) *corev1.ContainerStatus {
	if init {
		return &w.initStatuses[i]
	}
	return &w.statuses[i]
}

// runContainer runs one container until it ends for good, restarting it
// in place as the restart policy says, and returns its last exit code.
func (w *podWorker) runContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, i int, init bool, vols map[string]string) int32 {
	logger := klog.FromContext(ctx).WithValues("container", c.Name)
	backoff := 2 * time.Second
	for restarts := int32(0); ; restarts++ {
		p, st, err := w.startContainer(ctx, pod, c, i, init, vols, restarts)
		if err != nil {
			// StartError, as a runtime reports an exec failure.
			logger.V(1).Info("Container did not start", "err", err)
			w.n.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
			now := metav1.Now()
			w.terminate(i, init, &corev1.ContainerStateTerminated{ExitCode: 128, Reason: "StartError", Message: err.Error(), StartedAt: now, FinishedAt: now})
			w.publish(ctx)
		}
		if p == nil {
			if _, stopped := w.killed(); stopped || !restart(pod.Spec.RestartPolicy, init, 128) {
				return 128
			}
		} else {
			w.n.recorder.Eventf(pod, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
			w.publish(ctx)
			w.wait(p)
			term := &corev1.ContainerStateTerminated{
				ExitCode: p.exitCode, StartedAt: metav1.NewTime(p.started), FinishedAt: metav1.Now(),
				ContainerID: st.ContainerID, Reason: "Completed",
			}
			if p.exitCode != 0 {
				term.Reason = "Error"
			}
			if p.signal != 0 {
				term.Signal = int32(p.signal)
			}
			term.Message = terminationMessage(c, st.termFile, st.logPath, p.exitCode)
			w.mu.Lock()
			delete(w.procs, c.Name)
			w.mu.Unlock()
			w.terminate(i, init, term)
			logger.V(2).Info("Container ended", "exitCode", p.exitCode)
			w.publish(ctx)
			if _, stopped := w.killed(); stopped || !restart(pod.Spec.RestartPolicy, init, p.exitCode) {
				return p.exitCode
			}
		}
		// Restart in place (OnFailure, Always): best effort, with a
		// doubling back-off as a kubelet's CrashLoopBackOff.
		if !w.sleep(backoff) {
			return 137
		}
		backoff = min(2*backoff, time.Minute)
		w.mu.Lock()
		s := w.status(i, init)
		s.RestartCount++
		w.mu.Unlock()
	}
}

func restart(policy corev1.RestartPolicy, init bool, code int32) bool {
	switch policy {
	case corev1.RestartPolicyAlways:
		// Init containers run to completion and only retry on failure.
		return !init || code != 0
	case corev1.RestartPolicyOnFailure:
		return code != 0
	}
	return false
}

// wait follows a running container: on a kill request SIGTERM to its
// group now and SIGKILL when the grace period ends.
func (w *podWorker) wait(p *proc) {
	select {
	case <-p.done:
		return
	case <-w.killCh:
	}
	p.signalGroup(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-w.hardKill:
		p.signalGroup(syscall.SIGKILL)
		<-p.done
	}
}

// startInfo is what a started container's final status needs.
type startInfo struct {
	ContainerID       string
	termFile, logPath string
}

// startContainer resolves the container's configuration and starts its
// process. Configuration errors (a missing Secret, an unmapped image) keep
// the container waiting and are retried, as a kubelet retries them; a nil
// proc with a nil error means the pod is being stopped. An error is an exec
// failure.
func (w *podWorker) startContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, i int, init bool, vols map[string]string, restarts int32) (*proc, startInfo, error) {
	cdir := filepath.Join(w.dir, "containers", c.Name)
	info := startInfo{
		ContainerID: fmt.Sprintf("localnode://%s/%s/%d", pod.UID, c.Name, restarts),
		termFile:    filepath.Join(cdir, "termination-log"),
		logPath:     w.n.LogPath(pod.Namespace, pod.Name, c.Name),
	}
	var spec *execSpec
	for backoff := time.Second; ; backoff = min(2*backoff, 10*time.Second) {
		var reason string
		var err error
		spec, reason, err = w.execSpec(ctx, pod, c, vols, cdir, info.termFile)
		if err == nil {
			break
		}
		klog.FromContext(ctx).V(1).Info("Container not ready to start", "container", c.Name, "reason", reason, "err", err)
		w.n.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		w.mu.Lock()
		s := w.status(i, init)
		if s.State.Waiting == nil || s.State.Waiting.Message != err.Error() {
			s.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: err.Error()}}
			w.mu.Unlock()
			w.publish(ctx)
		} else {
			w.mu.Unlock()
		}
		if !w.sleep(backoff) {
			return nil, info, nil
		}
	}
	// Start under the lock so that a kill request either sees the process
	// or stops it from starting.
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reason != killNone {
		return nil, info, nil
	}
	p, err := startProc(spec.path, spec.argv, spec.env, spec.dir, info.logPath)
	if err != nil {
		return nil, info, fmt.Errorf("start container %s (%s): %w", c.Name, spec.path, err)
	}
	w.procs[c.Name] = p
	s := w.status(i, init)
	if s.State.Terminated != nil {
		s.LastTerminationState = corev1.ContainerState{Terminated: s.State.Terminated}
	}
	s.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(p.started)}}
	s.ContainerID, s.ImageID = info.ContainerID, "localnode://"+spec.path
	s.Started, s.Ready = ptr.To(true), !init
	if !init {
		w.phase = corev1.PodRunning
	}
	return p, info, nil
}

// execSpec is a resolved container process.
type execSpec struct {
	path string
	argv []string
	env  []string
	dir  string
}

// execSpec resolves env, mounts, working folder and command line. The
// reason is the container's waiting reason when it fails.
func (w *podWorker) execSpec(ctx context.Context, pod *corev1.Pod, c *corev1.Container, vols map[string]string, cdir, termFile string) (*execSpec, string, error) {
	root := filepath.Join(cdir, "root")
	base := append(inheritedEnv(w.n.o.InheritEnv),
		"HOME="+root,
		"HOSTNAME="+pod.Name,
		"KUBERNETES_SERVICE_HOST="+w.n.apiHost,
		"KUBERNETES_SERVICE_PORT="+w.n.apiPort,
		EnvNodeName+"="+w.n.o.NodeName,
		EnvNodeInstance+"="+w.n.instance,
	)
	base = append(base, w.n.o.Env...)
	env, err := newEnvResolver(w.n.client, pod, w.n.capacity()).containerEnv(ctx, c, base)
	if err != nil {
		return nil, "CreateContainerConfigError", err
	}
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return nil, "CreateContainerError", err
	}
	// A fresh, empty termination message file per start.
	if err := os.WriteFile(termFile, nil, 0o666); err != nil {
		return nil, "CreateContainerError", err
	}
	m, err := w.containerMounts(c, vols, env, termFile)
	if err != nil {
		return nil, "CreateContainerConfigError", err
	}
	if err := linkRoot(root, m); err != nil {
		return nil, "CreateContainerError", fmt.Errorf("container root: %w", err)
	}
	encoded, err := m.Encode()
	if err != nil {
		return nil, "CreateContainerError", err
	}
	// The map and root are the node's: a container cannot override them.
	env = append(env, pathmap.EnvPathMap+"="+encoded, pathmap.EnvRoot+"="+root)

	dir := root
	if c.WorkingDir != "" {
		dir = m.Translate(c.WorkingDir)
		if dir == c.WorkingDir {
			dir = filepath.Join(root, c.WorkingDir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, "CreateContainerError", fmt.Errorf("working folder: %w", err)
		}
	}

	lookup := envLookup(env)
	var argv []string
	for _, a := range c.Command {
		argv = append(argv, expand(a, lookup))
	}
	for _, a := range c.Args {
		argv = append(argv, expand(a, lookup))
	}
	image, mapped := binaryFor(w.n.o.Images, c.Image)
	path := ""
	if len(c.Command) > 0 {
		path = resolveExecutable(argv[0], m.Translate, lookupOr(lookup, "PATH"))
	}
	if path == "" {
		if !mapped {
			if len(c.Command) > 0 {
				return nil, "ErrImageNeverPull", fmt.Errorf("executable %q is not on this host and image %q maps to no local binary", argv[0], c.Image)
			}
			return nil, "ErrImageNeverPull", fmt.Errorf("image %q maps to no local binary (the local node's image rules)", c.Image)
		}
		path = image
		if len(c.Command) == 0 {
			argv = append([]string{image}, argv...)
		}
	}
	return &execSpec{path: path, argv: argv, env: env, dir: dir}, "", nil
}

func lookupOr(lookup func(string) (string, bool), k string) string {
	v, _ := lookup(k)
	return v
}

// terminationMessage is what the container wrote to its termination file,
// or, for a failure with FallbackToLogsOnError, the end of its log.
func terminationMessage(c *corev1.Container, termFile, logPath string, code int32) string {
	if b, err := os.ReadFile(termFile); err == nil && len(b) > 0 {
		if len(b) > 4096 {
			b = b[:4096]
		}
		return string(b)
	}
	if code != 0 && c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		return tail(logPath, 80, 2048)
	}
	return ""
}

func (w *podWorker) terminate(i int, init bool, t *corev1.ContainerStateTerminated) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.status(i, init)
	s.State = corev1.ContainerState{Terminated: t}
	s.Ready, s.Started = false, ptr.To(false)
}

func (w *podWorker) setWaitingAll(reason, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, list := range [][]corev1.ContainerStatus{w.initStatuses, w.statuses} {
		for i := range list {
			if list[i].State.Waiting != nil {
				list[i].State.Waiting.Reason, list[i].State.Waiting.Message = reason, msg
			}
		}
	}
}

// finish decides the pod's final phase, publishes it and, for a pod being
// deleted, completes the deletion.
func (w *podWorker) finish(ctx context.Context) {
	w.mu.Lock()
	reason := w.reason
	now := metav1.Now()
	failed := false
	for _, list := range [][]corev1.ContainerStatus{w.initStatuses, w.statuses} {
		for i := range list {
			if list[i].State.Terminated == nil {
				// Never ran, or never ran to its end.
				list[i].State = unknownTermination(now)
				list[i].Ready, list[i].Started = false, ptr.To(false)
			}
			if list[i].State.Terminated.ExitCode != 0 {
				failed = true
			}
		}
	}
	w.phase = corev1.PodSucceeded
	if failed {
		w.phase = corev1.PodFailed
	}
	switch reason {
	case killDeadline:
		w.phase, w.podReason, w.podMessage = corev1.PodFailed, "DeadlineExceeded", "Pod was active on the node longer than the specified deadline"
	case killShutdown:
		w.phase, w.podReason, w.podMessage = corev1.PodFailed, "Terminated", "Pod was terminated in response to imminent node shutdown."
		w.disruptionMsg = w.podMessage
	}
	pod := w.pod
	w.mu.Unlock()
	if reason == killGone {
		return
	}
	klog.FromContext(ctx).V(1).Info("Pod ended", "phase", w.phase)
	// The final status is what the Job controller waits for: insist a
	// little, but not forever, since a stopping node may have lost the
	// API server already.
	_ = wait.ExponentialBackoff(wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 6}, func() (bool, error) {
		return w.publish(ctx) == nil, nil
	})
	if reason == killDeleted {
		if err := w.n.deleteNow(ctx, pod); err != nil {
			klog.FromContext(ctx).Error(err, "Could not complete the pod's deletion")
		}
	}
}

// publish writes the worker's view of the pod into its status, keeping
// the conditions others set.
func (w *podWorker) publish(ctx context.Context) error {
	w.publishMu.Lock()
	defer w.publishMu.Unlock()
	if r, _ := w.killed(); r == killGone {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	w.mu.Lock()
	st := w.podStatus()
	w.mu.Unlock()
	pods := w.n.client.CoreV1().Pods(w.namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := pods.Get(ctx, w.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pod.UID != w.uid {
			return apierrors.NewNotFound(corev1.Resource("pods"), w.name)
		}
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			return nil // terminal is final
		}
		merged := st.DeepCopy()
		merged.QOSClass = pod.Status.QOSClass
		merged.NominatedNodeName = pod.Status.NominatedNodeName
		merged.Conditions = mergeConditions(pod.Status.Conditions, st.Conditions)
		pod.Status = *merged
		_, err = pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		return err
	})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		klog.FromContext(ctx).V(1).Info("Pod status not written", "err", err)
		return fmt.Errorf("write status of pod %s/%s: %w", w.namespace, w.name, err)
	}
	return nil
}

// podStatus builds the status from the worker's state; w.mu must be held.
func (w *podWorker) podStatus() *corev1.PodStatus {
	st := &corev1.PodStatus{
		Phase: w.phase, Reason: w.podReason, Message: w.podMessage,
		HostIP: podIP, HostIPs: []corev1.HostIP{{IP: podIP}},
		PodIP: podIP, PodIPs: []corev1.PodIP{{IP: podIP}},
		StartTime: &w.started,
	}
	for _, s := range w.initStatuses {
		st.InitContainerStatuses = append(st.InitContainerStatuses, *s.DeepCopy())
	}
	for _, s := range w.statuses {
		st.ContainerStatuses = append(st.ContainerStatuses, *s.DeepCopy())
	}
	terminal := w.phase == corev1.PodSucceeded || w.phase == corev1.PodFailed
	cond := func(t corev1.PodConditionType, ok bool, reason, msg string) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, Message: msg}
		if ok {
			c.Status, c.Reason, c.Message = corev1.ConditionTrue, "", ""
		}
		return c
	}
	var unready []string
	for _, s := range w.statuses {
		if !s.Ready {
			unready = append(unready, s.Name)
		}
	}
	readyReason, readyMsg := "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	if terminal {
		readyReason, readyMsg = "PodCompleted", ""
	}
	ready := len(unready) == 0 && w.phase == corev1.PodRunning
	initReason := "ContainersNotInitialized"
	st.Conditions = []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, w.volumesReady && !terminal, "", ""),
		cond(corev1.PodInitialized, w.initDone || len(w.initStatuses) == 0, initReason, "containers with incomplete status"),
		cond(corev1.ContainersReady, ready, readyReason, readyMsg),
		cond(corev1.PodReady, ready, readyReason, readyMsg),
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
	}
	if w.disruptionMsg != "" {
		st.Conditions = append(st.Conditions, corev1.PodCondition{
			Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "TerminationByKubelet", Message: w.disruptionMsg,
		})
	}
	return st
}

// mergeConditions keeps the transition times of unchanged conditions and
// every condition of a type this node does not own.
func mergeConditions(old, mine []corev1.PodCondition) []corev1.PodCondition {
	now := metav1.Now()
	owned := map[corev1.PodConditionType]bool{}
	out := make([]corev1.PodCondition, 0, len(old)+len(mine))
	for _, c := range mine {
		owned[c.Type] = true
		c.LastTransitionTime = now
		for _, o := range old {
			if o.Type == c.Type && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		out = append(out, c)
	}
	for _, o := range old {
		if !owned[o.Type] {
			out = append(out, o)
		}
	}
	return out
}

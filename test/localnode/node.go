// Package localnode stands in for a kubelet (and the kube-scheduler) in the
// demo and the end-to-end tests, where no container runtime is available.
// It registers a Node, keeps it Ready, binds the Pods it is told to run to
// that Node and runs each container's command as a local process, writing
// Pod status back so that the real Job controller sees Jobs complete.
//
// It must never be imported by cmd/ or pkg/: the product only creates and
// reads real Jobs and Pods and cannot tell this node from a kubelet.
//
// Conventions (see also pkg/pathmap, the contract with the programs run):
//
//   - Image map: a container's image is matched against Options.Images in
//     order; a pattern is a whole image reference in which "*" stands for any
//     text ("*kubestash*", "busybox*", "busybox:1.36"). The first match gives
//     the local binary of the image.
//   - Command line: container.command + container.args, after $(VAR)
//     expansion. With no command, the image's binary + args. command[0] runs
//     as given when it is an executable on this host (an absolute path, a
//     path under a mount, or a name on PATH); otherwise it is taken to be a
//     path inside the image and the image's binary replaces it.
//   - Volumes: a PVC is the hostPath (spec.hostPath.path or spec.local.path)
//     of its bound PV; hostPath is that path; emptyDir, secret, configMap,
//     downwardAPI and projected volumes (ServiceAccount tokens from the
//     TokenRequest API) are folders under the pod's work folder. subPath is
//     honoured, readOnly is not enforced.
//   - Mounts: the process gets KUBESTASH_PATH_MAP and KUBESTASH_ROOT as
//     pkg/pathmap describes. The termination message file
//     (terminationMessagePath, default /dev/termination-log) is mapped too.
//   - In-cluster credentials: the ServiceAccount admission plugin gives
//     each pod a projected volume (token, kube-root-ca.crt, namespace) at
//     /var/run/secrets/kubernetes.io/serviceaccount; the node fills it
//     through the TokenRequest API and maps it like any mount, so that
//     pathmap.InClusterConfig works. A pod without that volume
//     (automountServiceAccountToken: false) gets no credentials.
//   - Environment: PATH and TMPDIR of this process (Options.InheritEnv),
//     HOME=$KUBESTASH_ROOT, HOSTNAME=<pod name>,
//     KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT=the API server's
//     host and port from the rest config (127.0.0.1 and its port here),
//     KUBESTASH_LOCALNODE=<node name>, then Options.Env, then the
//     container's envFrom and env as a kubelet resolves them (secretKeyRef,
//     configMapKeyRef, fieldRef, resourceFieldRef, $(VAR)); status.podIP and
//     status.hostIP are 127.0.0.1. KUBESTASH_PATH_MAP and KUBESTASH_ROOT
//     come last and cannot be overridden.
//   - Logs: stdout and stderr of container C of pod P in namespace N are
//     appended to <LogDir>/N/P/C.log.
//   - Processes: each container is a process group (Setpgid) whose leader
//     dies with this program (Pdeathsig SIGKILL); the whole group is killed
//     when the leader ends, when the pod is deleted or passes its
//     activeDeadlineSeconds (SIGTERM, the grace period, SIGKILL) and when
//     Run returns. A process killed by signal S exits with 128+S, as in a
//     container runtime. Only if this program itself is SIGKILLed can
//     members of a group other than the leader survive.
//   - Deletion: the node deletes nothing of its own accord. Like a kubelet,
//     it confirms (grace period 0, UID precondition) the graceful deletion
//     of a pod of this node once its processes have stopped, since nothing
//     else would.
//
// Not done: probes, resource limits, readOnly mounts, securityContext,
// ports and hostNetwork, pod affinity and taints, kubectl logs/exec (no
// kubelet API), refreshing projected tokens or updating secret and
// configMap volumes after start, sidecar (restartable init) containers.
package localnode

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// DefaultSelector selects the Pods of this project's Jobs.
const DefaultSelector = "app.kubernetes.io/managed-by=kubestash.com"

// DefaultNodeName is the name of the Node when Options.NodeName is empty.
const DefaultNodeName = "local-node"

// Environment variables set for every process, beside pkg/pathmap's.
const (
	// EnvNodeName marks every process (and, through inheritance, every
	// process it starts) as run by this node, so that tests can find strays.
	EnvNodeName = "KUBESTASH_LOCALNODE"
	// EnvNodeInstance tells apart nodes of the same name: test packages
	// run side by side, each with a node called DefaultNodeName.
	EnvNodeInstance = "KUBESTASH_LOCALNODE_INSTANCE"
)

// Options configures a Node. Zero values have the defaults given.
type Options struct {
	// NodeName is the Node's name; default DefaultNodeName.
	NodeName string
	// Selector chooses which unscheduled Pods to bind to this Node; default
	// DefaultSelector; labels.Nothing() binds none. Pods whose
	// spec.nodeName already names this Node are run whatever their labels.
	Selector labels.Selector
	// Images maps images to local binaries, first match wins.
	Images []ImageRule
	// WorkDir holds per-pod folders (emptyDir, secret and token volumes,
	// KUBESTASH_ROOT). Default: a temporary folder removed by Run on return.
	WorkDir string
	// LogDir holds the container logs; default WorkDir/logs.
	LogDir string
	// InheritEnv names the variables of this process that every container
	// gets; default PATH and TMPDIR.
	InheritEnv []string
	// Env is added to every container's environment (NAME=value), before
	// the container's own env.
	Env []string
	// CACertPEM is the cluster CA written as ca.crt when a pod has no
	// kube-root-ca.crt ConfigMap to project; default the rest config's CA.
	CACertPEM []byte
	// LeaseDuration and HeartbeatInterval govern the node Lease (renewed
	// every HeartbeatInterval) and the Ready heartbeat; default 40 s and
	// 10 s, as a kubelet.
	LeaseDuration     time.Duration
	HeartbeatInterval time.Duration
	// ShutdownGrace is the time processes get between SIGTERM and SIGKILL
	// when Run's context ends; default 3 s.
	ShutdownGrace time.Duration
	// Capacity of the Node; default the host's CPUs, 8Gi memory, 110 pods.
	Capacity corev1.ResourceList
}

// Node is a running local node.
type Node struct {
	o          Options
	client     kubernetes.Interface
	apiHost    string
	apiPort    string
	ownWorkDir bool
	recorder   record.EventRecorder
	broadcast  record.EventBroadcaster

	unscheduled corelisters.PodLister
	assigned    corelisters.PodLister
	bindQueue   workqueue.TypedRateLimitingInterface[string]
	syncQueue   workqueue.TypedRateLimitingInterface[string]

	ready chan struct{}

	mu       sync.Mutex
	workers  map[types.UID]*podWorker
	instance string
	// shutdown is closed when Run's context ends; no pod starts after it.
	shutdown chan struct{}
	wg       sync.WaitGroup
}

// New checks the options and prepares a Node; Run starts it.
func New(cfg *rest.Config, o Options) (*Node, error) {
	if o.NodeName == "" {
		o.NodeName = DefaultNodeName
	}
	if o.Selector == nil {
		o.Selector = labels.SelectorFromSet(labels.Set{"app.kubernetes.io/managed-by": "kubestash.com"})
	}
	if o.InheritEnv == nil {
		o.InheritEnv = []string{"PATH", "TMPDIR"}
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration = 40 * time.Second
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = 10 * time.Second
	}
	if o.ShutdownGrace == 0 {
		o.ShutdownGrace = 3 * time.Second
	}
	if o.CACertPEM == nil {
		o.CACertPEM = cfg.TLSClientConfig.CAData
		if o.CACertPEM == nil && cfg.TLSClientConfig.CAFile != "" {
			b, err := os.ReadFile(cfg.TLSClientConfig.CAFile)
			if err != nil {
				return nil, fmt.Errorf("read the cluster CA: %w", err)
			}
			o.CACertPEM = b
		}
	}
	for _, r := range o.Images {
		if r.Pattern == "" || r.Binary == "" {
			return nil, fmt.Errorf("image rule %q -> %q: both a pattern and a binary are needed", r.Pattern, r.Binary)
		}
	}
	u, err := url.Parse(cfg.Host)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("API server address %q: want https://host:port", cfg.Host)
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("node instance id: %w", err)
	}
	n := &Node{o: o, instance: hex.EncodeToString(id), apiHost: u.Hostname(), apiPort: u.Port(), workers: map[types.UID]*podWorker{}, ready: make(chan struct{}), shutdown: make(chan struct{})}
	if n.apiPort == "" {
		n.apiPort = "443"
	}
	if _, err := strconv.Atoi(n.apiPort); err != nil {
		return nil, fmt.Errorf("API server port %q: %w", n.apiPort, err)
	}
	// Pods are the whole business of this program; leave room for bursts
	// of status writes of many short pods.
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	cfg.UserAgent = "kubestash-localnode/" + o.NodeName
	if n.client, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("client for the local node: %w", err)
	}
	return n, nil
}

// Ready is closed once the Node is registered and the pod caches are synced.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Name is the Node's name.
func (n *Node) Name() string { return n.o.NodeName }

// Instance is the value of EnvNodeInstance in this Node's processes, unique
// to this Node value.
func (n *Node) Instance() string { return n.instance }

// LogDir is the folder of the container logs.
func (n *Node) LogDir() string { return n.o.LogDir }

// LogPath is the log file of a container.
func (n *Node) LogPath(namespace, pod, container string) string {
	return filepath.Join(n.o.LogDir, namespace, pod, container+".log")
}

// Pids lists the process ids of the running containers of a pod, by
// container name (tests kill them).
func (n *Node) Pids(namespace, pod string) map[string]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]int{}
	for _, w := range n.workers {
		if w.namespace == namespace && w.name == pod {
			for c, pid := range w.pids() {
				out[c] = pid
			}
		}
	}
	return out
}

// Run registers the Node and runs pods until ctx ends. It then kills every
// process it started, writes their pods' final status and returns.
func (n *Node) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("node", n.o.NodeName)
	ctx = klog.NewContext(ctx, logger)
	if n.o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "kubestash-localnode-")
		if err != nil {
			return fmt.Errorf("work folder: %w", err)
		}
		n.o.WorkDir, n.ownWorkDir = dir, true
	}
	if n.o.LogDir == "" {
		n.o.LogDir = filepath.Join(n.o.WorkDir, "logs")
	}
	for _, d := range []string{filepath.Join(n.o.WorkDir, "pods"), n.o.LogDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("work folder: %w", err)
		}
	}
	defer func() {
		if n.ownWorkDir {
			_ = os.RemoveAll(n.o.WorkDir)
		}
	}()

	// Events outlive ctx: the shutdown's Killing events come after it ends.
	n.broadcast = record.NewBroadcaster(record.WithContext(context.WithoutCancel(ctx)))
	n.broadcast.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: n.client.CoreV1().Events("")})
	defer n.broadcast.Shutdown()
	n.recorder = n.broadcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "localnode", Host: n.o.NodeName})

	if err := n.register(ctx); err != nil {
		return err
	}
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		n.heartbeat(ctx)
	}()

	n.bindQueue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: "localnode-bind"})
	n.syncQueue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: "localnode-pods"})

	// Two pod informers: one for the pods to bind (no node yet, selected
	// by label), one for the pods of this node.
	unscheduledFactory := informers.NewSharedInformerFactoryWithOptions(n.client, 0, informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
		lo.FieldSelector = "spec.nodeName="
		lo.LabelSelector = n.o.Selector.String()
	}))
	assignedFactory := informers.NewSharedInformerFactoryWithOptions(n.client, 0, informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
		lo.FieldSelector = "spec.nodeName=" + n.o.NodeName
	}))
	unscheduledInf := unscheduledFactory.Core().V1().Pods()
	assignedInf := assignedFactory.Core().V1().Pods()
	n.unscheduled, n.assigned = unscheduledInf.Lister(), assignedInf.Lister()
	enqueue := func(q workqueue.TypedRateLimitingInterface[string]) cache.ResourceEventHandler {
		add := func(obj any) {
			key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
			if err != nil {
				utilruntime.HandleErrorWithContext(ctx, err, "pod key")
				return
			}
			q.Add(key)
		}
		return cache.ResourceEventHandlerFuncs{AddFunc: add, UpdateFunc: func(_, obj any) { add(obj) }, DeleteFunc: add}
	}
	if _, err := unscheduledInf.Informer().AddEventHandler(enqueue(n.bindQueue)); err != nil {
		return fmt.Errorf("pod informer: %w", err)
	}
	if _, err := assignedInf.Informer().AddEventHandler(enqueue(n.syncQueue)); err != nil {
		return fmt.Errorf("pod informer: %w", err)
	}
	unscheduledFactory.Start(ctx.Done())
	assignedFactory.Start(ctx.Done())
	defer unscheduledFactory.Shutdown()
	defer assignedFactory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), unscheduledInf.Informer().HasSynced, assignedInf.Informer().HasSynced) {
		n.bindQueue.ShutDown()
		n.syncQueue.ShutDown()
		<-hbDone
		return fmt.Errorf("pod caches did not sync: %w", ctx.Err())
	}

	var loops sync.WaitGroup
	for i := 0; i < 2; i++ {
		loops.Add(2)
		go func() { defer loops.Done(); n.processLoop(ctx, n.bindQueue, n.bind) }()
		go func() { defer loops.Done(); n.processLoop(ctx, n.syncQueue, n.syncPod) }()
	}
	logger.V(1).Info("Local node ready", "workDir", n.o.WorkDir, "logDir", n.o.LogDir)
	close(n.ready)

	<-ctx.Done()
	n.bindQueue.ShutDown()
	n.syncQueue.ShutDown()
	loops.Wait()

	// Kill every process and let each worker write its pod's final status
	// on a context of its own: Run's has ended.
	n.mu.Lock()
	close(n.shutdown)
	for _, w := range n.workers {
		w.kill(n.o.ShutdownGrace, killShutdown)
	}
	n.mu.Unlock()
	n.wg.Wait()
	<-hbDone
	n.markNotReady(logger)
	logger.V(1).Info("Local node stopped")
	return nil
}

func (n *Node) processLoop(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], sync func(context.Context, string) error) {
	for {
		key, quit := q.Get()
		if quit {
			return
		}
		err := sync(ctx, key)
		switch {
		case err == nil:
			q.Forget(key)
		case ctx.Err() != nil:
		default:
			klog.FromContext(ctx).V(1).Info("Retrying pod", "pod", key, "err", err)
			q.AddRateLimited(key)
		}
		q.Done(key)
	}
}

// errStopped says a worker was refused because the node is stopping.
var errStopped = errors.New("local node stopping")

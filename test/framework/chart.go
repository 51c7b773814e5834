package framework

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// ChartName is the release name the dev environment and the tests install
// the chart as; its objects are named after it (kubestash-catalog-apiserver,
// kubestash-catalog-controller).
const ChartName = "kubestash-catalog"

// ChartOptions say how to install charts/kubestash-catalog.
type ChartOptions struct {
	// Name is the release; empty: ChartName.
	Name string
	// Namespace is the release's; empty: CatalogNamespace.
	Namespace string
	// Set are helm --set values, after the framework's own (images of
	// this version, never pulled); a later one wins.
	Set []string
	// CollectLogs streams every pod's log of the release into
	// <Dir>/logs/<release>/ while this program runs, so that logs of pods
	// gone since (rolled, deleted) stay readable. The dev environment,
	// which exits after up, does without.
	CollectLogs bool
}

// ChartRelease is charts/kubestash-catalog installed on a control plane
// with a node: the catalog server and the controller run as pods of our
// images, as the chart's ServiceAccounts with the chart's RBAC.
type ChartRelease struct {
	Name, Namespace string
	cp              *ControlPlane
	chart, helm     string
	set             []string
	logDir          string
	stopLogs        context.CancelFunc
	logsDone        sync.WaitGroup
}

// ChartComponents are the chart's Deployments, by component label.
var ChartComponents = []string{"apiserver", "controller"}

// InstallChart installs the chart with bin/helm and waits until both
// Deployments have rolled out and the APIService is Available.
func (cp *ControlPlane) InstallChart(ctx context.Context, o ChartOptions) (*ChartRelease, error) {
	if cp.Node == nil {
		return nil, errors.New("the chart's servers run as pods: start the node first")
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	r := &ChartRelease{Name: o.Name, Namespace: o.Namespace, cp: cp,
		chart: filepath.Join(root, "charts", "kubestash-catalog"), helm: filepath.Join(cp.opts.BinDir, "helm")}
	if r.Name == "" {
		r.Name = ChartName
	}
	if r.Namespace == "" {
		r.Namespace = CatalogNamespace
	}
	set := []string{"--set", "apiserver.image.pullPolicy=Never", "--set", "controller.image.pullPolicy=Never"}
	for _, c := range []string{"apiserver", "controller", "agent"} {
		set = append(set, "--set", c+".image.tag="+cp.Version())
	}
	for _, s := range o.Set {
		set = append(set, "--set", s)
	}
	if o.CollectLogs {
		r.logDir = filepath.Join(cp.Dir, "logs", r.Name)
		if err := os.MkdirAll(r.logDir, 0o755); err != nil {
			return nil, err
		}
		lctx, cancel := context.WithCancel(context.Background())
		r.stopLogs = cancel
		r.logsDone.Add(1)
		go r.collectLogs(lctx)
	}
	r.set = set
	args := append([]string{"install", r.Name, r.chart, "--create-namespace"}, set...)
	if _, err := r.Helm(ctx, args...); err != nil {
		r.StopLogs()
		return nil, err
	}
	if err := r.WaitReady(ctx); err != nil {
		return r, err
	}
	return r, nil
}

// Helm runs bin/helm on the release's namespace as the admin.
func (r *ChartRelease) Helm(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, r.helm, append(args, "--kubeconfig", r.cp.Kubeconfig, "--namespace", r.Namespace)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	// helm keeps a cache and config in $HOME; give it the environment's.
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(r.cp.Dir, "helm", "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(r.cp.Dir, "helm", "config"), "HELM_DATA_HOME="+filepath.Join(r.cp.Dir, "helm", "data"))
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// Upgrade runs helm upgrade with the values the release was installed
// with and set on top (so an Upgrade with none goes back to those), and
// waits until the Deployments rolled out.
func (r *ChartRelease) Upgrade(ctx context.Context, set ...string) error {
	args := append([]string{"upgrade", r.Name, r.chart}, r.set...)
	for _, s := range set {
		args = append(args, "--set", s)
	}
	if _, err := r.Helm(ctx, args...); err != nil {
		return err
	}
	return r.WaitReady(ctx)
}

// Uninstall runs helm uninstall and waits until the pods are gone. The
// collected logs of its pods are renamed to say when the uninstall began
// (see LogLines).
func (r *ChartRelease) Uninstall(ctx context.Context) error {
	began := time.Now()
	if _, err := r.Helm(ctx, "uninstall", r.Name, "--wait", "--timeout", "2m"); err != nil {
		return err
	}
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := r.Pods(ctx, "")
		return err == nil && len(pods) == 0, nil
	})
	if err != nil || r.logDir == "" {
		return err
	}
	files, err := r.LogFiles("")
	if err != nil {
		return err
	}
	for _, f := range files {
		if !strings.Contains(f, untilMark) {
			if err := os.Rename(f, strings.TrimSuffix(f, ".log")+fmt.Sprintf("%s%d.log", untilMark, began.UnixNano())); err != nil {
				return err
			}
		}
	}
	return nil
}

// untilMark names, in a log file's name, when the uninstall of its pod's
// release began (Unix nanoseconds).
const untilMark = ".uninstalled-"

// DeploymentName is the Deployment of a component (ChartComponents).
func (r *ChartRelease) DeploymentName(component string) string {
	if strings.Contains(r.Name, "kubestash-catalog") {
		return r.Name + "-" + component
	}
	return r.Name + "-kubestash-catalog-" + component
}

// WaitReady waits until every Deployment has rolled out its current
// template (all replicas updated, ready and no old ones left) and the
// APIService is Available.
func (r *ChartRelease) WaitReady(ctx context.Context) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, c := range ChartComponents {
			d, err := r.cp.KubeClient.AppsV1().Deployments(r.Namespace).Get(ctx, r.DeploymentName(c), metav1.GetOptions{})
			if err != nil {
				last = err.Error()
				return false, nil
			}
			if !rolledOut(d) {
				last = fmt.Sprintf("Deployment %s: %d of %d replicas updated, %d ready, %d in all", d.Name,
					d.Status.UpdatedReplicas, *d.Spec.Replicas, d.Status.ReadyReplicas, d.Status.Replicas)
				return false, nil
			}
		}
		ok, msg := apiServiceAvailable(ctx, r.cp)
		last = msg
		return ok, nil
	})
	if err != nil {
		// ctx may be done: describe with a context of its own.
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return fmt.Errorf("release %s not ready: %s\n%s", r.Name, last, r.describe(dctx))
	}
	return nil
}

func rolledOut(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.Replicas == want &&
		s.ReadyReplicas == want && s.AvailableReplicas == want
}

// apiServiceAvailable reports whether the catalog's APIService is
// Available, and what it says otherwise.
func apiServiceAvailable(ctx context.Context, cp *ControlPlane) (bool, string) {
	dyn, err := dynamic.NewForConfig(cp.Config)
	if err != nil {
		return false, err.Error()
	}
	cur, err := dyn.Resource(gvrAPIService).Get(ctx, CatalogAPIService, metav1.GetOptions{})
	if err != nil {
		return false, err.Error()
	}
	conds, _, _ := unstructured.NestedSlice(cur.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Available" {
			return m["status"] == "True", fmt.Sprintf("APIService %s: %v: %v", CatalogAPIService, m["reason"], m["message"])
		}
	}
	return false, "APIService " + CatalogAPIService + " has no Available condition yet"
}

// describe says what the release's pods are doing, for errors.
func (r *ChartRelease) describe(ctx context.Context) string {
	pods, err := r.Pods(ctx, "")
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	// Why a ReplicaSet made no pod, or a pod did not start.
	if evs, err := r.cp.KubeClient.CoreV1().Events(r.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "type=Warning"}); err == nil {
		for _, ev := range evs.Items {
			fmt.Fprintf(&b, "event %s/%s %s: %s\n", ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Reason, ev.Message)
		}
	}
	for _, p := range pods {
		fmt.Fprintf(&b, "pod %s: %s", p.Name, p.Status.Phase)
		for _, cs := range p.Status.ContainerStatuses {
			switch {
			case cs.State.Waiting != nil:
				fmt.Fprintf(&b, " %s waiting: %s %s", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message)
			case cs.State.Terminated != nil:
				fmt.Fprintf(&b, " %s terminated: %s (exit %d)", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode)
			default:
				fmt.Fprintf(&b, " %s ready=%t restarts=%d", cs.Name, cs.Ready, cs.RestartCount)
			}
		}
		b.WriteString("\n")
		if out, err := r.cp.KubeClient.CoreV1().Pods(r.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: ptr.To(int64(20))}).DoRaw(ctx); err == nil {
			b.Write(out)
		}
	}
	return b.String()
}

// Pods lists the release's pods of a component; empty: all.
func (r *ChartRelease) Pods(ctx context.Context, component string) ([]corev1.Pod, error) {
	sel := "app.kubernetes.io/instance=" + r.Name
	if component != "" {
		sel += ",app.kubernetes.io/component=" + component
	}
	list, err := r.cp.KubeClient.CoreV1().Pods(r.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// LeadingController waits until a running controller pod holds the
// leader Lease and answers /readyz (caches synced), and returns the
// host:port of its metrics, health and readiness endpoints, which this
// host reaches over the bridge.
func (r *ChartRelease) LeadingController(ctx context.Context) (string, error) {
	port := 8080
	for _, s := range r.set {
		if v, ok := strings.CutPrefix(s, "controller.metricsPort="); ok {
			if _, err := fmt.Sscan(v, &port); err != nil {
				return "", fmt.Errorf("controller.metricsPort=%s: %w", v, err)
			}
		}
	}
	var addr, last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		lease, err := r.cp.KubeClient.CoordinationV1().Leases(r.Namespace).Get(ctx, r.DeploymentName("controller"), metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		holder := ""
		if lease.Spec.HolderIdentity != nil {
			holder = *lease.Spec.HolderIdentity
		}
		pods, err := r.Pods(ctx, "controller")
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("Lease %s held by %q", lease.Name, holder)
		for _, p := range pods {
			// The identity is the pod's host name (its name) and pid.
			if p.DeletionTimestamp != nil || p.Status.PodIP == "" || !strings.HasPrefix(holder, p.Name+"_") {
				continue
			}
			addr = fmt.Sprintf("%s:%d", p.Status.PodIP, port)
			if err := httpOK(ctx, http.DefaultClient, "http://"+addr+"/readyz"); err != nil {
				last = fmt.Sprintf("leader %s: %v", p.Name, err)
				return false, nil
			}
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return "", fmt.Errorf("no controller pod leads and is ready: %s", last)
	}
	return addr, nil
}

// ContainerPID is the host pid of the first running pod's main container
// of a component, found by its container id in /proc/*/cgroup.
func (r *ChartRelease) ContainerPID(ctx context.Context, component string) (int, error) {
	pods, err := r.Pods(ctx, component)
	if err != nil {
		return 0, err
	}
	for _, p := range pods {
		if p.DeletionTimestamp != nil || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Running == nil {
			continue
		}
		_, id, _ := strings.Cut(p.Status.ContainerStatuses[0].ContainerID, "://")
		procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
		for _, f := range procs {
			b, err := os.ReadFile(f)
			if err != nil || id == "" || !bytes.Contains(b, []byte(id)) {
				continue
			}
			var pid int
			if _, err := fmt.Sscan(filepath.Base(filepath.Dir(f)), &pid); err == nil {
				return pid, nil
			}
		}
		return 0, fmt.Errorf("no process of container %s (pod %s)", id, p.Name)
	}
	return 0, fmt.Errorf("no running %s pod", component)
}

// DirectConfig reaches one catalog server pod of the release directly, not
// through kube-apiserver, the way the aggregator does: with the front-proxy
// client certificate, saying who the caller is in X-Remote-User and
// X-Remote-Group, and trusting the APIService's caBundle for the
// Service's name.
func (r *ChartRelease) DirectConfig(ctx context.Context, pod *corev1.Pod, user string, groups ...string) (*rest.Config, error) {
	dyn, err := dynamic.NewForConfig(r.cp.Config)
	if err != nil {
		return nil, err
	}
	apisvc, err := dyn.Resource(gvrAPIService).Get(ctx, CatalogAPIService, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	caB64, _, _ := unstructured.NestedString(apisvc.Object, "spec", "caBundle")
	ca, err := base64.StdEncoding.DecodeString(caB64)
	if err != nil {
		return nil, fmt.Errorf("APIService caBundle: %w", err)
	}
	port := 0
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == "https" {
				port = int(p.ContainerPort)
			}
		}
	}
	if pod.Status.PodIP == "" || port == 0 {
		return nil, fmt.Errorf("pod %s has no IP or https port yet", pod.Name)
	}
	kp := r.cp.pki.frontProxyClient
	cfg := &rest.Config{
		Host: fmt.Sprintf("https://%s:%d", pod.Status.PodIP, port),
		TLSClientConfig: rest.TLSClientConfig{
			CAData: ca, CertFile: kp.CertFile, KeyFile: kp.KeyFile,
			ServerName: r.DeploymentName("apiserver") + "." + r.Namespace + ".svc",
		},
	}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			req = req.Clone(req.Context())
			req.Header.Set("X-Remote-User", user)
			for _, g := range groups {
				req.Header.Add("X-Remote-Group", g)
			}
			return rt.RoundTrip(req)
		})
	})
	return cfg, nil
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// StopLogs ends log collection and waits for the files to be written.
func (r *ChartRelease) StopLogs() {
	if r.stopLogs != nil {
		r.stopLogs()
		r.logsDone.Wait()
		r.stopLogs = nil
	}
}

// collectLogs follows the log of every container of the release's pods,
// each run (container id) into its own file.
func (r *ChartRelease) collectLogs(ctx context.Context) {
	defer r.logsDone.Done()
	seen := map[string]bool{}
	var streams sync.WaitGroup
	defer streams.Wait()
	for ctx.Err() == nil {
		pods, err := r.Pods(ctx, "")
		if err == nil {
			for _, p := range pods {
				for _, cs := range p.Status.ContainerStatuses {
					if cs.State.Running == nil || cs.ContainerID == "" || seen[cs.ContainerID] {
						continue
					}
					seen[cs.ContainerID] = true
					_, id, _ := strings.Cut(cs.ContainerID, "://")
					name := fmt.Sprintf("%s_%s_%.12s.log", p.Name, cs.Name, id)
					streams.Add(1)
					go func() {
						defer streams.Done()
						r.followLog(ctx, p.Name, cs.Name, filepath.Join(r.logDir, name))
					}()
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// followLog copies one container's log into path until it ends or ctx
// does; once ctx is done it reads what is left without following.
func (r *ChartRelease) followLog(ctx context.Context, pod, container, path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	stream, err := r.cp.KubeClient.CoreV1().Pods(r.Namespace).GetLogs(pod, &corev1.PodLogOptions{Container: container, Follow: true}).Stream(ctx)
	if err != nil {
		return
	}
	defer stream.Close()
	_, _ = io.Copy(f, stream)
}

// LogFiles lists the collected log files of a component (all: empty).
func (r *ChartRelease) LogFiles(component string) ([]string, error) {
	if r.logDir == "" {
		return nil, errors.New("logs are not collected (ChartOptions.CollectLogs)")
	}
	prefix := ""
	if component != "" {
		prefix = r.DeploymentName(component) + "-"
	}
	ents, err := os.ReadDir(r.logDir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			files = append(files, filepath.Join(r.logDir, e.Name()))
		}
	}
	sort.Strings(files)
	return files, nil
}

// LogLines returns the lines of a component's collected logs that contain
// substr, each prefixed with its file's name. Lines a pod logged after the
// uninstall of its release began are left out: helm deletes the servers'
// RBAC while their pods still terminate, and what they are refused then
// says nothing of the RBAC they run with.
func (r *ChartRelease) LogLines(component, substr string) ([]string, error) {
	files, err := r.LogFiles(component)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, path := range files {
		var until time.Time
		if _, n, ok := strings.Cut(filepath.Base(path), untilMark); ok {
			var ns int64
			if _, err := fmt.Sscan(strings.TrimSuffix(n, ".log"), &ns); err == nil {
				until = time.Unix(0, ns)
			}
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		s := bufio.NewScanner(f)
		s.Buffer(make([]byte, 64*1024), 4<<20)
		for s.Scan() {
			l := s.Text()
			if !strings.Contains(l, substr) {
				continue
			}
			if at, ok := klogTime(l, until); ok && !until.IsZero() && !at.Before(until) {
				continue
			}
			lines = append(lines, filepath.Base(path)+": "+l)
		}
		f.Close()
	}
	return lines, nil
}

// klogTime is the time in a klog header ("E1208 00:53:36.261345 ..."),
// in the year of near and UTC, the zone of our images.
func klogTime(line string, near time.Time) (time.Time, bool) {
	if len(line) < 21 || !strings.ContainsRune("IWEF", rune(line[0])) {
		return time.Time{}, false
	}
	t, err := time.ParseInLocation("0102 15:04:05.000000", line[1:21], time.UTC)
	if err != nil {
		return time.Time{}, false
	}
	return t.AddDate(near.UTC().Year(), 0, 0), true
}

// LogTail is the last n lines of a component's most recent collected log.
func (r *ChartRelease) LogTail(component string, n int) string {
	files, err := r.LogFiles(component)
	if err != nil || len(files) == 0 {
		return fmt.Sprintf("(no log of %s: %v)", component, err)
	}
	var newest string
	var at time.Time
	for _, f := range files {
		if st, err := os.Stat(f); err == nil && !st.ModTime().Before(at) {
			newest, at = f, st.ModTime()
		}
	}
	b, err := os.ReadFile(newest)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return filepath.Base(newest) + ":\n" + strings.Join(lines, "\n")
}

// Command devenv runs the test control plane in the background for people
// and scripts: hack/dev-env.sh up|down|status calls it. State, logs and pids
// live in .dev/ at the repository root.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"kubestash.dev/kubestash/test/framework"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: devenv up|down|status")
		os.Exit(2)
	}
	root, err := framework.RepoRoot()
	if err != nil {
		fatal(err)
	}
	dev := filepath.Join(root, ".dev")
	// Tests run a second environment beside a developer's own.
	if d := os.Getenv("KUBESTASH_DEV_DIR"); d != "" {
		dev = d
	}
	switch os.Args[1] {
	case "up":
		err = up(dev)
	case "down":
		err = down(dev)
	case "status":
		err = status(dev)
	default:
		err = fmt.Errorf("unknown command %q: want up, down or status", os.Args[1])
	}
	if errors.Is(err, errDown) {
		// LSB status convention: 3 means "not running".
		fmt.Println("dev-env: down")
		os.Exit(3)
	}
	if err != nil {
		fatal(err)
	}
}

var errDown = errors.New("down")

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "dev-env: %v\n", err)
	os.Exit(1)
}

// entry is one line of .dev/pids: what we started, so that down stops that
// and nothing else.
type entry struct {
	name string
	pid  int
	bin  string
}

func pidsFile(dev string) string { return filepath.Join(dev, "pids") }

func readPids(dev string) ([]entry, error) {
	f, err := os.Open(pidsFile(dev))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var es []entry
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) != 3 {
			continue
		}
		pid, err := strconv.Atoi(fields[1])
		if err != nil {
			continue
		}
		es = append(es, entry{name: fields[0], pid: pid, bin: fields[2]})
	}
	return es, s.Err()
}

// alive reports whether pid still runs the binary we started; a pid reused
// by another program counts as gone, so down never signals a stranger.
func (e entry) alive() bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", e.pid))
	if err != nil {
		return false
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	// The kernel names the resolved file; bin/ may be a symlink (a git
	// worktree sharing another's tools).
	if bin, err := filepath.EvalSymlinks(e.bin); err == nil && bin == exe {
		return true
	}
	return exe == e.bin
}

// exited reports whether pid has ended: gone, or a zombie waiting for
// init. /proc/pid/exe vanishes while a process is still exiting, so it
// can't tell this.
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

func up(dev string) error {
	es, err := readPids(dev)
	if err != nil {
		return err
	}
	for _, e := range es {
		if e.alive() {
			return fmt.Errorf("already up (%s pid %d); run hack/dev-env.sh down first", e.name, e.pid)
		}
	}
	// Each up starts from a clean slate: certificates and MinIO's
	// credentials are new each time, and old data would not match them.
	for _, d := range []string{"data", "logs", "pki"} {
		if err := os.RemoveAll(filepath.Join(dev, d)); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dev, 0o755); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := framework.RepoRoot()
	if err != nil {
		return err
	}
	bin := filepath.Join(root, "bin")
	if err := framework.CanRunNode(bin); err != nil {
		return fmt.Errorf("%w\nThe dev environment runs Jobs on a real node (kubelet, containerd, runc) and cannot start here", err)
	}
	images, err := framework.ImageTarballs(bin)
	if err != nil {
		return err
	}
	start := time.Now()
	fmt.Printf("dev-env: starting etcd, kube-apiserver, kube-controller-manager and MinIO on %s (bridge %s) ...\n", framework.BridgeIP, framework.BridgeName)
	cp, err := framework.Start(ctx, framework.Options{Dir: dev, Detach: true, Node: true})
	if err != nil {
		// Start stops what it started on error.
		return err
	}
	// Local BackupStorages may live only here: a tenant's storage must
	// not name any other directory of the node.
	localBackends := filepath.Join(dev, "local-backends")
	if err := os.MkdirAll(localBackends, 0o700); err != nil {
		cp.Stop()
		return err
	}
	fmt.Println("dev-env: starting the node: containerd, kubelet, kube-proxy, kube-scheduler; importing our images ...")
	node, err := cp.StartNode(ctx, images)
	if err != nil {
		cp.Stop()
		return fmt.Errorf("node: %w", err)
	}
	// From here on the processes are recorded even when the chart fails,
	// so that down stops them.
	var b strings.Builder
	for _, p := range cp.Processes() {
		fmt.Fprintf(&b, "%s %d %s\n", p.Name, p.Pid(), p.Bin)
		p.Release()
	}
	if err := os.WriteFile(pidsFile(dev), []byte(b.String()), 0o644); err != nil {
		return err
	}
	// The catalog server and the controller run as pods of our images,
	// installed by the chart with its RBAC, as in a user's cluster.
	fmt.Printf("dev-env: installing charts/kubestash-catalog (release %s in namespace %s) ...\n", framework.ChartName, framework.CatalogNamespace)
	rel, err := cp.InstallChart(ctx, framework.ChartOptions{Set: []string{
		"localBackendDirs={" + localBackends + "}",
		"apiserver.pollInterval=5s",
		"controller.resync=10s",
	}})
	if err != nil {
		return fmt.Errorf("chart: %w (the environment is up: see it, then run hack/dev-env.sh down)", err)
	}
	m := cp.MinIO
	env := fmt.Sprintf("MINIO_ENDPOINT=%s\nMINIO_BUCKET=%s\nAWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", m.Endpoint, m.Bucket, m.AccessKey, m.SecretKey)
	if err := os.WriteFile(filepath.Join(dev, "minio.env"), []byte(env), 0o600); err != nil {
		return err
	}
	fmt.Printf("dev-env: ready in %s\n", time.Since(start).Round(time.Second))
	fmt.Printf("  kube-apiserver  %s\n", cp.APIServer.URL)
	fmt.Printf("  MinIO           %s (bucket %s; keys in .dev/minio.env)\n", m.Endpoint, m.Bucket)
	fmt.Printf("  catalog server  Deployment %s/%s (catalog.kubestash.com, e.g. kubectl get snapshots -A)\n", rel.Namespace, rel.DeploymentName("apiserver"))
	fmt.Printf("  controller      Deployment %s/%s\n", rel.Namespace, rel.DeploymentName("controller"))
	fmt.Printf("  node            %s (kubelet, containerd %s; images: %s)\n", node.Name, node.Socket, strings.Join(node.Images, " "))
	fmt.Printf("  kubeconfig      .dev/kubeconfig   e.g. kubectl --kubeconfig .dev/kubeconfig get crds\n")
	fmt.Printf("  logs            .dev/logs/, and kubectl logs -n %s deploy/%s (or -controller)\n", rel.Namespace, rel.DeploymentName("apiserver"))
	fmt.Printf("  stop with       hack/dev-env.sh down\n")
	return nil
}

func down(dev string) error {
	es, err := readPids(dev)
	if err != nil {
		return err
	}
	if len(es) == 0 {
		fmt.Println("dev-env: nothing to stop")
		return nil
	}
	// The node first: its containers, mounts, firewall rules, bridge,
	// cgroups and sysctls go back to what they were.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	if err := framework.TeardownLocked(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "dev-env: %v\n", err)
	} else {
		fmt.Printf("dev-env: stopped the node and put the host back in %s\n", time.Since(start).Round(10*time.Millisecond))
	}
	// Only what still runs the binary we started is ours to stop. Stop
	// clients before the servers they talk to, and give a long grace only
	// to what holds data. The catalog server and the controller were pods
	// of the node, gone with it. kube-apiserver waits for open watches to
	// close on SIGTERM; it holds nothing a kill loses (its state is in
	// etcd). etcd and MinIO get a long grace.
	stages := make([][]entry, len(stopOrder)+1)
	for _, e := range es {
		if !e.alive() {
			continue
		}
		i := len(stopOrder)
		for j, st := range stopOrder {
			for _, n := range st.names {
				if e.name == n {
					i = j
				}
			}
		}
		stages[i] = append(stages[i], e)
	}
	for i, stage := range stages {
		grace := 10 * time.Second
		if i < len(stopOrder) {
			grace = stopOrder[i].grace
		}
		stopStage(stage, grace)
	}
	return os.Remove(pidsFile(dev))
}

// stopOrder: who stops before whom, and how long each may take before it
// is killed; what is not named (the node's processes, normally gone with
// the node already) stops last.
var stopOrder = []struct {
	names []string
	grace time.Duration
}{
	{[]string{"kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet"}, 5 * time.Second},
	{[]string{"kube-apiserver"}, 2 * time.Second},
	{[]string{"etcd", "minio"}, 10 * time.Second},
}

// stopStage sends SIGTERM to each entry's process group, waits up to
// grace for all of them, then kills what is left.
func stopStage(stage []entry, grace time.Duration) {
	start := time.Now()
	for _, e := range stage {
		// Each was started in its own session: its group id is its pid.
		_ = syscall.Kill(-e.pid, syscall.SIGTERM)
	}
	deadline := start.Add(grace)
	for _, e := range stage {
		for !exited(e.pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		how := "stopped"
		if !exited(e.pid) {
			how = "killed after " + grace.String()
			_ = syscall.Kill(-e.pid, syscall.SIGKILL)
			for !exited(e.pid) {
				time.Sleep(50 * time.Millisecond)
			}
		}
		fmt.Printf("dev-env: %s %s (pid %d) in %s\n", how, e.name, e.pid, time.Since(start).Round(10*time.Millisecond))
	}
}

func status(dev string) error {
	es, err := readPids(dev)
	if err != nil {
		return err
	}
	if len(es) == 0 {
		return errDown
	}
	running := 0
	for _, e := range es {
		state := "stopped"
		if e.alive() {
			state = "running"
			running++
		}
		fmt.Printf("%-24s pid %-8d %s\n", e.name, e.pid, state)
	}
	if running != len(es) {
		return fmt.Errorf("%d of %d processes running; see .dev/logs", running, len(es))
	}
	fmt.Println("dev-env: up (kubeconfig .dev/kubeconfig)")
	return nil
}

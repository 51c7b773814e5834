package framework

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// NodeName is the name of the real node the tests and the dev environment
// run.
const NodeName = "kubestash-node"

// Sockets and state of containerd live under HostStateDir: unix socket
// paths are short, and the shims' socket folder may be at most 38
// characters long.
var (
	containerdSocket = filepath.Join(HostStateDir, "containerd.sock")
	shimSocketDir    = filepath.Join(HostStateDir, "s")
	containerdState  = filepath.Join(HostStateDir, "containerd")
)

// Node is a real Kubernetes node on this host: containerd 2 with runc and
// the CNI bridge on our own bridge, a kubelet, kube-proxy and
// kube-scheduler, all talking to one ControlPlane. Our images are imported
// into containerd; nothing is ever pulled.
type Node struct {
	Name string
	Dir  string
	// Socket is containerd's CRI endpoint, for crictl.
	Socket                                string
	Containerd, Kubelet, Proxy, Scheduler *Process
	// Images are the image names imported, as "name:tag".
	Images []string

	cp    *ControlPlane
	bin   string
	state *hostState
}

// PauseImage is the sandbox image the node pins; hack/images.sh builds it.
func PauseImage(version string) string { return "ghcr.io/kubestash-catalog/pause:" + version }

// StartNode starts a real node for cp, which must have been started with
// Options.Node (kube-apiserver on the bridge). It takes the host's node
// lock first, waiting while another package's node runs. images are OCI
// tarballs to import (hack/images.sh writes them to bin/images).
func (cp *ControlPlane) StartNode(ctx context.Context, images []string) (n *Node, err error) {
	if !cp.opts.Node {
		return nil, errors.New("the control plane was not started with Options.Node")
	}
	hostRef.Lock()
	s := hostRef.state
	busy := s != nil && (len(s.Pids) > 0 || s.Dir != "")
	if s != nil && !busy {
		s.Dir = filepath.Join(cp.Dir, "node")
	}
	hostRef.Unlock()
	if s == nil {
		return nil, errors.New("the host is not prepared for a node")
	}
	if busy {
		return nil, errors.New("a node of another control plane runs on this host: stop it first (one kubelet per host)")
	}
	n = &Node{Name: NodeName, Dir: s.Dir, Socket: "unix://" + containerdSocket, cp: cp, bin: cp.opts.BinDir, state: s}
	defer func() {
		if err != nil {
			n.Stop()
		}
	}()
	if err := s.save(); err != nil {
		return n, err
	}
	if err := makeCgroupRoot(); err != nil {
		return n, err
	}
	if err := n.writeConfigs(); err != nil {
		return n, err
	}
	if err := n.startContainerd(ctx); err != nil {
		return n, err
	}
	for _, img := range images {
		if err := n.importImage(ctx, img); err != nil {
			return n, err
		}
	}
	if err := n.startKubelet(ctx); err != nil {
		return n, err
	}
	if err := n.startScheduler(ctx); err != nil {
		return n, err
	}
	if err := n.startProxy(ctx); err != nil {
		return n, err
	}
	if err := n.waitReady(ctx); err != nil {
		return n, err
	}
	cp.Node = n
	return n, nil
}

func (n *Node) logPath(name string) string { return filepath.Join(n.cp.Dir, "logs", name+".log") }

func (n *Node) path(p ...string) string { return filepath.Join(append([]string{n.Dir}, p...)...) }

// writeConfigs writes containerd's, the kubelet's, kube-proxy's and the
// CNI configuration, and the components' certificates and kubeconfigs.
func (n *Node) writeConfigs() error {
	for _, d := range []string{"containerd/root", "containerd/tmp", "containerd/opt", "containerd/certs.d/_default", "cni/net.d", "cni/ipam", "kubelet", "pod-logs", "volume-plugins", "pki"} {
		if err := os.MkdirAll(n.path(d), 0o755); err != nil {
			return err
		}
	}
	pause := PauseImage(n.cp.opts.Version)
	files := map[string]string{
		// Every pull goes to an address where nothing listens: an image
		// that was not imported fails at once instead of leaving the
		// machine.
		"containerd/certs.d/_default/hosts.toml": "server = \"https://127.0.0.1:1\"\n",
		"containerd/config.toml": fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q
temp = %[3]q
imports = []

[grpc]
  address = %[4]q
[ttrpc]
  address = "%[4]s.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
[plugins."io.containerd.shim.v1.manager"]
  socket_dir = %[6]q
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = %[7]q
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = %[8]q
[plugins."io.containerd.cri.v1.runtime"]
  # This VM withholds CAP_SYS_RESOURCE even from root: without it every
  # sandbox fails to start (runc cannot lower oom_score_adj).
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [%[9]q]
    conf_dir = %[10]q
`, n.path("containerd/root"), containerdState, n.path("containerd/tmp"), containerdSocket+"", n.path("containerd/opt"),
			shimSocketDir, pause, n.path("containerd/certs.d"), filepath.Join(n.bin, "cni"), n.path("cni/net.d")),
		// Pods get no default route: the pod range is on the bridge, the
		// Service range goes through the host.
		"cni/net.d/10-kubestash.conflist": fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "kubestash",
  "plugins": [{
    "type": "bridge",
    "bridge": %q,
    "isGateway": true,
    "ipMasq": false,
    "hairpinMode": true,
    "ipam": {
      "type": "host-local",
      "ranges": [[{"subnet": %q, "gateway": %q}]],
      "routes": [{"dst": %q}],
      "dataDir": %q
    }
  }]
}
`, BridgeName, PodCIDR, BridgeIP, ServiceCIDR, n.path("cni/ipam")),
		"resolv.conf": "",
		// crictl without this file warns on every call.
		"crictl.yaml": fmt.Sprintf("runtime-endpoint: unix://%[1]s\nimage-endpoint: unix://%[1]s\ntimeout: 20\n", containerdSocket),
	}
	for name, content := range files {
		if err := os.WriteFile(n.path(name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	pki := n.cp.pki
	serving, err := pki.ca.Issue(n.path("pki"), "kubelet-serving", CertOptions{CommonName: "system:node:" + n.Name, Organizations: []string{"system:nodes"}, DNSNames: []string{n.Name}, IPs: []net.IP{net.ParseIP(BridgeIP)}, Server: true})
	if err != nil {
		return err
	}
	for _, c := range []struct{ name, user, group string }{
		{"kubelet", "system:node:" + n.Name, "system:nodes"},
		{"kube-proxy", "system:kube-proxy", ""},
		{"kube-scheduler", "system:kube-scheduler", ""},
	} {
		var groups []string
		if c.group != "" {
			groups = []string{c.group}
		}
		kp, err := pki.ca.Issue(n.path("pki"), c.name, CertOptions{CommonName: c.user, Organizations: groups, Client: true})
		if err != nil {
			return err
		}
		cfg := clientcmdapi.NewConfig()
		cfg.Clusters["kubestash"] = &clientcmdapi.Cluster{Server: n.cp.APIServer.URL, CertificateAuthorityData: pki.ca.CertPEM}
		cfg.AuthInfos[c.name] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}
		cfg.Contexts["kubestash"] = &clientcmdapi.Context{Cluster: "kubestash", AuthInfo: c.name}
		cfg.CurrentContext = "kubestash"
		if err := clientcmd.WriteToFile(*cfg, n.path(c.name+".kubeconfig")); err != nil {
			return err
		}
	}
	kubelet := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: %[2]s
tlsPrivateKeyFile: %[3]s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[4]s}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://%[5]s
# cgroup v1 without systemd as PID 1.
cgroupDriver: cgroupfs
cgroupRoot: /%[6]s
failCgroupV1: false
failSwapOn: false
# Keep off the host: our own folders, no iptables chains, no DNS of the host.
volumePluginDir: %[7]s
podLogsDir: %[8]s
resolvConf: %[9]s
makeIPTablesUtilChains: false
oomScoreAdj: 0
# A shared disk and memory: evict only when nearly full; never delete our
# images (nothing can pull them back).
evictionHard: {memory.available: 50Mi, nodefs.available: 1%%, imagefs.available: 1%%, nodefs.inodesFree: 1%%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
registerNode: true
rotateCertificates: false
serverTLSBootstrap: false
nodeStatusUpdateFrequency: 5s
syncFrequency: 10s
fileCheckFrequency: 20s
maxPods: 110
`, BridgeIP, serving.CertFile, serving.KeyFile, pki.caFile, containerdSocket, CgroupRoot,
		n.path("volume-plugins"), n.path("pod-logs"), n.path("resolv.conf"))
	proxy := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: %[1]s}
hostnameOverride: %[2]s
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clusterCIDR: %[3]s
detectLocalMode: ClusterCIDR
nodePortAddresses: [%[4]s/32]
oomScoreAdj: 0
# Leave the host's conntrack sizing alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false, syncPeriod: 30s, minSyncPeriod: 1s}
`, n.path("kube-proxy.kubeconfig"), n.Name, PodCIDR, BridgeIP)
	for name, content := range map[string]string{"kubelet.yaml": kubelet, "kube-proxy.yaml": proxy} {
		if err := os.WriteFile(n.path(name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) startProcess(p *Process) error {
	p.LogPath = n.logPath(p.Name)
	p.Detach = n.cp.opts.Detach
	if err := p.Start(); err != nil {
		return err
	}
	n.state.Pids = append(n.state.Pids, p.Pid())
	return n.state.save()
}

func (n *Node) startContainerd(ctx context.Context) error {
	n.Containerd = &Process{Name: "containerd", Bin: filepath.Join(n.bin, "containerd"),
		Args: []string{"--config", n.path("containerd/config.toml"), "--log-level", "warn"},
		// The runc shim is found on PATH: ours, not the Docker engine's.
		Env: []string{"PATH=" + n.bin + ":" + os.Getenv("PATH")}}
	if err := n.startProcess(n.Containerd); err != nil {
		return err
	}
	return n.Containerd.waitReady(ctx, func(ctx context.Context) error {
		_, err := n.ctr(ctx, "version")
		return err
	})
}

// ctr runs containerd's own client in the namespace the CRI uses.
func (n *Node) ctr(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(n.bin, "ctr"), append([]string{"--address", containerdSocket, "--namespace", "k8s.io"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// TagImage gives an imported image another name, as a push of a new
// release would (e.g. to roll the Deployments to a new tag).
func (n *Node) TagImage(ctx context.Context, src, dst string) error {
	_, err := n.ctr(ctx, "images", "tag", "--force", src, dst)
	return err
}

func (n *Node) importImage(ctx context.Context, tarball string) error {
	out, err := n.ctr(ctx, "images", "import", "--no-unpack=false", tarball)
	if err != nil {
		return fmt.Errorf("import %s: %w", tarball, err)
	}
	for _, l := range strings.Split(out, "\n") {
		// "unpacking NAME (sha256:...)...done" or "NAME saved".
		for _, f := range strings.Fields(l) {
			if strings.HasPrefix(f, "ghcr.io/") {
				n.Images = append(n.Images, f)
			}
		}
	}
	return nil
}

func (n *Node) startKubelet(ctx context.Context) error {
	n.Kubelet = &Process{Name: "kubelet", Bin: filepath.Join(n.bin, "kubelet"), Args: []string{
		"--config=" + n.path("kubelet.yaml"),
		"--kubeconfig=" + n.path("kubelet.kubeconfig"),
		"--root-dir=" + n.path("kubelet"),
		"--hostname-override=" + n.Name,
		"--node-ip=" + BridgeIP,
		"--v=0",
	}}
	return n.startProcess(n.Kubelet)
}

func (n *Node) startScheduler(ctx context.Context) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	kc := n.path("kube-scheduler.kubeconfig")
	n.Scheduler = &Process{Name: "kube-scheduler", Bin: filepath.Join(n.bin, "kube-scheduler"), Args: []string{
		"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", port), "--leader-elect=false", "--v=0",
	}}
	return n.startProcess(n.Scheduler)
}

func (n *Node) startProxy(ctx context.Context) error {
	n.Proxy = &Process{Name: "kube-proxy", Bin: filepath.Join(n.bin, "kube-proxy"), Args: []string{
		"--config=" + n.path("kube-proxy.yaml"), "--v=0",
	}}
	return n.startProcess(n.Proxy)
}

// waitReady waits for the Node to be registered and Ready, and for the
// kubernetes Service to have the apiserver's endpoint.
func (n *Node) waitReady(ctx context.Context) error {
	return n.Kubelet.waitReady(ctx, func(ctx context.Context) error {
		for _, p := range []*Process{n.Containerd, n.Scheduler, n.Proxy} {
			if exited, err := p.Exited(); exited {
				return fmt.Errorf("%s exited (%v); log %s:\n%s", p.Name, err, p.LogPath, p.LogTail(20))
			}
		}
		node, err := n.cp.KubeClient.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("node %s not Ready", n.Name)
	})
}

// Stop stops the node's components, every container, and puts the host
// back as it was (Teardown). The control plane keeps running.
func (n *Node) Stop() {
	if n == nil {
		return
	}
	for _, p := range []*Process{n.Proxy, n.Scheduler, n.Kubelet} {
		if p != nil {
			_ = p.Stop(stopGrace)
		}
	}
	n.removeSandboxes()
	if n.Containerd != nil {
		_ = n.Containerd.Stop(stopGrace)
	}
	if n.state != nil {
		hostRef.Lock()
		if err := n.state.cleanNode(); err != nil {
			fmt.Fprintf(os.Stderr, "node: %v\n", err)
		}
		_ = n.state.save()
		hostRef.Unlock()
	}
	if n.cp != nil && n.cp.Node == n {
		n.cp.Node = nil
	}
}

// removeSandboxes stops and removes every pod sandbox through the CRI, so
// that the CNI plugin releases addresses and veths and containerd undoes
// its mounts, before containerd stops.
func (n *Node) removeSandboxes() {
	if n.Containerd == nil {
		return
	}
	if exited, _ := n.Containerd.Exited(); exited {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids, err := n.Crictl(ctx, "pods", "-q")
	if err != nil {
		return
	}
	for _, id := range strings.Fields(ids) {
		_, _ = n.Crictl(ctx, "stopp", id)
		_, _ = n.Crictl(ctx, "rmp", "-f", id)
	}
}

// Crictl runs crictl against the node's containerd.
func (n *Node) Crictl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(n.bin, "crictl"), append([]string{"--config", n.path("crictl.yaml")}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("crictl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// Processes lists the node's running components.
func (n *Node) Processes() []*Process {
	var ps []*Process
	for _, p := range []*Process{n.Proxy, n.Scheduler, n.Kubelet, n.Containerd} {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// ImageTarballs lists the image tarballs hack/images.sh wrote into
// bin/images.
func ImageTarballs(bin string) ([]string, error) {
	ts, err := filepath.Glob(filepath.Join(bin, "images", "*.tar"))
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("no image tarballs in %s/images: run make images (hack/images.sh)", bin)
	}
	return ts, nil
}

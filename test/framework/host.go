package framework

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The real node's network: a bridge of our own with the host's address on
// it. Pods get addresses from PodCIDR and no default route, so they reach
// nothing but each other, the host's bridge address and Services.
const (
	BridgeName  = "ksbr0"
	PodCIDR     = "10.88.0.0/16"
	BridgeIP    = "10.88.0.1"
	ServiceCIDR = "10.96.0.0/24"
	// forwardChain holds our FORWARD rules (Docker sets the policy to DROP).
	forwardChain = "KUBESTASH-FORWARD"
	// HostStateDir holds the lock and the record of what a node changed on
	// this host. It is fixed, not per run, because there can be only one
	// node per host (the kubelet and kube-proxy own fixed ports and paths)
	// and a run that crashed must be undone by the next one.
	HostStateDir = "/run/kubestash-node"
	// CgroupRoot is the kubelet's cgroupRoot, made in every hierarchy.
	CgroupRoot = "kubestash-node"
)

// sysctls the kubelet, kube-proxy or the CNI bridge may rewrite; their
// values are saved before a node starts and put back when it stops.
var savedSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
	"net/ipv4/ip_forward", "net/ipv4/conf/all/route_localnet",
	"net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
	"net/netfilter/nf_conntrack_max", "net/netfilter/nf_conntrack_tcp_timeout_established",
	"net/netfilter/nf_conntrack_tcp_timeout_close_wait",
}

// Paths the kubelet and the CNI libraries use whatever their
// configuration says. Entries that did not exist before a node started
// are removed when it stops.
var fixedPaths = []string{"/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/var/lib/cni", "/etc/cni", "/opt/cni"}

// hostState records, as it happens, every change a node makes to the host,
// in HostStateDir/state.json, so that Teardown can undo it from another
// process (hack/dev-env.sh down) or after a crash.
type hostState struct {
	// Sysctls are the values before the node started.
	Sysctls map[string]string `json:"sysctls"`
	// Existed lists the entries of fixedPaths (and their children) that
	// existed before.
	Existed []string `json:"existed"`
	// NftTables lists `nft list tables` before.
	NftTables []string `json:"nftTables"`
	Bridge    bool     `json:"bridge"`
	Forward   bool     `json:"forward"`
	// Dir is the node's folder (kubelet root, containerd root, ...): its
	// mounts are undone and it is removed.
	Dir string `json:"dir"`
	// Bin is the folder of the node's binaries: processes running them
	// are ours.
	Bin string `json:"bin"`
	// Pids of the node's daemons (containerd, kubelet, kube-proxy,
	// kube-scheduler), for a stop from another process.
	Pids []int `json:"pids"`
}

func statePath() string { return filepath.Join(HostStateDir, "state.json") }

func (s *hostState) save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write host state: %w", err)
	}
	return os.Rename(tmp, statePath())
}

func loadHostState() (*hostState, error) {
	b, err := os.ReadFile(statePath())
	if err != nil {
		return nil, err
	}
	s := &hostState{}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("read %s: %w", statePath(), err)
	}
	return s, nil
}

// hostLock is an exclusive lock on the host's one node.
type hostLock struct{ f *os.File }

// lockHost waits for the host lock (another test package or a dev
// environment may hold it) until ctx ends.
func lockHost(ctx context.Context) (*hostLock, error) {
	if err := os.MkdirAll(HostStateDir, 0o700); err != nil {
		return nil, fmt.Errorf("make %s: %w", HostStateDir, err)
	}
	f, err := os.OpenFile(filepath.Join(HostStateDir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open node lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &hostLock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock node: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for the host's node lock (%s/lock, held by another test package or dev environment): %w", HostStateDir, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// HostSnapshotWithoutNode waits until no node runs on this host (another
// package's or a dev environment's) and takes a HostSnapshot.
func HostSnapshotWithoutNode(ctx context.Context, bin string) (map[string]string, error) {
	for {
		l, err := lockHost(ctx)
		if err != nil {
			return nil, err
		}
		s, err := loadHostState()
		if err != nil || !s.alive() {
			defer l.unlock()
			return HostSnapshot(bin), nil
		}
		l.unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

func (l *hostLock) unlock() {
	if l != nil && l.f != nil {
		_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
		l.f.Close()
	}
}

// CanRunNode says why a real node cannot run here, or nil: it needs root,
// cgroups, runc and the components built by hack/tools.sh.
func CanRunNode(bin string) error {
	if os.Geteuid() != 0 {
		return errors.New("a real node needs root (it runs a kubelet, containerd and runc, and makes a bridge and firewall rules)")
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err != nil {
		if _, err2 := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err2 != nil {
			return errors.New("a real node needs cgroups (/sys/fs/cgroup has neither v1 hierarchies nor v2)")
		}
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return errors.New("a real node needs runc (hack/tools.sh installs Debian's package)")
	}
	for _, b := range []string{"kubelet", "kube-proxy", "kube-scheduler", "containerd", "containerd-shim-runc-v2", "ctr", "cni/bridge", "cni/host-local", "cni/loopback"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return fmt.Errorf("missing %s in %s: run hack/tools.sh first", b, bin)
		}
	}
	return nil
}

// prepareHost records the host's state and makes the bridge and forward
// rules. It first undoes what a crashed earlier node left.
func prepareHost(bin string) (*hostState, error) {
	if _, err := os.Stat(statePath()); err == nil {
		if err := Teardown(); err != nil {
			return nil, fmt.Errorf("undo the node an earlier run left: %w", err)
		}
	}
	s := &hostState{Sysctls: map[string]string{}, Bin: bin}
	for _, k := range savedSysctls {
		if b, err := os.ReadFile(filepath.Join("/proc/sys", k)); err == nil {
			s.Sysctls[k] = strings.TrimSpace(string(b))
		}
	}
	for _, p := range fixedPaths {
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		s.Existed = append(s.Existed, p)
		ents, _ := os.ReadDir(p)
		for _, e := range ents {
			s.Existed = append(s.Existed, filepath.Join(p, e.Name()))
		}
	}
	s.NftTables = nftTables()
	if err := s.save(); err != nil {
		return nil, err
	}
	if err := makeBridge(s); err != nil {
		return s, err
	}
	if err := addForwardRules(s); err != nil {
		return s, err
	}
	return s, nil
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func makeBridge(s *hostState) error {
	if err := run("ip", "link", "add", BridgeName, "type", "bridge"); err != nil {
		return err
	}
	s.Bridge = true
	if err := s.save(); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"addr", "add", BridgeIP + "/16", "dev", BridgeName},
		{"link", "set", BridgeName, "up"},
		// Host traffic to a Service address without an endpoint must
		// not take the default route off the machine.
		{"route", "add", ServiceCIDR, "dev", BridgeName},
	} {
		if err := run("ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// addForwardRules lets pods talk to each other across our bridge and
// drops anything else from the pod range: nothing a pod sends is ever
// forwarded off the machine.
func addForwardRules(s *hostState) error {
	if err := run("iptables", "-w", "-N", forwardChain); err != nil {
		return err
	}
	s.Forward = true
	if err := s.save(); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"-A", forwardChain, "-i", BridgeName, "-o", BridgeName, "-j", "ACCEPT"},
		{"-A", forwardChain, "-s", PodCIDR, "-j", "DROP"},
		{"-A", forwardChain, "-d", PodCIDR, "-j", "DROP"},
		{"-I", "FORWARD", "1", "-j", forwardChain},
	} {
		if err := run("iptables", append([]string{"-w"}, args...)...); err != nil {
			return err
		}
	}
	return nil
}

func nftTables() []string {
	out, err := exec.Command("nft", "list", "tables").Output()
	if err != nil {
		return nil
	}
	var ts []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(strings.TrimPrefix(l, "table ")); l != "" {
			ts = append(ts, l)
		}
	}
	sort.Strings(ts)
	return ts
}

// hostRef shares the host's network among the control planes of one
// process (the disaster-recovery test starts a second one): the first
// takes the lock and prepares the host, the last puts it back.
var hostRef struct {
	sync.Mutex
	n     int
	lock  *hostLock
	state *hostState
}

// acquireHost takes the host's node lock and prepares the network, or
// shares them when this process already holds them. A node left running by
// a dev environment (live processes in the record) is waited for; one left
// by a crashed run is undone.
func acquireHost(ctx context.Context, bin string) error {
	hostRef.Lock()
	defer hostRef.Unlock()
	if hostRef.n > 0 {
		hostRef.n++
		return nil
	}
	for {
		lock, err := lockHost(ctx)
		if err != nil {
			return err
		}
		if s, err := loadHostState(); err == nil && s.alive() {
			lock.unlock()
			select {
			case <-ctx.Done():
				return fmt.Errorf("a node is running on this host (a dev environment? hack/dev-env.sh down stops it): %w", ctx.Err())
			case <-time.After(2 * time.Second):
				continue
			}
		}
		s, err := prepareHost(bin)
		if err != nil {
			if s != nil {
				_ = Teardown()
			}
			lock.unlock()
			return err
		}
		hostRef.n, hostRef.lock, hostRef.state = 1, lock, s
		return nil
	}
}

// afterTeardown, when set (tests), runs once the host is put back and
// before the lock goes to another package's node.
var afterTeardown func()

// releaseHost puts the host back once no control plane of this process
// uses it.
func releaseHost() {
	hostRef.Lock()
	defer hostRef.Unlock()
	if hostRef.n == 0 {
		return
	}
	if hostRef.n--; hostRef.n > 0 {
		return
	}
	if err := Teardown(); err != nil {
		fmt.Fprintf(os.Stderr, "put the host back: %v\n", err)
	}
	if afterTeardown != nil {
		afterTeardown()
	}
	hostRef.lock.unlock()
	hostRef.lock, hostRef.state = nil, nil
}

// alive: a daemon of the recorded node still runs.
func (s *hostState) alive() bool {
	for _, pid := range s.Pids {
		if ownProcess(pid, s.Bin) {
			return true
		}
	}
	return false
}

// cleanNode stops what a node left: its daemons, every container and
// shim, kube-proxy's rules, mounts, cgroups, the kubelet's fixed paths and
// sysctls. The bridge and forward rules stay (they belong to the host's
// network, not to one node).
func (s *hostState) cleanNode() error {
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, pid := range s.Pids {
		if ownProcess(pid, s.Bin) {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	waitPidsGone(s.Pids, s.Bin, 10*time.Second)
	// Containers (and their shims) outlive containerd: kill every process
	// in our cgroups and every shim of ours.
	note(killCgroupProcesses())
	if s.Bin != "" {
		killByExe(filepath.Join(s.Bin, "containerd-shim-runc-v2"))
		killByExe(filepath.Join(s.Bin, "containerd"))
		// kube-proxy's own clean-up of its iptables, ip6tables and nft rules.
		_ = exec.Command(filepath.Join(s.Bin, "kube-proxy"), "--cleanup", "--v=0").Run()
	}
	removeKubeChains()
	if s.Dir != "" {
		note(unmountUnder(s.Dir))
	}
	note(unmountUnder(containerdState))
	removeNewNftTables(s.NftTables)
	note(removeCgroups())
	removeNewPaths(s.Existed)
	note(s.restoreSysctls())
	if s.Dir != "" && os.Getenv("KUBESTASH_KEEP_ENV") == "" {
		note(os.RemoveAll(s.Dir))
	}
	for _, e := range []string{containerdState, shimSocketDir, containerdSocket, containerdSocket + ".ttrpc"} {
		_ = os.RemoveAll(e)
	}
	s.Pids, s.Dir = nil, ""
	return errors.Join(errs...)
}

func (s *hostState) restoreSysctls() error {
	var errs []error
	for k, v := range s.Sysctls {
		p := filepath.Join("/proc/sys", k)
		if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == v {
			continue
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// Teardown undoes what the host's node changed, from its record in
// HostStateDir: it stops the node's processes and every container, undoes
// mounts, firewall rules, the bridge, cgroups and sysctls, and removes the
// paths the node made. It does nothing when no node ran. Each step runs
// even when an earlier one failed; the first error is returned. The caller
// holds the host lock (or is the process that made the node).
func Teardown() error {
	s, err := loadHostState()
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	errs := []error{s.cleanNode()}
	if s.Forward {
		_ = exec.Command("iptables", "-w", "-D", "FORWARD", "-j", forwardChain).Run()
		_ = exec.Command("iptables", "-w", "-F", forwardChain).Run()
		errs = append(errs, ignoreMissing(run("iptables", "-w", "-X", forwardChain)))
	}
	if s.Bridge {
		errs = append(errs, ignoreMissing(run("ip", "link", "del", BridgeName)))
	}
	errs = append(errs, s.restoreSysctls())
	if err := errors.Join(errs...); err != nil {
		_ = s.save()
		return fmt.Errorf("tear the node down: %w", err)
	}
	// Only a complete teardown forgets the record, so that a failed one is
	// retried by the next start.
	_ = os.Remove(statePath())
	return nil
}

// TeardownLocked takes the host lock and tears down a node left by
// another process (hack/dev-env.sh down).
func TeardownLocked(ctx context.Context) error {
	l, err := lockHost(ctx)
	if err != nil {
		return err
	}
	defer l.unlock()
	return Teardown()
}

func ignoreMissing(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range []string{"Cannot find device", "No chain/target/match", "does not exist", "not found"} {
		if strings.Contains(msg, s) {
			return nil
		}
	}
	return err
}

// ownProcess: pid runs a binary from bin.
func ownProcess(pid int, bin string) bool {
	if pid <= 0 || bin == "" {
		return false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && strings.HasPrefix(exe, bin+"/")
}

func waitPidsGone(pids []int, bin string, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		alive := false
		for _, pid := range pids {
			if ownProcess(pid, bin) {
				alive = true
			}
		}
		if !alive {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, pid := range pids {
		if ownProcess(pid, bin) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// killByExe kills every process running exactly the binary exe.
func killByExe(exe string) {
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if got, err := os.Readlink(filepath.Join("/proc", d.Name(), "exe")); err == nil && (got == exe || got == exe+" (deleted)") {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// cgroupHierarchies lists the mounted cgroup hierarchies (v1 controllers,
// the named systemd one and the unified v2 one).
func cgroupHierarchies() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, fl := range fields {
			if fl == "-" && i+1 < len(fields) && (fields[i+1] == "cgroup" || fields[i+1] == "cgroup2") {
				out = append(out, fields[4])
			}
		}
	}
	return out
}

// makeCgroupRoot makes CgroupRoot in every hierarchy; in cpuset the new
// group needs the parent's cpus and mems before anything can join it.
func makeCgroupRoot() error {
	for _, h := range cgroupHierarchies() {
		d := filepath.Join(h, CgroupRoot)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("make cgroup %s: %w", d, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if b, err := os.ReadFile(filepath.Join(h, f)); err == nil {
				if err := os.WriteFile(filepath.Join(d, f), b, 0o644); err != nil {
					return fmt.Errorf("set %s of %s: %w", f, d, err)
				}
			}
		}
	}
	return nil
}

func killCgroupProcesses() error {
	for round := 0; round < 20; round++ {
		found := false
		for _, h := range cgroupHierarchies() {
			_ = filepath.WalkDir(filepath.Join(h, CgroupRoot), func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
					return nil
				}
				b, _ := os.ReadFile(p)
				for _, l := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(l); err == nil && pid > 1 {
						found = true
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
				return nil
			})
		}
		if !found {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("processes remain in the node's cgroups after SIGKILL")
}

// removeCgroups removes CgroupRoot and everything under it, deepest
// first, from every hierarchy.
func removeCgroups() error {
	var errs []error
	for _, h := range cgroupHierarchies() {
		root := filepath.Join(h, CgroupRoot)
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			var err error
			for i := 0; i < 50; i++ {
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	if dir == "" {
		return nil
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var ms []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			ms = append(ms, mp)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return len(ms[i]) > len(ms[j]) })
	return ms
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

func unmountUnder(dir string) error {
	var errs []error
	for round := 0; round < 5; round++ {
		ms := mountsUnder(dir)
		if len(ms) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, m := range ms {
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
			}
		}
	}
	if ms := mountsUnder(dir); len(ms) > 0 {
		errs = append(errs, fmt.Errorf("mounts remain under %s: %v", dir, ms))
	}
	return errors.Join(errs...)
}

// removeKubeChains removes every KUBE-* chain left in iptables and
// ip6tables (the kubelet's canaries, what kube-proxy --cleanup missed).
// Only one node runs per host, so every such chain is ours.
func removeKubeChains() {
	for _, tool := range []string{"iptables", "ip6tables"} {
		out, err := exec.Command(tool + "-save").Output()
		if err != nil {
			continue
		}
		table := ""
		var chains [][2]string
		var jumps [][]string
		for _, l := range strings.Split(string(out), "\n") {
			switch {
			case strings.HasPrefix(l, "*"):
				table = l[1:]
			case strings.HasPrefix(l, ":KUBE-"):
				chains = append(chains, [2]string{table, strings.Fields(l[1:])[0]})
			case strings.HasPrefix(l, "-A ") && strings.Contains(l, " -j KUBE-") && !strings.HasPrefix(l, "-A KUBE-"):
				// A jump from a built-in chain: delete that rule.
				jumps = append(jumps, append([]string{"-w", "-t", table, "-D"}, saveFields(l)[1:]...))
			}
		}
		for _, j := range jumps {
			_ = exec.Command(tool, j...).Run()
		}
		for _, c := range chains {
			_ = exec.Command(tool, "-w", "-t", c[0], "-F", c[1]).Run()
		}
		for _, c := range chains {
			_ = exec.Command(tool, "-w", "-t", c[0], "-X", c[1]).Run()
		}
	}
}

// saveFields splits an iptables-save rule into arguments; a comment is
// saved in double quotes.
func saveFields(l string) []string {
	var out []string
	var cur strings.Builder
	quoted, have := false, false
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case c == '\\' && quoted && i+1 < len(l):
			i++
			cur.WriteByte(l[i])
		case c == '"':
			quoted, have = !quoted, true
		case c == ' ' && !quoted:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

func removeNewNftTables(before []string) {
	had := map[string]bool{}
	for _, t := range before {
		had[t] = true
	}
	for _, t := range nftTables() {
		if had[t] {
			continue
		}
		// Only the tables kube-proxy makes: never another program's.
		if strings.HasSuffix(t, " kube-proxy") || strings.HasSuffix(t, " mangle") || strings.HasSuffix(t, " nat") || strings.HasSuffix(t, " filter") {
			_ = exec.Command("nft", append([]string{"delete", "table"}, strings.Fields(t)...)...).Run()
		}
	}
}

func removeNewPaths(existed []string) {
	had := map[string]bool{}
	for _, p := range existed {
		had[p] = true
	}
	for _, p := range fixedPaths {
		if !had[p] {
			_ = unmountUnder(p)
			_ = os.RemoveAll(p)
			continue
		}
		ents, _ := os.ReadDir(p)
		for _, e := range ents {
			if c := filepath.Join(p, e.Name()); !had[c] {
				_ = unmountUnder(c)
				_ = os.RemoveAll(c)
			}
		}
	}
}

// HostSnapshot describes what a node could change on this host: firewall
// rules, nft tables, links, routes, network namespaces, mounts, cgroups,
// sysctls, the kubelet's fixed paths and processes running binaries from
// bin. Two snapshots are equal when a node left the host as it found it.
func HostSnapshot(bin string) map[string]string {
	out := map[string]string{}
	cmd := func(name string, args ...string) string {
		b, _ := exec.Command(name, args...).Output()
		return string(b)
	}
	rules := func(s string) string {
		var keep []string
		for _, l := range strings.Split(s, "\n") {
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			// Chain policies carry packet counters.
			if i := strings.Index(l, " ["); strings.HasPrefix(l, ":") && i > 0 {
				l = l[:i]
			}
			keep = append(keep, l)
		}
		return strings.Join(keep, "\n")
	}
	out["iptables"] = rules(cmd("iptables-save"))
	out["ip6tables"] = rules(cmd("ip6tables-save"))
	out["nft tables"] = strings.Join(nftTables(), "\n")
	var links []string
	for _, l := range strings.Split(cmd("ip", "-o", "link", "show"), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			links = append(links, strings.TrimSuffix(f[1], ":"))
		}
	}
	out["links"] = strings.Join(links, " ")
	out["routes"] = cmd("ip", "route", "show")
	out["netns"] = cmd("ip", "netns", "list")
	var mounts []string
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 4 {
				mounts = append(mounts, f[4])
			}
		}
	}
	sort.Strings(mounts)
	out["mounts"] = strings.Join(mounts, "\n")
	var cgroups []string
	for _, h := range cgroupHierarchies() {
		ents, _ := os.ReadDir(h)
		for _, e := range ents {
			if e.IsDir() {
				cgroups = append(cgroups, filepath.Join(h, e.Name()))
			}
		}
	}
	out["cgroups"] = strings.Join(cgroups, "\n")
	var sysctls []string
	for _, k := range savedSysctls {
		if b, err := os.ReadFile(filepath.Join("/proc/sys", k)); err == nil {
			sysctls = append(sysctls, k+"="+strings.TrimSpace(string(b)))
		}
	}
	out["sysctls"] = strings.Join(sysctls, "\n")
	var paths []string
	for _, p := range fixedPaths {
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		paths = append(paths, p)
		ents, _ := os.ReadDir(p)
		for _, e := range ents {
			paths = append(paths, filepath.Join(p, e.Name()))
		}
	}
	out["paths"] = strings.Join(paths, "\n")
	var procs []string
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || !ownProcess(pid, bin) {
			continue
		}
		// Only the node's own daemons: other test packages run control
		// planes from bin at the same time.
		exe, _ := os.Readlink(filepath.Join("/proc", d.Name(), "exe"))
		switch filepath.Base(exe) {
		case "containerd", "containerd-shim-runc-v2", "kubelet", "kube-proxy", "kube-scheduler":
			procs = append(procs, exe)
		}
	}
	sort.Strings(procs)
	out["processes"] = strings.Join(procs, "\n")
	if _, err := os.Stat(statePath()); err == nil {
		out["node record"] = statePath()
	}
	return out
}

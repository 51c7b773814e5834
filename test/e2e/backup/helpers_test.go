package backup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/restic"
	"kubestash.dev/kubestash/pkg/restic/restictest"
	"kubestash.dev/kubestash/test/framework"
)

// The failure tests each get a namespace of their own with one S3
// BackupStorage (its own prefix in the bucket), one BackupConfiguration
// with a session "manual" whose schedule never comes, and a PVC on a
// folder of their own. Sessions are started by creating BackupSessions.
const (
	failSession = "manual"
	failRepo    = "s3-repo"
)

// failOptions describe one failure test's namespace.
type failOptions struct {
	NS        string // namespace; also the storage's prefix
	BC        string // BackupConfiguration
	Directory string // the Repository's directory
	Password  string // RESTIC_PASSWORD of the encryption Secret
	// Data is what the PVC holds at first; a few small files if zero.
	Data restictest.Dataset
	// Variables are set on the backup task (the agent's environment).
	Variables map[string]string
	// StorageNS, when set, is another namespace holding the BackupStorage
	// and its Secret, shared with NS by usagePolicy from: All.
	StorageNS string
	// KeepLast is the RetentionPolicy's successfulSnapshots.last and
	// HistoryLimit the session's sessionHistoryLimit; 0: 10.
	KeepLast, HistoryLimit int
}

// failEnv is a namespace set up by newFailEnv, with its initial backup
// Succeeded.
type failEnv struct {
	t      *testing.T
	ctx    context.Context
	client versioned.Interface
	o      failOptions
	// data is the PVC's folder.
	data string
	// first is the initial BackupSession (Succeeded).
	first string
}

// newFailEnv applies Secrets, BackupStorage, RetentionPolicy and
// BackupConfiguration in a new namespace and waits for the initial backup
// to succeed.
func newFailEnv(ctx context.Context, t *testing.T, o failOptions) *failEnv {
	t.Helper()
	client, err := versioned.NewForConfig(env.Config)
	require.NoError(t, err)
	if o.Password == "" {
		o.Password = "pw-" + o.NS
	}
	if o.Data == (restictest.Dataset{}) {
		o.Data = restictest.Dataset{SmallFiles: 30, SmallMax: 4 << 10, Seed: 21}
	}
	if o.KeepLast == 0 {
		o.KeepLast = 10
	}
	if o.HistoryLimit == 0 {
		o.HistoryLimit = 10
	}
	e := &failEnv{t: t, ctx: ctx, client: client, o: o, data: t.TempDir()}
	_, err = restictest.Generate(filepath.Join(e.data, "initial"), o.Data)
	require.NoError(t, err)
	_, err = env.KubeClient.CoreV1().Namespaces().Create(ctx, tenantNamespace(o.NS), metav1.CreateOptions{})
	require.NoError(t, err)
	usage := ""
	if o.StorageNS == "" {
		o.StorageNS = o.NS
	} else {
		_, err = env.KubeClient.CoreV1().Namespaces().Create(ctx, tenantNamespace(o.StorageNS), metav1.CreateOptions{})
		require.NoError(t, err)
		usage = "  usagePolicy: {allowedNamespaces: {from: All}}\n"
	}
	e.o = o
	pvClaim(ctx, t, o.NS, "target-pvc", e.data)

	var vars strings.Builder
	if len(o.Variables) > 0 {
		keys := make([]string, 0, len(o.Variables))
		for k := range o.Variables {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		vars.WriteString("        variables:\n")
		for _, k := range keys {
			fmt.Fprintf(&vars, "        - {name: %s, value: %q}\n", k, o.Variables[k])
		}
	}
	m := env.MinIO
	_, _, err = env.Kubectl(ctx, e.secretManifest("s3-secret")+"---\n"+e.secretManifest("encrypt-secret")+"---\n"+fmt.Sprintf(`apiVersion: storage.kubestash.com/v1alpha1
kind: BackupStorage
metadata: {name: s3-storage, namespace: %[11]s}
spec:
  storage:
    provider: s3
    s3: {endpoint: %[2]s, bucket: %[3]s, region: us-east-1, prefix: %[1]s, secretName: s3-secret}
%[12]s---
apiVersion: storage.kubestash.com/v1alpha1
kind: RetentionPolicy
metadata: {name: keep, namespace: %[1]s}
spec:
  successfulSnapshots: {last: %[9]d}
  failedSnapshots: {last: 10}
---
apiVersion: core.kubestash.com/v1alpha1
kind: BackupConfiguration
metadata: {name: %[4]s, namespace: %[1]s}
spec:
  target: {apiGroup: "", kind: PersistentVolumeClaim, name: target-pvc, namespace: %[1]s}
  backends:
  - name: s3
    storageRef: {name: s3-storage, namespace: %[11]s}
    retentionPolicy: {name: keep}
  sessions:
  - name: %[6]s
    # Only the initial backup and the sessions the test creates run.
    scheduler: {schedule: "0 0 1 1 *"}
    sessionHistoryLimit: %[10]d
    repositories:
    - name: %[7]s
      backend: s3
      directory: %[5]s
      encryptionSecret: {name: encrypt-secret}
    addon:
      name: pvc-addon
      tasks:
      - name: logical-backup
%[8]s`, o.NS, m.Endpoint, m.Bucket, o.BC, o.Directory, failSession, failRepo, vars.String(), o.KeepLast, o.HistoryLimit, o.StorageNS, usage), "apply", "-f", "-")
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		l, err := client.CatalogV1alpha1().BackupSessions(o.NS).List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) == 0 {
			return false
		}
		e.first = l.Items[0].Name
		return true
	}, 2*time.Minute, time.Second, "the initial BackupSession of %s", o.NS)
	require.Equal(t, catalogv1alpha1.BackupSessionSucceeded, e.waitSession(e.first), "the initial backup")
	return e
}

// secretManifest is the storage Secret ("s3-secret") or the encryption
// Secret ("encrypt-secret") of the namespace, as YAML.
func (e *failEnv) secretManifest(name string) string {
	data := fmt.Sprintf("{AWS_ACCESS_KEY_ID: %s, AWS_SECRET_ACCESS_KEY: %s}", env.MinIO.AccessKey, env.MinIO.SecretKey)
	if name == "encrypt-secret" {
		data = fmt.Sprintf("{RESTIC_PASSWORD: %s}", e.o.Password)
	}
	ns := e.o.NS
	if name == "s3-secret" {
		ns = e.o.StorageNS
	}
	return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: %s, namespace: %s}\nstringData: %s\n", name, ns, data)
}

// applySecret (re)creates one of the namespace's Secrets.
func (e *failEnv) applySecret(name string) {
	_, _, err := env.Kubectl(e.ctx, e.secretManifest(name), "apply", "-f", "-")
	require.NoError(e.t, err)
}

// sessionName is the n-th session the test starts.
func (e *failEnv) sessionName(n int) string {
	return fmt.Sprintf("%s-%s-%d", e.o.BC, failSession, n)
}

// backupNow starts a session, as `kubectl kubestash trigger` does.
func (e *failEnv) backupNow(name string) {
	e.t.Helper()
	_, err := e.client.CatalogV1alpha1().BackupSessions(e.o.NS).Create(e.ctx, &catalogv1alpha1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.o.NS, Labels: map[string]string{catalogv1alpha1.LabelInvokerName: e.o.BC}},
		Spec: catalogv1alpha1.BackupSessionSpec{
			Invoker: corev1.TypedLocalObjectReference{APIGroup: ptr.To("core.kubestash.com"), Kind: "BackupConfiguration", Name: e.o.BC},
			Session: failSession,
		},
	}, metav1.CreateOptions{})
	require.NoError(e.t, err)
}

// waitSession waits for a session to end and returns its phase.
func (e *failEnv) waitSession(name string) catalogv1alpha1.BackupSessionPhase {
	return waitSessionIn(e.ctx, e.t, e.client, e.o.NS, name, 4*time.Minute)
}

func waitSessionIn(ctx context.Context, t *testing.T, c versioned.Interface, ns, name string, timeout time.Duration) catalogv1alpha1.BackupSessionPhase {
	t.Helper()
	var bs *catalogv1alpha1.BackupSession
	require.Eventually(t, func() bool {
		var err error
		bs, err = c.CatalogV1alpha1().BackupSessions(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && bs.Status.Phase.IsTerminal()
	}, timeout, time.Second, "session %s/%s ends", ns, name)
	if bs.Status.Phase != catalogv1alpha1.BackupSessionSucceeded {
		t.Logf("session %s/%s ended %s: %+v", ns, name, bs.Status.Phase, bs.Status.Conditions)
	}
	return bs.Status.Phase
}

// session gets a BackupSession.
func (e *failEnv) session(name string) *catalogv1alpha1.BackupSession {
	e.t.Helper()
	bs, err := e.client.CatalogV1alpha1().BackupSessions(e.o.NS).Get(e.ctx, name, metav1.GetOptions{})
	require.NoError(e.t, err)
	return bs
}

// snapshot gets the Snapshot a session made.
func (e *failEnv) snapshot(session string) *catalogv1alpha1.Snapshot {
	e.t.Helper()
	s, err := e.client.CatalogV1alpha1().Snapshots(e.o.NS).Get(e.ctx, catalogv1alpha1.GenerateSnapshotName(failRepo, session), metav1.GetOptions{})
	require.NoError(e.t, err)
	return s
}

// assertFirstUntouched: the initial backup is still there and Succeeded.
func (e *failEnv) assertFirstUntouched() {
	e.t.Helper()
	first := e.snapshot(e.first)
	assert.Equal(e.t, catalogv1alpha1.SnapshotSucceeded, first.Status.Phase, "the earlier backup is untouched")
	assert.True(e.t, ptr.Deref(first.Status.Integrity, false))
}

// waitBC waits until the BackupConfiguration satisfies ok.
func (e *failEnv) waitBC(what string, ok func(bc *corev1alpha1.BackupConfiguration) bool) *corev1alpha1.BackupConfiguration {
	e.t.Helper()
	var bc *corev1alpha1.BackupConfiguration
	require.Eventually(e.t, func() bool {
		var err error
		bc, err = e.client.CoreV1alpha1().BackupConfigurations(e.o.NS).Get(e.ctx, e.o.BC, metav1.GetOptions{})
		return err == nil && ok(bc)
	}, 2*time.Minute, time.Second, "BackupConfiguration %s/%s: %s", e.o.NS, e.o.BC, what)
	return bc
}

// addData writes ds into a new folder of the PVC.
func (e *failEnv) addData(folder string, ds restictest.Dataset) {
	e.t.Helper()
	_, err := restictest.Generate(filepath.Join(e.data, folder), ds)
	require.NoError(e.t, err)
}

// repo opens the session's restic repository, as a person with the
// restic CLI would.
func (e *failEnv) repo() *restic.Repo {
	e.t.Helper()
	m := env.MinIO
	r, err := restic.New(restic.Options{
		Binary:   filepath.Join(binDir, "restic"),
		Password: e.o.Password,
		Location: restic.Location{Provider: restic.ProviderS3, Path: strings.TrimPrefix(e.o.Directory, "/") + "/repository/v1/" + failSession + "/dump",
			S3: &restic.S3{Endpoint: m.Endpoint, Bucket: m.Bucket, Prefix: e.o.NS, Region: "us-east-1", AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey}},
		ScratchDir: e.t.TempDir(),
	})
	require.NoError(e.t, err)
	return r
}

// podLogsOnFailure prints the end of the container logs of the
// namespace's pods (the agent's), read through the kubelet as kubectl
// logs does, when t failed.
func podLogsOnFailure(t *testing.T, ns string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		pods, err := env.KubeClient.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Logf("list pods of %s: %v", ns, err)
			return
		}
		for _, p := range pods.Items {
			b, err := env.KubeClient.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: ptr.To[int64](25)}).DoRaw(ctx)
			if err != nil {
				t.Logf("logs of pod %s/%s (%s): %v", ns, p.Name, p.Status.Phase, err)
				continue
			}
			t.Logf("pod %s/%s (%s):\n%s", ns, p.Name, p.Status.Phase, b)
		}
	})
}

// process is a process on this machine; a container's processes are
// host processes too, seen in /proc.
type process struct {
	pid, ppid int
	args      []string
}

// findProcesses lists the processes that satisfy match.
func findProcesses(match func(p process) bool) []process {
	ents, _ := os.ReadDir("/proc")
	var out []process
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if p, ok := readProcess(pid); ok && match(p) {
			out = append(out, p)
		}
	}
	return out
}

func readProcess(pid int) (process, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return process{}, false
	}
	p := process{pid: pid, args: strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// pid (comm) state ppid ...
		if i := bytes.LastIndexByte(st, ')'); i > 0 {
			if f := strings.Fields(string(st[i+1:])); len(f) > 1 {
				p.ppid, _ = strconv.Atoi(f[1])
			}
		}
	}
	return p, true
}

// resticBackupIn matches the restic backup that the agent of a session's
// backup Job runs.
func resticBackupIn(session string) func(p process) bool {
	agent := agentBackupOf(session)
	return func(p process) bool {
		if len(p.args) < 2 || filepath.Base(p.args[0]) != "restic" || p.args[1] != "backup" {
			return false
		}
		parent, ok := readProcess(p.ppid)
		return ok && agent(parent)
	}
}

// agentBackupOf matches the agent of a session's backup Job.
func agentBackupOf(session string) func(p process) bool {
	return func(p process) bool {
		if len(p.args) < 2 || filepath.Base(p.args[0]) != "agent" || p.args[1] != "backup" {
			return false
		}
		for _, a := range p.args {
			if a == "--backupsession="+session {
				return true
			}
		}
		return false
	}
}

// bytesRead is what a process has read so far (/proc/PID/io rchar).
func bytesRead(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "rchar: "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return -1
}

// waitBackupReading waits for the restic of a session's backup to have
// read at least n bytes: it holds its lock and is in the middle of the
// data.
func waitBackupReading(t *testing.T, session string, n int64) process {
	t.Helper()
	var p process
	require.Eventually(t, func() bool {
		ps := findProcesses(resticBackupIn(session))
		if len(ps) != 1 {
			return false
		}
		p = ps[0]
		return bytesRead(p.pid) >= n
	}, 3*time.Minute, 20*time.Millisecond, "restic backs up session %s and has read %d bytes", session, n)
	return p
}

// waitGone waits until no process satisfies match.
func waitGone(t *testing.T, what string, match func(p process) bool, timeout time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return len(findProcesses(match)) == 0 }, timeout, 100*time.Millisecond, "%s ended", what)
}

// restoreLatest restores the latest Snapshot of repository repo of ns, in
// the cluster cp, into a new PVC on an empty folder, with the RestoreSession
// name, and checks that the folder then equals want byte for byte (modes,
// mtimes, symlinks, empty folders). It returns the ended RestoreSession.
func restoreLatest(ctx context.Context, t *testing.T, cp *framework.ControlPlane, ns, name, repo, want string) *catalogv1alpha1.RestoreSession {
	t.Helper()
	return restoreLatestFrom(ctx, t, cp, ns, name, ns, repo, want)
}

// restoreLatestFrom is restoreLatest from repository repo of namespace
// dataNS, with the encryption Secret of ns.
func restoreLatestFrom(ctx context.Context, t *testing.T, cp *framework.ControlPlane, ns, name, dataNS, repo, want string) *catalogv1alpha1.RestoreSession {
	t.Helper()
	client, err := versioned.NewForConfig(cp.Config)
	require.NoError(t, err)
	restored := t.TempDir()
	pvc := name + "-pvc"
	pvClaimIn(ctx, t, cp.KubeClient, ns, pvc, restored)
	_, _, err = cp.Kubectl(ctx, fmt.Sprintf(`apiVersion: catalog.kubestash.com/v1alpha1
kind: RestoreSession
metadata: {name: %s, namespace: %s}
spec:
  target: {apiGroup: "", kind: PersistentVolumeClaim, name: %s}
  dataSource:
    namespace: %s
    repository: %s
    snapshot: latest
    encryptionSecret: {name: encrypt-secret}
  addon:
    name: pvc-addon
    tasks:
    - name: logical-backup-restore
`, name, ns, pvc, dataNS, repo), "apply", "-f", "-")
	require.NoError(t, err)
	var rs *catalogv1alpha1.RestoreSession
	require.Eventually(t, func() bool {
		rs, err = client.CatalogV1alpha1().RestoreSessions(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && rs.Status.Phase.IsTerminal()
	}, 3*time.Minute, time.Second, "restore %s/%s ends", ns, name)
	require.Equal(t, catalogv1alpha1.RestoreSucceeded, rs.Status.Phase, "%+v", rs.Status)
	wantDigest, err := restictest.Digest(want)
	require.NoError(t, err)
	got, err := restictest.Digest(restored)
	require.NoError(t, err)
	assert.Empty(t, restictest.Diff(wantDigest, got, 10), "the restored tree differs from %s", want)
	return rs
}

// tenantNamespace is a namespace as a cluster that follows the Pod
// Security Standards gives its tenants: baseline enforced, so every Job
// the controller makes there must meet it.
func tenantNamespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce":         "baseline",
		"pod-security.kubernetes.io/enforce-version": "latest",
	}}}
}

// s3StorageManifest is the YAML of a namespace with the storage Secret
// (s3-secret, the test MinIO's keys), the encryption Secret
// (encrypt-secret, password) and the BackupStorage s3-storage on the test
// bucket under prefix.
func s3StorageManifest(ns, prefix, password string) string {
	m := env.MinIO
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[1]s, labels: {pod-security.kubernetes.io/enforce: baseline, pod-security.kubernetes.io/enforce-version: latest}}
---
apiVersion: v1
kind: Secret
metadata: {name: s3-secret, namespace: %[1]s}
stringData: {AWS_ACCESS_KEY_ID: %[2]s, AWS_SECRET_ACCESS_KEY: %[3]s}
---
apiVersion: v1
kind: Secret
metadata: {name: encrypt-secret, namespace: %[1]s}
stringData: {RESTIC_PASSWORD: %[6]s}
---
apiVersion: storage.kubestash.com/v1alpha1
kind: BackupStorage
metadata: {name: s3-storage, namespace: %[1]s}
spec:
  storage:
    provider: s3
    s3: {endpoint: %[4]s, bucket: %[5]s, region: us-east-1, prefix: %[7]s, secretName: s3-secret}
`, ns, m.AccessKey, m.SecretKey, m.Endpoint, m.Bucket, password, prefix)
}

// killContainer kills the one running container of namespace ns with
// SIGKILL through the runtime (crictl stop with no grace), as the OOM
// killer or a lost node would.
func killContainer(ctx context.Context, t *testing.T, ns, what string) {
	t.Helper()
	out, err := env.Node.Crictl(ctx, "ps", "-q", "--state", "running", "--label", "io.kubernetes.pod.namespace="+ns)
	require.NoError(t, err)
	ids := strings.Fields(out)
	require.Len(t, ids, 1, "one running container in %s (%s)", ns, what)
	_, err = env.Node.Crictl(ctx, "stop", "--timeout", "0", ids[0])
	require.NoError(t, err, "kill the container of %s", what)
}

// killBackupMidway starts a session, waits for its restic to be in the
// middle of the data and kills the container through the runtime
// (SIGKILL, as the OOM killer or a lost node would); restic's lock is left
// behind. It is looked at at once: the failed session's retention Job
// removes a dead pod's lock soon after.
func (e *failEnv) killBackupMidway(session string) {
	e.t.Helper()
	e.backupNow(session)
	p := waitBackupReading(e.t, session, 16<<20)
	// Frozen first, so that it is still in the middle of the data (and
	// holds its lock) when the runtime's SIGKILL comes, however slow the
	// machine is.
	require.NoError(e.t, syscall.Kill(p.pid, syscall.SIGSTOP))
	killContainer(e.ctx, e.t, e.o.NS, "Job of "+session)
	locks, err := e.repo().Locks(e.ctx)
	require.NoError(e.t, err)
	require.NotEmpty(e.t, locks, "the killed restic left its lock")
}

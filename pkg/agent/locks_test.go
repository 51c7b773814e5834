package agent

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/restic"
	"kubestash.dev/kubestash/pkg/restic/restictest"
)

// Names of Job pods as the Job controller makes them: <job>-<5 of
// bcdfghjklmnpqrstvwxz2456789>.
const (
	selfPod  = "pvc-backup-frequent-backup-1704281100-q2w4r"
	otherPod = "pvc-backup-frequent-backup-1704281400-x7k2q"
)

func pod(namespace, name string, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Status: corev1.PodStatus{Phase: phase}}
}

func TestLockIsDead(t *testing.T) {
	deleting := pod(ns, otherPod, corev1.PodRunning)
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	deleting.Finalizers = []string{"example.com/keep"}
	for _, tc := range []struct {
		name string
		host string
		pods []runtime.Object
		// getErr, when set, is what the API answers to the pod's get.
		getErr error
		dead   bool
		// noLookup: the decision is made without asking the API.
		noLookup bool
		wantErr  bool
	}{
		{name: "pod gone", host: otherPod, dead: true},
		{name: "pod failed (SIGKILL, OOM)", host: otherPod, pods: []runtime.Object{pod(ns, otherPod, corev1.PodFailed)}, dead: true},
		{name: "pod succeeded", host: otherPod, pods: []runtime.Object{pod(ns, otherPod, corev1.PodSucceeded)}, dead: true},
		{name: "pod running", host: otherPod, pods: []runtime.Object{pod(ns, otherPod, corev1.PodRunning)}},
		{name: "pod pending", host: otherPod, pods: []runtime.Object{pod(ns, otherPod, corev1.PodPending)}},
		{name: "pod unknown (node lost)", host: otherPod, pods: []runtime.Object{pod(ns, otherPod, corev1.PodUnknown)}},
		{name: "pod being deleted, still running", host: otherPod, pods: []runtime.Object{deleting}},
		// Only our namespace is looked at (the callers check only
		// repositories of it).
		{name: "a pod of that name in another namespace does not count", host: otherPod, pods: []runtime.Object{pod("elsewhere", otherPod, corev1.PodRunning)}, dead: true},
		{name: "API error keeps the lock", host: otherPod, getErr: apierrors.NewInternalError(errors.New("etcd is away")), wantErr: true},
		{name: "forbidden keeps the lock", host: otherPod, getErr: apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, otherPod, errors.New("no rule")), wantErr: true},
		{name: "own lock: restic unlock checks its PID", host: selfPod, noLookup: true},
		{name: "no hostname", host: "", noLookup: true},
		{name: "a laptop", host: "alices-laptop", noLookup: true},
		{name: "a laptop with a dashed name", host: "dev-box-12", noLookup: true},
		{name: "a fully qualified host", host: "build-1.example.com", noLookup: true},
		{name: "upper case", host: "Pvc-Backup-x7k2q", noLookup: true},
		{name: "suffix outside the generator's alphabet", host: "pvc-backup-abcde", noLookup: true},
		{name: "suffix too short", host: "pvc-backup-x7k2", noLookup: true},
		{name: "no job name", host: "x7k2q", noLookup: true},
		{name: "longer than a DNS label", host: strings.Repeat("a", 60) + "-x7k2q", noLookup: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kube := kubefake.NewSimpleClientset(tc.pods...)
			if tc.getErr != nil {
				kube.PrependReactor("get", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, tc.getErr
				})
			}
			l := &restic.Lock{Time: time.Now().Add(-time.Minute), Hostname: tc.host, PID: 7, Username: "root"}
			dead, reason, err := lockIsDead(context.Background(), kube, ns, selfPod, l)
			if tc.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), otherPod)
			} else {
				require.NoError(t, err)
				assert.NotEmpty(t, reason)
			}
			assert.Equal(t, tc.dead, dead, reason)
			if tc.noLookup {
				assert.Empty(t, kube.Actions(), "decided without the API")
			} else {
				require.Len(t, kube.Actions(), 1)
				get := kube.Actions()[0].(k8stesting.GetAction)
				assert.Equal(t, "get", get.GetVerb())
				assert.Equal(t, ns, get.GetNamespace())
				assert.Equal(t, tc.host, get.GetName())
			}
		})
	}
}

// requireUnshare skips the test unless this process may run a command in
// a UTS namespace of its own (root, or a user namespace allowed), where
// restic's os.Hostname() can be any name: the way to make restic write a
// lock as another Pod would, with the repository key only restic has.
func requireUnshare(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) is not installed: cannot make restic write a lock under another hostname")
	}
	if out, err := exec.Command("unshare", "--uts", "sh", "-c", "hostname unshare-probe-b2c4d").CombinedOutput(); err != nil {
		t.Skipf("unshare --uts with hostname is not permitted here (needs root or CAP_SYS_ADMIN): %v: %s", err, out)
	}
}

// plantLock leaves in the restic repository at repoDir the lock of a
// restic that ran on host and died by SIGKILL (an OOM kill, a Pod deleted
// with grace 0), and returns its id. restic backup --stdin holds its lock
// while it waits for the end of its input, which never comes.
func plantLock(ctx context.Context, t *testing.T, repoDir, host string) string {
	t.Helper()
	before := lockFileIDs(t, repoDir)
	cmd := exec.CommandContext(ctx, "unshare", "--uts", "sh", "-c",
		`hostname "$1" && exec "$2" backup --no-cache --host host-0 --stdin --stdin-filename held.txt`, "sh", host, restictest.Binary(t))
	env := []string{"RESTIC_REPOSITORY=" + repoDir, "RESTIC_PASSWORD=" + password}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RESTIC_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	defer stdin.Close()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	var id string
	ok := assert.Eventually(t, func() bool {
		for _, l := range lockFileIDs(t, repoDir) {
			// restic writes a lock as "<id>-tmp-N" and renames it.
			if len(l) == 64 && !slices.Contains(before, l) {
				id = l
				return true
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond, "restic on %s takes its lock", host)
	// unshare and sh exec'd restic: this is restic's PID.
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	require.True(t, ok, "restic: %s", stderr.String())
	return id
}

func lockFileIDs(t *testing.T, repoDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(repoDir, "locks"))
	require.NoError(t, err)
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Name())
	}
	return ids
}

// TestDeadLocks, with the real restic: the locks of two backup pods killed
// by SIGKILL outlive them, and restic's own unlock keeps both (another
// host, not 30 minutes old). The retention Job removes the lock whose pod
// is gone and keeps the one whose pod the API shows running, so its forget
// --prune is still blocked; once that pod has failed, its lock goes too
// and forget --prune succeeds at once.
func TestDeadLocks(t *testing.T) {
	skipShort(t)
	requireUnshare(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := newFixture(t)
	a := f.agent(f.data)
	a.Hostname = selfPod
	// A blocked forget fails soon instead of after a minute.
	a.Restic.RetryLock = 2 * time.Second

	var snaps []string
	for i, unix := range []int64{1704281100, 1704281400} {
		require.NoError(t, writeFile(filepath.Join(f.data, "file"), "version "+string(rune('a'+i))))
		bs, snap := f.newSession(unix, 0)
		require.NoError(t, a.Backup(ctx, f.backupOpts(bs)))
		snaps = append(snaps, snap)
	}
	componentPath := "repository/v1/" + session + "/dump"
	repoDir := filepath.Join(f.backend, "pvc-backup-demo", filepath.FromSlash(componentPath))
	r, err := restic.New(restic.Options{Binary: restictest.Binary(t), Password: password, ScratchDir: t.TempDir(),
		Location: restic.Location{Provider: restic.ProviderLocal, LocalDir: f.backend, Path: "pvc-backup-demo/" + componentPath}})
	require.NoError(t, err)

	const gonePod = "pvc-backup-frequent-backup-1704281700-b2c4d"
	deadID := plantLock(ctx, t, repoDir, gonePod)
	liveID := plantLock(ctx, t, repoDir, otherPod)
	_, err = f.kube.CoreV1().Pods(ns).Create(ctx, pod(ns, otherPod, corev1.PodRunning), metav1.CreateOptions{})
	require.NoError(t, err)
	l, err := r.ReadLock(ctx, deadID)
	require.NoError(t, err)
	assert.Equal(t, gonePod, l.Hostname, "restic wrote the UTS namespace's hostname")
	assert.False(t, l.Exclusive)
	assert.Positive(t, l.PID)
	assert.WithinDuration(t, time.Now(), l.Time, time.Minute)

	require.NoError(t, r.UnlockStale(ctx))
	locks, err := r.Locks(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{deadID, liveID}, locks, "restic unlock leaves the locks of other hosts for 30 minutes")

	// Outside a Pod, or for a repository of another namespace, nothing
	// is looked up: its pods are not ours to see.
	repo, err := f.client.CatalogV1alpha1().Repositories(ns).Get(ctx, repoName, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Zero(t, a.removeDeadLocks(ctx, r, repo, componentPath), "no PodNamespace")
	a.PodNamespace = "elsewhere"
	assert.Zero(t, a.removeDeadLocks(ctx, r, repo, componentPath), "another namespace")
	assert.ElementsMatch(t, []string{deadID, liveID}, lockFileIDs(t, repoDir))
	a.PodNamespace = ns

	// The first Snapshot is deleted (WipeOut): its forget mark.
	b, err := backend.NewLocal(f.backend)
	require.NoError(t, err)
	c := f.snapshot(snaps[0]).Status.Components[ComponentDump]
	deletedID := c.ResticStats[0].Summary.ID
	key, err := layout.AddForgetMark(ctx, b, "/pvc-backup-demo", layout.ForgetSnapshot{
		Name: snaps[0], Namespace: ns, UID: "uid-0", Repository: repoName, DeletedAt: metav1.Now(),
		Components: []layout.ForgetComponent{{Name: ComponentDump, Path: c.Path, ResticSnapshots: []string{deletedID}}},
	})
	require.NoError(t, err)
	require.NoError(t, f.client.CatalogV1alpha1().Snapshots(ns).Delete(ctx, snaps[0], metav1.DeleteOptions{}))
	ids := func() []string { return snapshotIDs(ctx, t, r) }
	opts := ForgetOptions{Namespace: ns, Repositories: []string{repoName}, ScratchDir: DefaultScratchDir}

	// The running pod's lock stays and blocks the prune.
	err = a.Forget(ctx, opts)
	require.Error(t, err)
	assert.ErrorIs(t, err, restic.ErrLocked)
	assert.Equal(t, []string{liveID}, lockFileIDs(t, repoDir), "the lock of the gone pod is removed, the running pod's kept")
	assert.Contains(t, ids(), deletedID, "nothing forgotten while locked")
	_, _, err = layout.ReadForgetMark(ctx, b, key)
	require.NoError(t, err, "the mark stays for the next run")

	// Its container was killed: the pod Failed.
	p, err := f.kube.CoreV1().Pods(ns).Get(ctx, otherPod, metav1.GetOptions{})
	require.NoError(t, err)
	p.Status.Phase = corev1.PodFailed
	_, err = f.kube.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, a.Forget(ctx, opts))
	took := time.Since(start)
	t.Logf("forget --prune after removing a dead lock: %v", took.Round(time.Millisecond))
	assert.Less(t, took, time.Minute, "no wait for restic's 30-minute rule")
	assert.Empty(t, lockFileIDs(t, repoDir))
	assert.NotContains(t, ids(), deletedID, "forgotten and pruned")
	assert.Contains(t, ids(), f.snapshot(snaps[1]).Status.Components[ComponentDump].ResticStats[0].Summary.ID)
	_, _, err = layout.ReadForgetMark(ctx, b, key)
	assert.ErrorIs(t, err, backend.ErrNotFound, "the mark acted upon is dropped")

	// A backup after all this has nothing to wait for either.
	bs, snap := f.newSession(1704282000, 0)
	require.NoError(t, a.Backup(ctx, f.backupOpts(bs)))
	assert.Equal(t, catalogv1alpha1.ComponentPhaseSucceeded, f.snapshot(snap).Status.Components[ComponentDump].Phase)
}

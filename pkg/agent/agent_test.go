package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned/fake"
	"kubestash.dev/kubestash/pkg/restic"
	"kubestash.dev/kubestash/pkg/restic/restictest"
)

const (
	ns       = "demo"
	bcName   = "pvc-backup"
	session  = "frequent-backup"
	repoName = "local-repo"
	password = "agent-test-password-1"
)

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the real restic; skipped with -short")
	}
}

// fixture is a namespace with a local BackupStorage, a Repository, a
// BackupConfiguration and the Secrets, in fake clientsets, and local
// folders standing in for the Pod's mounts.
type fixture struct {
	t       *testing.T
	client  *fake.Clientset
	kube    *kubefake.Clientset
	data    string // what /kubestash-data is for the backups (newVolume)
	backend string // what the storage's mountPath /safe/data is
	scratch string // what /kubestash-tmp is

	mu      sync.Mutex
	patches []patchRecord
}

type patchRecord struct {
	resource, name string
	body           map[string]any
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, data: newVolume(t), backend: t.TempDir(), scratch: t.TempDir()}
	bc := &corev1alpha1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: bcName, Namespace: ns},
		Spec: corev1alpha1.BackupConfigurationSpec{
			Target:   &kmapi.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "data-pvc", Namespace: ns},
			Backends: []corev1alpha1.BackendReference{{Name: "local-backend", StorageRef: &kmapi.ObjectReference{Name: "local-storage"}}},
			Sessions: []corev1alpha1.Session{{
				SessionConfig: corev1alpha1.SessionConfig{
					Name:          session,
					RetryConfig:   &corev1alpha1.RetryConfig{MaxRetry: 2},
					BackupTimeout: &metav1.Duration{Duration: 30 * time.Minute},
				},
				Repositories: []corev1alpha1.RepositoryInfo{{Name: repoName, Backend: "local-backend", Directory: "/pvc-backup-demo", EncryptionSecret: &kmapi.ObjectReference{Name: "encrypt-secret"}}},
			}},
		},
	}
	bs := &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Name: "local-storage", Namespace: ns},
		Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.Backend{
			Provider: storagev1alpha1.ProviderLocal,
			Local:    &storagev1alpha1.LocalSpec{MountPath: backendMountPath},
		}},
	}
	repo := &catalogv1alpha1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: repoName, Namespace: ns},
		Spec: catalogv1alpha1.RepositorySpec{
			AppRef:           kmapi.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "data-pvc", Namespace: ns},
			StorageRef:       kmapi.ObjectReference{Name: "local-storage"},
			Path:             "/pvc-backup-demo",
			EncryptionSecret: &kmapi.ObjectReference{Name: "encrypt-secret"},
		},
	}
	f.client = fake.NewSimpleClientset(bc, bs, repo)
	f.kube = kubefake.NewSimpleClientset(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "encrypt-secret", Namespace: ns},
		Data:       map[string][]byte{KeyResticPassword: []byte(password)},
	})
	record := func(resource string) k8stesting.ReactionFunc {
		return func(action k8stesting.Action) (bool, runtime.Object, error) {
			pa := action.(k8stesting.PatchAction)
			var body map[string]any
			require.NoError(t, json.Unmarshal(pa.GetPatch(), &body))
			assert.Equal(t, "status", pa.GetSubresource(), "the agent writes status only")
			f.mu.Lock()
			f.patches = append(f.patches, patchRecord{resource: resource, name: pa.GetName(), body: body})
			f.mu.Unlock()
			return false, nil, nil // let the tracker apply it
		}
	}
	f.client.PrependReactor("patch", "snapshots", record("snapshots"))
	f.client.PrependReactor("patch", "restoresessions", record("restoresessions"))
	return f
}

// backendMountPath is the local BackupStorage's mountPath.
const backendMountPath = "/safe/data"

// newVolume is a folder standing for a PVC that a Pod mounts at
// /kubestash-data: <root>/kubestash-data, <root> being Agent.Root of the
// agents that mount it (fixture.agent).
func newVolume(t *testing.T) string {
	return filepath.Join(t.TempDir(), filepath.FromSlash(DefaultDataDir))
}

// agent is an Agent as in a Pod that mounts dataDir (from newVolume) at
// /kubestash-data, the fixture's backend at /safe/data and its scratch
// folder at /kubestash-tmp: Agent.Root is the folder above dataDir, where
// the other two appear as symbolic links.
func (f *fixture) agent(dataDir string) *Agent {
	root := filepath.Dir(dataDir)
	require.Equal(f.t, filepath.Join(root, filepath.FromSlash(DefaultDataDir)), dataDir, "data folders come from newVolume")
	for mountPath, dir := range map[string]string{backendMountPath: f.backend, DefaultScratchDir: f.scratch} {
		at := filepath.Join(root, filepath.FromSlash(mountPath))
		if _, err := os.Lstat(at); err == nil {
			continue // the same volume again
		}
		require.NoError(f.t, os.MkdirAll(filepath.Dir(at), 0o755))
		require.NoError(f.t, os.Symlink(dir, at))
	}
	return &Agent{
		Kube: f.kube, Client: f.client, Root: root,
		Restic:           restic.Options{Binary: restictest.Binary(f.t), ProgressFPS: 20},
		ProgressInterval: 100 * time.Millisecond,
		SnapshotWait:     10 * time.Second,
	}
}

// newSession adds a BackupSession and, after delay, its Snapshot (the
// controller's part).
func (f *fixture) newSession(unix int64, delay time.Duration) (bsName, snapName string) {
	bsName = catalogv1alpha1.ValidNameWithPrefixNSuffix(bcName, session, strconv.FormatInt(unix, 10))
	snapName = catalogv1alpha1.GenerateSnapshotName(repoName, bsName)
	ctx := context.Background()
	_, err := f.client.CatalogV1alpha1().BackupSessions(ns).Create(ctx, &catalogv1alpha1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{Name: bsName, Namespace: ns},
		Spec: catalogv1alpha1.BackupSessionSpec{
			Invoker: corev1.TypedLocalObjectReference{APIGroup: ptr.To(corev1alpha1.GroupName), Kind: "BackupConfiguration", Name: bcName},
			Session: session,
		},
	}, metav1.CreateOptions{})
	require.NoError(f.t, err)
	snap := &catalogv1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Name: snapName, Namespace: ns, Labels: map[string]string{catalogv1alpha1.LabelRepoName: repoName}},
		Spec: catalogv1alpha1.SnapshotSpec{
			Repository: repoName, Session: session, BackupSession: bsName, Version: "v1", Type: catalogv1alpha1.BackupTypeFull,
			AppRef: kmapi.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "data-pvc", Namespace: ns},
		},
		Status: catalogv1alpha1.SnapshotStatus{Phase: catalogv1alpha1.SnapshotPending, TotalComponents: 1},
	}
	create := func() {
		_, err := f.client.CatalogV1alpha1().Snapshots(ns).Create(ctx, snap, metav1.CreateOptions{})
		assert.NoError(f.t, err)
	}
	if delay == 0 {
		create()
	} else {
		time.AfterFunc(delay, create)
	}
	return bsName, snapName
}

func writeFile(p, content string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o644)
}

func (f *fixture) snapshot(name string) *catalogv1alpha1.Snapshot {
	s, err := f.client.CatalogV1alpha1().Snapshots(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(f.t, err)
	return s
}

func (f *fixture) patchesOf(name string) []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []map[string]any
	for _, p := range f.patches {
		if p.name == name {
			out = append(out, p.body["status"].(map[string]any)["components"].(map[string]any)["dump"].(map[string]any))
		}
	}
	return out
}

func (f *fixture) backupOpts(bsName string) BackupOptions {
	return BackupOptions{Namespace: ns, BackupSession: bsName, EnableCache: true, ScratchDir: DefaultScratchDir, Paths: []string{DefaultDataDir}}
}

// TestBackupAndRestore: a full and an incremental backup through the
// Snapshot status, then a restore into another volume, byte-identical.
func TestBackupAndRestore(t *testing.T) {
	skipShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := newFixture(t)
	ds, err := restictest.Generate(f.data, restictest.Dataset{SmallFiles: 2000, SmallMax: 8 << 10, LargeFiles: 3, LargeSize: 16 << 20, Seed: 7})
	require.NoError(t, err)
	a := f.agent(f.data)

	// The Job may start before the controller made the Snapshot.
	bs1, snap1 := f.newSession(1704281100, 1500*time.Millisecond)
	start := time.Now()
	require.NoError(t, a.Backup(ctx, f.backupOpts(bs1)))
	took := time.Since(start)

	s := f.snapshot(snap1)
	dump := s.Status.Components[ComponentDump]
	assert.Equal(t, catalogv1alpha1.ComponentPhaseSucceeded, dump.Phase)
	assert.Equal(t, catalogv1alpha1.DriverRestic, dump.Driver)
	assert.Equal(t, "repository/v1/frequent-backup/dump", dump.Path)
	assert.Equal(t, ptr.To(true), dump.Integrity)
	assert.Empty(t, dump.Error)
	assert.NotEmpty(t, dump.Duration)
	size, err := restic.ParseBytes(dump.Size)
	require.NoError(t, err, dump.Size)
	assert.Greater(t, size, uint64(ds.Bytes)*9/10)
	require.Len(t, dump.ResticStats, 1)
	sum := dump.ResticStats[0].Summary
	require.NotNil(t, sum)
	assert.Len(t, sum.ID, 64)
	assert.Equal(t, DefaultDataDir, sum.HostPath, "the in-Pod path is recorded, not the local one")
	assert.Equal(t, restic.FormatBytes(uint64(ds.Bytes)), sum.Size)
	require.NotNil(t, sum.StartTime)
	require.NotNil(t, sum.EndTime)
	assert.False(t, sum.EndTime.Before(sum.StartTime))
	require.NotNil(t, dump.ResticStats[0].Progress)
	assert.Equal(t, "100.00%", dump.ResticStats[0].Progress.PercentDone)
	assert.FileExists(t, filepath.Join(f.backend, "pvc-backup-demo", "repository", "v1", session, "dump", "config"))

	// The status went Running, then progress, then final.
	patches := f.patchesOf(snap1)
	require.GreaterOrEqual(t, len(patches), 2)
	assert.Equal(t, "Running", patches[0]["phase"])
	assert.Contains(t, patches[0], "error", "a Running patch clears an old error")
	assert.Nil(t, patches[0]["error"])
	assert.Equal(t, "Succeeded", patches[len(patches)-1]["phase"])
	progress := 0
	for _, p := range patches[1 : len(patches)-1] {
		stats := p["resticStats"].([]any)
		pr := stats[0].(map[string]any)["progress"].(map[string]any)
		assert.Contains(t, pr["percentDone"], "%")
		assert.Contains(t, pr["speed"], "/s")
		progress++
	}
	t.Logf("full backup: %d files, %s in %v (%.0f files/s), %d progress patches, uploaded %s",
		ds.Files, restic.FormatBytes(uint64(ds.Bytes)), took.Round(time.Millisecond), float64(ds.Files)/took.Seconds(), progress, sum.Uploaded)
	assert.Positive(t, progress, "progress was written while restic ran")

	// Incremental.
	bs2, snap2 := f.newSession(1704281400, 0)
	start = time.Now()
	require.NoError(t, a.Backup(ctx, f.backupOpts(bs2)))
	dump2 := f.snapshot(snap2).Status.Components[ComponentDump]
	require.Equal(t, catalogv1alpha1.ComponentPhaseSucceeded, dump2.Phase, dump2.Error)
	up, err := restic.ParseBytes(dump2.ResticStats[0].Summary.Uploaded)
	require.NoError(t, err)
	assert.Less(t, up, uint64(ds.Bytes)/100, "incremental upload far below the size")
	t.Logf("incremental backup: uploaded %s of %s in %v", dump2.ResticStats[0].Summary.Uploaded, dump2.ResticStats[0].Summary.Size, time.Since(start).Round(time.Millisecond))

	// Restore into another volume.
	target := newVolume(t)
	_, err = f.client.CatalogV1alpha1().RestoreSessions(ns).Create(ctx, &catalogv1alpha1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: "restore-1", Namespace: ns},
		Spec: catalogv1alpha1.RestoreSessionSpec{DataSource: catalogv1alpha1.RestoreDataSource{
			Repository: repoName, Snapshot: "latest", EncryptionSecret: &kmapi.ObjectReference{Name: "encrypt-secret"},
		}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	ra := f.agent(target)
	start = time.Now()
	require.NoError(t, ra.Restore(ctx, RestoreOptions{Namespace: ns, RestoreSession: "restore-1", Snapshot: snap2, EnableCache: true, ScratchDir: DefaultScratchDir}))
	t.Logf("restore: %v", time.Since(start).Round(time.Millisecond))
	rs, err := f.client.CatalogV1alpha1().RestoreSessions(ns).Get(ctx, "restore-1", metav1.GetOptions{})
	require.NoError(t, err)
	rc := rs.Status.Components[ComponentDump]
	assert.Equal(t, catalogv1alpha1.RestoreSucceeded, rc.Phase, rc.Error)
	assert.NotEmpty(t, rc.Duration)
	require.NotNil(t, rc.Progress)
	assert.Equal(t, "100.00%", rc.Progress.PercentDone)
	assert.Equal(t, rc.Progress.TotalFiles, rc.Progress.FilesDone, "restic counts folders and symlinks too")
	want, err := restictest.Digest(f.data)
	require.NoError(t, err)
	got, err := restictest.Digest(target)
	require.NoError(t, err)
	assert.Empty(t, restictest.Diff(want, got, 10), "restore is byte-identical")
	assert.Len(t, got, len(want))

	// A partial restore with an in-Pod exclude pattern.
	partial := newVolume(t)
	_, err = f.client.CatalogV1alpha1().RestoreSessions(ns).Create(ctx, &catalogv1alpha1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: "restore-2", Namespace: ns},
		Spec:       catalogv1alpha1.RestoreSessionSpec{DataSource: catalogv1alpha1.RestoreDataSource{Repository: repoName, Snapshot: snap1}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, f.agent(partial).Restore(ctx, RestoreOptions{Namespace: ns, RestoreSession: "restore-2", ScratchDir: DefaultScratchDir, Excludes: []string{"/kubestash-data/large"}}))
	assert.NoDirExists(t, filepath.Join(partial, "large"))
	assert.FileExists(t, filepath.Join(partial, "top.txt"))
}

// TestBackupFailures: the causes reach the status, and secrets never do.
func TestBackupFailures(t *testing.T) {
	skipShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := newFixture(t)
	_, err := restictest.Generate(f.data, restictest.Dataset{SmallFiles: 20, SmallMax: 1024, Seed: 8})
	require.NoError(t, err)
	a := f.agent(f.data)
	bs1, snap1 := f.newSession(1704282000, 0)
	require.NoError(t, a.Backup(ctx, f.backupOpts(bs1)))

	// Wrong password.
	sec, err := f.kube.CoreV1().Secrets(ns).Get(ctx, "encrypt-secret", metav1.GetOptions{})
	require.NoError(t, err)
	sec.Data[KeyResticPassword] = []byte("not-the-password-42")
	_, err = f.kube.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{})
	require.NoError(t, err)
	bs2, snap2 := f.newSession(1704282300, 0)
	err = a.Backup(ctx, f.backupOpts(bs2))
	require.Error(t, err)
	dump := f.snapshot(snap2).Status.Components[ComponentDump]
	assert.Equal(t, catalogv1alpha1.ComponentPhaseFailed, dump.Phase)
	assert.Contains(t, dump.Error, "wrong password or no key found")
	assert.NotContains(t, dump.Error, "not-the-password-42")
	assert.NotContains(t, dump.Error, password)
	assert.NotEmpty(t, dump.Duration)

	// Missing Secret.
	require.NoError(t, f.kube.CoreV1().Secrets(ns).Delete(ctx, "encrypt-secret", metav1.DeleteOptions{}))
	bs3, snap3 := f.newSession(1704282600, 0)
	require.Error(t, a.Backup(ctx, f.backupOpts(bs3)))
	dump = f.snapshot(snap3).Status.Components[ComponentDump]
	assert.Equal(t, catalogv1alpha1.ComponentPhaseFailed, dump.Phase)
	assert.Contains(t, dump.Error, `get encryption secret demo/encrypt-secret`)
	assert.Contains(t, dump.Error, "not found")

	// The first snapshot is untouched by the later failures.
	assert.Equal(t, catalogv1alpha1.ComponentPhaseSucceeded, f.snapshot(snap1).Status.Components[ComponentDump].Phase)
	for _, p := range f.patches {
		b, _ := json.Marshal(p.body)
		assert.NotContains(t, string(b), password)
		assert.NotContains(t, string(b), "not-the-password-42")
	}
}

// TestBackupTerminated: SIGTERM (the context ends) mid-backup gives a
// Failed component with upstream's message, and restic leaves no lock.
func TestBackupTerminated(t *testing.T) {
	skipShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := newFixture(t)
	_, err := restictest.Generate(f.data, restictest.Dataset{LargeFiles: 4, LargeSize: 48 << 20, Seed: 9})
	require.NoError(t, err)
	a := f.agent(f.data)
	bs1, snap1 := f.newSession(1704283000, 0)

	// "SIGTERM" once the first progress reaches the status.
	sigctx, sigterm := context.WithCancel(ctx)
	f.client.PrependReactor("patch", "snapshots", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if strings.Contains(string(action.(k8stesting.PatchAction).GetPatch()), `"progress"`) {
			sigterm()
		}
		return false, nil, nil
	})
	err = a.Backup(sigctx, f.backupOpts(bs1))
	require.Error(t, err)
	dump := f.snapshot(snap1).Status.Components[ComponentDump]
	assert.Equal(t, catalogv1alpha1.ComponentPhaseFailed, dump.Phase)
	assert.Equal(t, MessageTerminated, dump.Error)

	r, err := restic.New(restic.Options{Binary: restictest.Binary(t), Password: password, ScratchDir: t.TempDir(),
		Location: restic.Location{Provider: restic.ProviderLocal, LocalDir: f.backend, Path: "pvc-backup-demo/repository/v1/frequent-backup/dump"}})
	require.NoError(t, err)
	locks, err := r.Locks(ctx)
	require.NoError(t, err)
	assert.Empty(t, locks, "restic got SIGTERM and removed its lock")

	// The next session succeeds.
	bs2, snap2 := f.newSession(1704283300, 0)
	require.NoError(t, a.Backup(ctx, f.backupOpts(bs2)))
	assert.Equal(t, catalogv1alpha1.ComponentPhaseSucceeded, f.snapshot(snap2).Status.Components[ComponentDump].Phase)
}

func TestBackupDeadlinePassed(t *testing.T) {
	skipShort(t)
	f := newFixture(t)
	require.NoError(t, writeFile(filepath.Join(f.data, "a"), "x"))
	bsName, snapName := f.newSession(1704284000, 0)
	bs, err := f.client.CatalogV1alpha1().BackupSessions(ns).Get(context.Background(), bsName, metav1.GetOptions{})
	require.NoError(t, err)
	bs.Status.BackupDeadline = &metav1.Time{Time: time.Now().Add(-time.Minute)}
	_, err = f.client.CatalogV1alpha1().BackupSessions(ns).UpdateStatus(context.Background(), bs, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Error(t, f.agent(f.data).Backup(context.Background(), f.backupOpts(bsName)))
	dump := f.snapshot(snapName).Status.Components[ComponentDump]
	assert.Equal(t, catalogv1alpha1.ComponentPhaseFailed, dump.Phase)
	assert.Equal(t, MessageTerminated, dump.Error)
}

// TestWaitFor: what the Job was made for is found even when the catalog
// server replica answering says NotFound for a while (it reads another
// replica's write at its next poll); after SnapshotWait the last error is
// returned.
func TestWaitFor(t *testing.T) {
	notFound := apierrors.NewNotFound(catalogv1alpha1.Resource("backupsessions"), "s")
	tests := []struct {
		name      string
		notFounds int
		wantErr   bool
	}{
		{name: "found at once"},
		{name: "found after two NotFound answers", notFounds: 2},
		{name: "never found", notFounds: 1000, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &Agent{SnapshotWait: 3 * time.Second}
			calls := 0
			got, err := waitFor(context.Background(), a, func(context.Context) (string, error) {
				calls++
				if calls <= tt.notFounds {
					return "", notFound
				}
				return "session", nil
			})
			if tt.wantErr {
				require.Error(t, err)
				assert.True(t, apierrors.IsNotFound(err), "the last error: %v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "session", got)
			assert.Equal(t, tt.notFounds+1, calls)
		})
	}
}

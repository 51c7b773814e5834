package agent

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/restic"
)

// BackupOptions are the arguments of `agent backup` (Function pvc-backup).
type BackupOptions struct {
	Namespace     string
	BackupSession string
	EnableCache   bool
	ScratchDir    string
	// Paths to back up, in-Pod; default /kubestash-data. Each is one
	// restic backup and one resticStats entry.
	Paths    []string
	Excludes []string
}

// Backup runs one BackupSession's backup: for every repository of its
// session, into the Snapshot the controller made for it, restic init if
// needed, backup of each path, check and stats, with the component "dump"
// of the Snapshot's status kept current. Repositories are done one after
// the other; a failure in one does not stop the others. The error is
// non-nil when any repository failed.
func (a *Agent) Backup(ctx context.Context, o BackupOptions) error {
	if o.Namespace == "" || o.BackupSession == "" {
		return errors.New("backup: --namespace and --backupsession are required")
	}
	if len(o.Paths) == 0 {
		o.Paths = []string{DefaultDataDir}
	}
	if o.ScratchDir == "" {
		o.ScratchDir = DefaultScratchDir
	}
	bs, err := waitFor(ctx, a, func(ctx context.Context) (*catalogv1alpha1.BackupSession, error) {
		return a.Client.CatalogV1alpha1().BackupSessions(o.Namespace).Get(ctx, o.BackupSession, metav1.GetOptions{})
	})
	if err != nil {
		return fmt.Errorf("get BackupSession %s/%s: %w", o.Namespace, o.BackupSession, err)
	}
	inv := bs.Spec.Invoker
	if inv.Kind != corev1alpha1.ResourceKindBackupConfiguration {
		return fmt.Errorf("BackupSession %s/%s: invoker kind %q is not supported (BackupConfiguration is)", bs.Namespace, bs.Name, inv.Kind)
	}
	bc, err := a.Client.CoreV1alpha1().BackupConfigurations(bs.Namespace).Get(ctx, inv.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get BackupConfiguration %s/%s: %w", bs.Namespace, inv.Name, err)
	}
	var session *corev1alpha1.Session
	for i := range bc.Spec.Sessions {
		if bc.Spec.Sessions[i].Name == bs.Spec.Session {
			session = &bc.Spec.Sessions[i]
		}
	}
	if session == nil {
		return fmt.Errorf("BackupConfiguration %s/%s has no session %q", bc.Namespace, bc.Name, bs.Spec.Session)
	}
	if d := bs.Status.BackupDeadline; d != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Time)
		defer cancel()
	}

	var failed []string
	for i, ri := range session.Repositories {
		snapName := catalogv1alpha1.GenerateSnapshotName(ri.Name, bs.Name)
		if ctx.Err() != nil {
			// Stopped: leave no Snapshot of this session Running or
			// Pending for the controller to guess about.
			a.failUnstarted(ctx, bs.Namespace, session.Repositories[i:], bs.Name)
			for _, r := range session.Repositories[i:] {
				failed = append(failed, r.Name)
			}
			break
		}
		job := backupJob{a: a, opts: o, ns: bs.Namespace, snapshot: snapName, session: bs.Spec.Session, repoName: ri.Name, encSecret: ri.EncryptionSecret, bcNamespace: bc.Namespace}
		if err := job.run(ctx); err != nil {
			klog.ErrorS(err, "Backup failed", "repository", ri.Name, "snapshot", klog.KRef(bs.Namespace, snapName))
			failed = append(failed, ri.Name)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("backup of BackupSession %s/%s failed for repositories %s", bs.Namespace, bs.Name, strings.Join(failed, ", "))
	}
	return nil
}

// failUnstarted marks the Snapshots of repositories not backed up yet as
// Failed after the agent was stopped. Best effort: a Snapshot that does
// not exist yet is left alone.
func (a *Agent) failUnstarted(ctx context.Context, ns string, repos []corev1alpha1.RepositoryInfo, bsName string) {
	sctx, cancel := statusContext(ctx)
	defer cancel()
	for _, ri := range repos {
		name := catalogv1alpha1.GenerateSnapshotName(ri.Name, bsName)
		err := a.patchSnapshotComponent(sctx, ns, name, ComponentDump, map[string]any{
			"driver": catalogv1alpha1.DriverRestic, "phase": catalogv1alpha1.ComponentPhaseFailed, "error": MessageTerminated,
		}, false)
		if err != nil && !apierrors.IsNotFound(err) {
			klog.V(2).InfoS("Could not mark snapshot failed", "snapshot", klog.KRef(ns, name), "err", err)
		}
	}
}

// backupJob is the backup of one repository of a session.
type backupJob struct {
	a           *Agent
	opts        BackupOptions
	ns          string
	snapshot    string
	session     string
	repoName    string
	encSecret   *kmapi.ObjectReference
	bcNamespace string

	path  string
	repo  *catalogv1alpha1.Repository
	stats []catalogv1alpha1.ResticStats
	start time.Time
}

func (j *backupJob) run(ctx context.Context) error {
	a := j.a
	snap, err := a.waitSnapshot(ctx, j.ns, j.snapshot)
	if err != nil {
		return err
	}
	j.start = a.now()
	j.path = componentPath(snap.Spec.Version, j.session, ComponentDump)
	if c, ok := snap.Status.Components[ComponentDump]; ok && c.Path != "" {
		j.path = c.Path
	}
	// Running, with whatever a previous attempt of this Job left cleared.
	err = a.patchSnapshotComponent(ctx, j.ns, j.snapshot, ComponentDump, map[string]any{
		"driver": catalogv1alpha1.DriverRestic, "path": j.path, "phase": catalogv1alpha1.ComponentPhaseRunning,
		"error": nil, "duration": nil, "integrity": nil, "size": nil, "resticStats": nil,
	}, true)
	if err != nil {
		// Most likely the API is away or the agent was stopped; the
		// final write tries once more on a context of its own.
		return j.finish(ctx, nil, "", err)
	}
	klog.InfoS("Backup started", "snapshot", klog.KRef(j.ns, j.snapshot), "repository", j.repoName, "component", j.path)

	integrity, size, err := j.backup(ctx, snap)
	if err != nil {
		return j.finish(ctx, nil, "", err)
	}
	return j.finish(ctx, &integrity, size, nil)
}

func (j *backupJob) backup(ctx context.Context, snap *catalogv1alpha1.Snapshot) (bool, string, error) {
	a := j.a
	repoName := snap.Spec.Repository
	if repoName == "" {
		repoName = j.repoName
	}
	repo, err := a.Client.CatalogV1alpha1().Repositories(j.ns).Get(ctx, repoName, metav1.GetOptions{})
	if err != nil {
		return false, "", fmt.Errorf("get Repository %s/%s: %w", j.ns, repoName, err)
	}
	acc, err := a.repoAccess(ctx, repo, j.encSecret, j.bcNamespace)
	if err != nil {
		return false, "", err
	}
	r, err := a.newRestic(acc, j.path, j.opts.ScratchDir, j.opts.EnableCache)
	if err != nil {
		return false, "", err
	}
	j.repo = repo
	// A dead pod's exclusive lock (a killed prune) would make the backup
	// wait --retry-lock and fail; its dead non-exclusive locks (a killed
	// backup) would hold up the next forget. Without lock files this is a
	// backend listing, no restic run.
	a.removeDeadLocks(ctx, r, repo, j.path)
	excludes := make([]string, 0, len(j.opts.Excludes))
	for _, e := range j.opts.Excludes {
		excludes = append(excludes, a.onDisk(e))
	}
	for i, p := range j.opts.Paths {
		rep := newReporter(func(ctx context.Context, pr restic.Progress, elapsed time.Duration) error {
			stats := append(append([]catalogv1alpha1.ResticStats{}, j.stats...), catalogv1alpha1.ResticStats{Progress: backupProgress(pr, elapsed)})
			return a.patchSnapshotComponent(ctx, j.ns, j.snapshot, ComponentDump, map[string]any{"resticStats": stats}, false)
		})
		rep.start(ctx, a.progressInterval())
		sum, err := j.backupPath(ctx, r, a.onDisk(p), excludes, rep.update)
		rep.Stop()
		if sum == nil {
			return false, "", err
		}
		last, elapsed := rep.last()
		start, end := metav1.NewTime(sum.BackupStart), metav1.NewTime(sum.BackupEnd)
		j.stats = append(j.stats, catalogv1alpha1.ResticStats{
			Summary: &catalogv1alpha1.ResticSummary{
				ID:        sum.SnapshotID,
				Uploaded:  restic.FormatBytes(sum.DataAdded),
				HostPath:  p,
				Size:      restic.FormatBytes(sum.TotalBytesProcessed),
				StartTime: &start,
				EndTime:   &end,
			},
			Progress: backupProgress(last, elapsed),
		})
		if err != nil {
			// restic wrote the snapshot but could not read some
			// files (ErrIncomplete): the component fails, with the
			// snapshot's summary kept for the record.
			return false, "", err
		}
		klog.InfoS("Backed up path", "path", p, "index", i, "snapshotID", sum.SnapshotID,
			"files", sum.TotalFilesProcessed, "size", restic.FormatBytes(sum.TotalBytesProcessed),
			"uploaded", restic.FormatBytes(sum.DataAdded), "duration", sum.TotalDuration)
	}

	// check and stats only read (--no-lock); each first spends about
	// half a second deriving the key, so they run side by side. Beside
	// them, stale locks go: a backup killed without cleaning up (the OOM
	// killer, a lost node) leaves its lock, which no later backup needs
	// gone but a forget or prune would wait for. restic unlock removes
	// only locks of processes known to be dead or not refreshed for 30
	// minutes, never a live one; failing to is no reason to fail a backup.
	// It runs only when the repository has lock files left (a listing,
	// no key to derive): a third restic beside check and stats costs
	// every backup a few tenths of a second on a small machine.
	unlocked := make(chan error, 1)
	if a.hasLocks(ctx, repo, j.path) {
		go func() { unlocked <- r.UnlockStale(ctx) }()
	} else {
		unlocked <- nil
	}
	var integrity bool
	var st *restic.Stats
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { integrity, err = r.Check(gctx); return err })
	g.Go(func() (err error) { st, err = r.Stats(gctx); return err })
	err = g.Wait()
	if uerr := <-unlocked; uerr != nil {
		klog.InfoS("Could not remove stale locks", "repository", r.URL(), "err", uerr)
	}
	if err != nil {
		return false, "", err
	}
	if !integrity {
		klog.InfoS("Repository integrity check found errors", "repository", repoName, "component", j.path)
	}
	return integrity, restic.FormatBytes(st.TotalSize), nil
}

// backupPath runs one restic backup. Every restic command spends about half
// a second deriving the key, so the usual case (the repository exists and
// is not locked) is a single command, and the rare ones are handled when
// restic reports them: a missing repository is initialized, and a lock
// that outlasted --retry-lock is retried once after removing stale locks
// (a killed prune leaves an exclusive one; a live lock stays) and the
// locks of pods that no longer run (removeDeadLocks: one may have died
// since the check before the backup).
func (j *backupJob) backupPath(ctx context.Context, r *restic.Repo, p string, excludes []string, progress func(restic.Progress)) (*restic.BackupSummary, error) {
	sum, err := r.Backup(ctx, []string{p}, excludes, j.a.host(), progress)
	switch {
	case errors.Is(err, restic.ErrRepositoryNotFound):
		if err := r.Init(ctx); err != nil {
			return nil, err
		}
		klog.InfoS("Initialized restic repository", "repository", r.URL())
	case errors.Is(err, restic.ErrLocked):
		j.a.removeDeadLocks(ctx, r, j.repo, j.path)
		if uerr := r.UnlockStale(ctx); uerr != nil {
			return nil, errors.Join(err, uerr)
		}
		klog.InfoS("Removed stale locks; retrying", "repository", r.URL())
	default:
		return sum, err
	}
	return r.Backup(ctx, []string{p}, excludes, j.a.host(), progress)
}

// finish writes the final state of the component (finalWrite: through a
// catalog outage, and even after ctx ended).
func (j *backupJob) finish(ctx context.Context, integrity *bool, size string, berr error) error {
	fields := map[string]any{
		"driver":   catalogv1alpha1.DriverRestic,
		"path":     j.path,
		"duration": j.a.now().Sub(j.start).String(),
	}
	if len(j.stats) > 0 {
		fields["resticStats"] = j.stats
	}
	if berr != nil {
		fields["phase"] = catalogv1alpha1.ComponentPhaseFailed
		fields["error"] = errorMessage(ctx, berr)
	} else {
		fields["phase"] = catalogv1alpha1.ComponentPhaseSucceeded
		fields["error"] = nil
		fields["integrity"] = *integrity
		fields["size"] = size
	}
	err := j.a.finalWrite(ctx, func(ctx context.Context) error {
		return j.a.patchSnapshotComponent(ctx, j.ns, j.snapshot, ComponentDump, fields, false)
	})
	if err != nil {
		return errors.Join(berr, err)
	}
	logDone("Backup finished", j.start, "snapshot", klog.KRef(j.ns, j.snapshot), "phase", fields["phase"], "size", size)
	return berr
}

// waitSnapshot gets a Snapshot, waiting up to SnapshotWait for the
// controller to create it (the Job may start first).
func (a *Agent) waitSnapshot(ctx context.Context, ns, name string) (*catalogv1alpha1.Snapshot, error) {
	snap, err := waitFor(ctx, a, func(ctx context.Context) (*catalogv1alpha1.Snapshot, error) {
		return a.Client.CatalogV1alpha1().Snapshots(ns).Get(ctx, name, metav1.GetOptions{})
	})
	if err != nil {
		return nil, fmt.Errorf("get Snapshot %s/%s: %w", ns, name, err)
	}
	return snap, nil
}

// waitFor gets a catalog object that exists, trying again for up to
// SnapshotWait (1m by default) while the answer is NotFound or an error:
// the controller made the Job after it saw the object, so NotFound is a
// catalog server replica that has not read another's write yet (it does at
// its next poll), or the object is still on its way.
func waitFor[T any](ctx context.Context, a *Agent, get func(context.Context) (T, error)) (T, error) {
	timeout := a.SnapshotWait
	if timeout <= 0 {
		timeout = time.Minute
	}
	var (
		got     T
		lastErr error
	)
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		v, err := get(ctx)
		if err != nil {
			lastErr = err
			if !apierrors.IsNotFound(err) {
				klog.V(2).InfoS("Waiting for the catalog", "err", err)
			}
			return false, nil
		}
		got = v
		return true, nil
	})
	if err != nil && lastErr != nil {
		err = lastErr
	}
	return got, err
}

// hasLocks reports whether the restic repository of a component has lock
// files, looking at the backend directly. When it cannot tell, it says
// yes: restic unlock will find out.
func (a *Agent) hasLocks(ctx context.Context, repo *catalogv1alpha1.Repository, componentPath string) bool {
	b, err := a.backendOf(ctx, repo)
	if err != nil {
		return true
	}
	res, err := b.List(ctx, strings.Trim(path.Join(repo.Spec.Path, componentPath, "locks"), "/")+"/", backend.ListOptions{})
	return err != nil || len(res.Objects) > 0
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"kubestash.dev/kubestash/pkg/addon"
	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/restic"
)

// RestoreOptions are the arguments of `agent restore` (Function
// pvc-restore), plus include/exclude of the workload addon.
type RestoreOptions struct {
	Namespace      string
	RestoreSession string
	// Snapshot to restore, as resolved by the controller; empty: the
	// RestoreSession's dataSource.snapshot, which must then be a name.
	Snapshot    string
	EnableCache bool
	ScratchDir  string
	// Includes and Excludes are restic patterns, absolute: paths in the
	// snapshot ("/dir", / being the volume's root), or in-Pod paths
	// ("/kubestash-data/dir", upstream's form), which mean the same.
	Includes []string
	Excludes []string
}

// Restore restores every restic component of a Snapshot (those listed in
// dataSource.components, or all) and reports each in the RestoreSession's
// status.components. The error is non-nil when any component failed.
func (a *Agent) Restore(ctx context.Context, o RestoreOptions) error {
	if o.Namespace == "" || o.RestoreSession == "" {
		return errors.New("restore: --namespace and --restoresession are required")
	}
	// The catalog server refuses these at admission; a RestoreSession
	// stored before that rule, or a hand-made Job, is refused here.
	for _, p := range append(append([]string(nil), o.Includes...), o.Excludes...) {
		if err := addon.CheckSnapshotPath(p); err != nil {
			return fmt.Errorf("restore: --include/--exclude %q: %w", p, err)
		}
	}
	if o.ScratchDir == "" {
		o.ScratchDir = DefaultScratchDir
	}
	rs, err := waitFor(ctx, a, func(ctx context.Context) (*catalogv1alpha1.RestoreSession, error) {
		return a.Client.CatalogV1alpha1().RestoreSessions(o.Namespace).Get(ctx, o.RestoreSession, metav1.GetOptions{})
	})
	if err != nil {
		return fmt.Errorf("get RestoreSession %s/%s: %w", o.Namespace, o.RestoreSession, err)
	}
	if d := rs.Status.RestoreDeadline; d != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Time)
		defer cancel()
	}
	ds := rs.Spec.DataSource
	dsNS := ds.Namespace
	if dsNS == "" {
		dsNS = rs.Namespace
	}
	snapName := o.Snapshot
	if snapName == "" {
		snapName = ds.Snapshot
	}
	if snapName == "" || snapName == "latest" {
		return fmt.Errorf("RestoreSession %s/%s: no snapshot name (the controller resolves %q and point-in-time; pass --snapshot)", rs.Namespace, rs.Name, ds.Snapshot)
	}
	snap, err := a.Client.CatalogV1alpha1().Snapshots(dsNS).Get(ctx, snapName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get Snapshot %s/%s: %w", dsNS, snapName, err)
	}

	names := make([]string, 0, len(snap.Status.Components))
	for name := range snap.Status.Components {
		if len(ds.Components) == 0 || slices.Contains(ds.Components, name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return fmt.Errorf("Snapshot %s/%s has no components to restore", dsNS, snapName)
	}

	job := restoreJob{a: a, opts: o, rsNS: rs.Namespace, rsName: rs.Name, snap: snap}
	// Resolving the repository and its secrets can fail for every
	// component alike; then each reports that error.
	acc, accErr := job.access(ctx, rs, dsNS)
	var failed []string
	for _, name := range names {
		if err := job.component(ctx, name, snap.Status.Components[name], acc, accErr); err != nil {
			klog.ErrorS(err, "Restore failed", "component", name, "restoreSession", klog.KObj(rs))
			failed = append(failed, name)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("restore of RestoreSession %s/%s failed for components %s", rs.Namespace, rs.Name, strings.Join(failed, ", "))
	}
	return nil
}

type restoreJob struct {
	a      *Agent
	opts   RestoreOptions
	rsNS   string
	rsName string
	snap   *catalogv1alpha1.Snapshot
	// repo is the Snapshot's Repository, once access found it.
	repo *catalogv1alpha1.Repository
}

func (j *restoreJob) access(ctx context.Context, rs *catalogv1alpha1.RestoreSession, dsNS string) (*access, error) {
	repoName := j.snap.Spec.Repository
	if repoName == "" {
		repoName = rs.Spec.DataSource.Repository
	}
	repo, err := j.a.Client.CatalogV1alpha1().Repositories(dsNS).Get(ctx, repoName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get Repository %s/%s: %w", dsNS, repoName, err)
	}
	j.repo = repo
	return j.a.repoAccess(ctx, repo, rs.Spec.DataSource.EncryptionSecret, rs.Namespace)
}

func (j *restoreJob) component(ctx context.Context, name string, comp catalogv1alpha1.Component, acc *access, accErr error) error {
	a := j.a
	start := a.now()
	err := a.patchRestoreComponent(ctx, j.rsNS, j.rsName, name, map[string]any{
		"phase": catalogv1alpha1.RestoreRunning, "error": nil, "duration": nil, "progress": nil,
	}, true)
	if err != nil {
		return err
	}
	var last *catalogv1alpha1.RestoreProgress
	rerr := accErr
	if rerr == nil {
		last, rerr = j.restore(ctx, name, comp, acc)
	}
	fields := map[string]any{"duration": a.now().Sub(start).String()}
	if last != nil {
		fields["progress"] = last
	}
	if rerr != nil {
		fields["phase"] = catalogv1alpha1.RestoreFailed
		fields["error"] = errorMessage(ctx, rerr)
	} else {
		fields["phase"] = catalogv1alpha1.RestoreSucceeded
	}
	err = a.finalWrite(ctx, func(ctx context.Context) error {
		return a.patchRestoreComponent(ctx, j.rsNS, j.rsName, name, fields, false)
	})
	if err != nil {
		return errors.Join(rerr, err)
	}
	logDone("Restore finished", start, "restoreSession", klog.KRef(j.rsNS, j.rsName), "component", name, "phase", fields["phase"])
	return rerr
}

// restore runs restic restore for each restic snapshot of a component.
func (j *restoreJob) restore(ctx context.Context, name string, comp catalogv1alpha1.Component, acc *access) (*catalogv1alpha1.RestoreProgress, error) {
	a := j.a
	if comp.Driver != "" && comp.Driver != catalogv1alpha1.DriverRestic {
		return nil, fmt.Errorf("component %s: driver %s is not supported by the agent (Restic is)", name, comp.Driver)
	}
	if comp.Path == "" {
		return nil, fmt.Errorf("component %s of Snapshot %s/%s has no path", name, j.snap.Namespace, j.snap.Name)
	}
	var ids []catalogv1alpha1.ResticSummary
	for _, s := range comp.ResticStats {
		if s.Summary != nil && s.Summary.ID != "" {
			ids = append(ids, *s.Summary)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("component %s of Snapshot %s/%s has no restic snapshot id", name, j.snap.Namespace, j.snap.Name)
	}
	r, err := a.newRestic(acc, comp.Path, j.opts.ScratchDir, j.opts.EnableCache)
	if err != nil {
		return nil, err
	}
	// A killed prune's exclusive lock would make the restore wait
	// --retry-lock and fail.
	a.removeDeadLocks(ctx, r, j.repo, comp.Path)
	var last *catalogv1alpha1.RestoreProgress
	for _, sum := range ids {
		source, target, includes, excludes, err := j.plan(ctx, r, sum)
		if err != nil {
			return last, err
		}
		klog.InfoS("Restoring", "component", name, "snapshotID", sum.ID, "source", source, "target", target)
		rep := newReporter(func(ctx context.Context, p restic.Progress, elapsed time.Duration) error {
			return a.patchRestoreComponent(ctx, j.rsNS, j.rsName, name, map[string]any{"progress": restoreProgress(p, elapsed)}, false)
		})
		rep.start(ctx, a.progressInterval())
		rsum, err := r.Restore(ctx, source, target, includes, excludes, rep.update)
		rep.Stop()
		p, elapsed := rep.last()
		last = restoreProgress(p, elapsed)
		if err != nil {
			return last, err
		}
		klog.InfoS("Restored", "component", name, "snapshotID", sum.ID, "files", rsum.FilesRestored,
			"skipped", rsum.FilesSkipped, "bytes", restic.FormatBytes(rsum.BytesRestored))
	}
	return last, nil
}

// plan says what to restore where. restic stored the folder it read
// (/kubestash-data in a Pod, below Agent.Root in a unit test); its content
// goes to the in-Pod hostPath (below Agent.Root). In a Pod this is exactly
// `restic restore <id> --target /`. Absolute include/exclude
// patterns are in-Pod paths; restic matches them relative to the restored
// folder, so the folder is cut off.
func (j *restoreJob) plan(ctx context.Context, r *restic.Repo, sum catalogv1alpha1.ResticSummary) (source, target string, includes, excludes []string, err error) {
	var stored string
	if j.a.Root == "" && path.IsAbs(sum.HostPath) {
		// In a Pod the folder restic read is the hostPath the backup
		// recorded (ours and upstream's: /kubestash-data): no need to ask
		// restic, which costs a repository open (0.7 s of a 6 s restore).
		stored = sum.HostPath
	} else {
		snaps, err := r.Snapshots(ctx, sum.ID)
		if err != nil {
			return "", "", nil, nil, err
		}
		if len(snaps) != 1 {
			return "", "", nil, nil, fmt.Errorf("restic snapshot %s not found", sum.ID)
		}
		paths := snaps[0].Paths
		if len(paths) != 1 {
			// Several folders in one restic snapshot (not written by
			// this agent): restore it whole at the root, as upstream.
			return sum.ID, j.a.onDisk("/"), j.opts.Includes, j.opts.Excludes, nil
		}
		stored = paths[0]
	}
	hostPath := sum.HostPath
	if hostPath == "" {
		hostPath = stored
	}
	rel := func(pats []string) []string {
		out := make([]string, 0, len(pats))
		for _, p := range pats {
			if path.IsAbs(p) {
				if rest, ok := within(p, hostPath); ok {
					p = "/" + rest
				}
			}
			out = append(out, p)
		}
		return out
	}
	return sum.ID + ":" + stored, j.a.onDisk(hostPath), rel(j.opts.Includes), rel(j.opts.Excludes), nil
}

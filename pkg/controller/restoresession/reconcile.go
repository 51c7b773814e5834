// Package restoresession reconciles RestoreSessions: it resolves the
// Snapshot (by name, "latest" or a point in time), pauses the backups of
// the same target while the restore runs, runs the restore Job built from
// the Addon's restore task and its Function, rolls the components' phases
// up and resumes the backups at the end.
package restoresession

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"kubestash.dev/kubestash/pkg/addon"
	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backenddirs"
	"kubestash.dev/kubestash/pkg/conditions"
	"kubestash.dev/kubestash/pkg/controller/access"
	"kubestash.dev/kubestash/pkg/controller/executor"
	"kubestash.dev/kubestash/pkg/controller/lookup"
	"kubestash.dev/kubestash/pkg/controller/loop"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/sharing"
)

// Names of the identity the restore Jobs run as.
const (
	RestoreServiceAccount = "kubestash-restore"
	RestoreClusterRole    = "kubestash-restore-job"
	latest                = "latest"
)

// Reconciler reconciles one RestoreSession at a time.
type Reconciler struct {
	Kube     kubernetes.Interface
	Client   versioned.Interface
	Recorder record.EventRecorder
	// Clock is the controller's clock (clock.RealClock{}; a fake one in tests).
	Clock clock.PassiveClock
	// PendingTimeout is how long a restore Job's pod may stay Pending
	// before the restore fails; 0 means executor.DefaultPendingTimeout.
	PendingTimeout time.Duration
	// FinishedJobTTL is how long the Job of a finished restore is kept
	// (for its log) after it ended; 0 keeps it while the session is.
	FinishedJobTTL time.Duration
	// Reads are its reads: from the controller's informers
	// (lookup.CachedReads), or from the API (lookup.LiveReads).
	Reads *lookup.Reads
	// LocalDirs says where local backends may be mounted from.
	LocalDirs backenddirs.Policy
}

// Reconcile derives the restore's state from its Snapshot, target and Job.
func (r *Reconciler) Reconcile(ctx context.Context, namespace, name string) error {
	rs, err := r.Reads.RestoreSessions.Get(ctx, namespace, name)
	if apierrors.IsNotFound(err) {
		// Deleted: its Job and pods go too.
		return executor.SessionGone(ctx, r.Kube, r.Client, namespace, jobSelector(namespace, name))
	}
	if err != nil {
		return fmt.Errorf("get RestoreSession %s/%s: %w", namespace, name, err)
	}
	if rs.Status.Phase.IsTerminal() && len(rs.Status.PausedBackups) == 0 {
		// Its outcome is recorded: its Job is kept only for its log.
		return executor.SessionRecorded(ctx, r.Kube, r.Reads.ListJobs, namespace, jobSelector(namespace, name), r.FinishedJobTTL, r.Clock.Now())
	}
	st := rs.Status.DeepCopy()
	requeue := false
	if !rs.Status.Phase.IsTerminal() {
		requeue, err = r.run(ctx, rs, st)
		if err != nil {
			return err
		}
	}
	st.Phase = (&catalogv1alpha1.RestoreSession{Status: *st}).CalculatePhase()
	if st.Phase.IsTerminal() {
		if st.Duration == "" {
			st.Duration = r.Clock.Now().Sub(rs.CreationTimestamp.Time).Round(time.Second).String()
		}
		if err := r.resumeBackups(ctx, rs, st); err != nil {
			requeue = true
		}
		if err := access.RevokeSnapshot(ctx, r.Kube, dataNamespace(rs), rs.Namespace, rs.Name); err != nil {
			return err
		}
	}
	if !apiequality.Semantic.DeepEqual(*st, rs.Status) {
		rs = rs.DeepCopy()
		rs.Status = *st
		if _, err := r.Client.CatalogV1alpha1().RestoreSessions(namespace).UpdateStatus(ctx, rs, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update status of RestoreSession %s/%s: %w", namespace, name, err)
		}
	}
	if requeue {
		return loop.ErrRequeue
	}
	return nil
}

func (r *Reconciler) invalid(st *catalogv1alpha1.RestoreSessionStatus, msg string) {
	conditions.Set(&st.Conditions, conditions.False(catalogv1alpha1.TypeValidationPassed, catalogv1alpha1.ReasonResourceValidationFailed, msg))
}

func (r *Reconciler) run(ctx context.Context, rs *catalogv1alpha1.RestoreSession, st *catalogv1alpha1.RestoreSessionStatus) (bool, error) {
	// Tenancy first, before anything of another namespace is looked at:
	// neither the status nor the phase may tell a tenant what exists there.
	if t := rs.Spec.Target; t != nil && t.Namespace != "" && t.Namespace != rs.Namespace {
		r.invalid(st, fmt.Sprintf("spec.target.namespace: %q is not the RestoreSession's namespace %q: a RestoreSession restores only into its own namespace", t.Namespace, rs.Namespace))
		return false, nil
	}
	refused, err := sharing.Check(ctx, r.Kube, rs.Namespace, dataNamespace(rs))
	if err != nil {
		return false, err
	}
	if refused != nil {
		r.invalid(st, "spec.dataSource.namespace: "+refused.Error())
		return false, nil
	}

	snap, err := r.resolveSnapshot(ctx, rs)
	found := err == nil
	st.Dependencies = []catalogv1alpha1.ResourceFoundStatus{{APIGroup: catalogv1alpha1.GroupName, Kind: "Snapshot", Namespace: dataNamespace(rs), Name: snapshotName(rs, snap), Found: ptr.To(found)}}
	if err != nil {
		if apierrors.IsNotFound(err) || errors.Is(err, errNoSnapshot) {
			r.invalid(st, err.Error())
			return false, nil
		}
		return false, err
	}
	target := restoreTarget(rs, snap)
	_, err = r.Kube.CoreV1().PersistentVolumeClaims(target.Namespace).Get(ctx, target.Name, metav1.GetOptions{})
	st.TargetFound = ptr.To(err == nil)
	if err != nil {
		conditions.Set(&st.Conditions, conditions.False(catalogv1alpha1.TypeRestoreTargetFound, catalogv1alpha1.ReasonUnableToCheckTargetAvailability, fmt.Sprintf("PersistentVolumeClaim %s/%s: %v", target.Namespace, target.Name, err)))
		// The target may be created after the restore: look again.
		return true, nil
	}
	conditions.Set(&st.Conditions, conditions.True(catalogv1alpha1.TypeRestoreTargetFound, "TargetAvailable", "PersistentVolumeClaim "+target.Name+" found"))
	conditions.Set(&st.Conditions, conditions.True(catalogv1alpha1.TypeValidationPassed, catalogv1alpha1.ReasonResourceValidationPassed, "restoring Snapshot "+snap.Name))

	if err := r.pauseBackups(ctx, rs, target, st); err != nil {
		return false, err
	}
	if st.TotalComponents == 0 {
		st.TotalComponents = int32(len(components(rs, snap)))
	}
	if rs.Spec.RestoreTimeout != nil && st.RestoreDeadline == nil {
		st.RestoreDeadline = ptr.To(metav1.NewTime(rs.CreationTimestamp.Add(rs.Spec.RestoreTimeout.Duration)))
	}

	job, err := r.ensureJob(ctx, rs, snap, target)
	if errors.Is(err, executor.ErrEarlierJob) {
		return true, nil
	}
	if err != nil {
		conditions.Set(&st.Conditions, conditions.False(catalogv1alpha1.TypeRestoreExecutorEnsured, catalogv1alpha1.ReasonFailedToEnsureRestoreExecutor, err.Error()))
		conditions.Set(&st.Conditions, conditions.True(catalogv1alpha1.TypeMetricsPushed, catalogv1alpha1.ReasonSuccessfullyPushedMetrics, "restore ended"))
		return false, nil
	}
	conditions.Set(&st.Conditions, conditions.True(catalogv1alpha1.TypeRestoreExecutorEnsured, catalogv1alpha1.ReasonSuccessfullyEnsuredRestoreExecutor, "Job "+job.Name))

	done := len(st.Components) > 0 && int32(len(st.Components)) >= st.TotalComponents
	for _, c := range st.Components {
		if !c.Phase.IsTerminal() {
			done = false
		}
	}
	w := executor.Watch{What: "restore", Deadline: st.RestoreDeadline, PendingTimeout: r.PendingTimeout, SkipPending: done, Now: r.Clock.Now()}
	if rs.Spec.RestoreTimeout != nil {
		w.DeadlineExceeded = fmt.Sprintf("restoreTimeout %s exceeded", rs.Spec.RestoreTimeout.Duration)
	}
	out, err := executor.Observe(ctx, r.Kube, job, w)
	if err != nil {
		return false, err
	}
	ended, why := out.Ended, out.Why
	if out.Stuck {
		r.Recorder.Eventf(rs, corev1.EventTypeWarning, catalogv1alpha1.ReasonPodHasBeenInPendingStateForLongerThanExpected, "%s", why)
	}
	if ended && !done {
		conditions.Set(&st.Conditions, conditions.True(catalogv1alpha1.TypeRestoreIncomplete, catalogv1alpha1.ReasonRestoreExecutorTerminatedBeforeCompletion, why))
		done = true
	}
	if done {
		conditions.Set(&st.Conditions, conditions.True(catalogv1alpha1.TypeMetricsPushed, catalogv1alpha1.ReasonSuccessfullyPushedMetrics, "restore finished"))
		return false, nil
	}
	return true, nil
}

var errNoSnapshot = errors.New("no snapshot to restore")

func dataNamespace(rs *catalogv1alpha1.RestoreSession) string {
	if rs.Spec.DataSource.Namespace != "" {
		return rs.Spec.DataSource.Namespace
	}
	return rs.Namespace
}

func snapshotName(rs *catalogv1alpha1.RestoreSession, snap *catalogv1alpha1.Snapshot) string {
	if snap != nil {
		return snap.Name
	}
	return rs.Spec.DataSource.Snapshot
}

// resolveSnapshot finds the Snapshot to restore: by name, the newest
// Succeeded one of the repository ("latest"), or the newest Succeeded one
// at (or, when exclusive, before) the point in time.
func (r *Reconciler) resolveSnapshot(ctx context.Context, rs *catalogv1alpha1.RestoreSession) (*catalogv1alpha1.Snapshot, error) {
	ds := rs.Spec.DataSource
	ns := dataNamespace(rs)
	if ds.PITR == nil && ds.Snapshot != latest {
		if ds.Snapshot == "" {
			return nil, fmt.Errorf("%w: spec.dataSource.snapshot is empty and no pitr is given", errNoSnapshot)
		}
		s, err := r.Client.CatalogV1alpha1().Snapshots(ns).Get(ctx, ds.Snapshot, metav1.GetOptions{})
		if err == nil && s.Status.Phase != catalogv1alpha1.SnapshotSucceeded {
			return nil, fmt.Errorf("%w: Snapshot %s is %s, not Succeeded", errNoSnapshot, s.Name, s.Status.Phase)
		}
		return s, err
	}
	sel := labels.SelectorFromSet(labels.Set{catalogv1alpha1.LabelRepoName: ds.Repository})
	list, err := r.Client.CatalogV1alpha1().Snapshots(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	var candidates []catalogv1alpha1.Snapshot
	for _, s := range list.Items {
		if s.Status.Phase != catalogv1alpha1.SnapshotSucceeded || s.Spec.Repository != ds.Repository {
			continue
		}
		if p := ds.PITR; p != nil && p.TargetTime != nil {
			t := snapshotTime(&s)
			if t.After(p.TargetTime.Time) || (p.Exclusive && t.Equal(p.TargetTime.Time)) {
				continue
			}
		}
		candidates = append(candidates, s)
	}
	if len(candidates) == 0 {
		return nil, fmt.Errorf("%w: no Succeeded Snapshot of repository %s/%s matches", errNoSnapshot, ns, ds.Repository)
	}
	sort.Slice(candidates, func(i, j int) bool {
		ti, tj := snapshotTime(&candidates[i]), snapshotTime(&candidates[j])
		if !ti.Equal(tj) {
			return ti.After(tj)
		}
		return candidates[i].Name > candidates[j].Name
	})
	return &candidates[0], nil
}

func snapshotTime(s *catalogv1alpha1.Snapshot) time.Time {
	if s.Status.SnapshotTime != nil {
		return s.Status.SnapshotTime.Time
	}
	return s.CreationTimestamp.Time
}

func restoreTarget(rs *catalogv1alpha1.RestoreSession, snap *catalogv1alpha1.Snapshot) kmapi.TypedObjectReference {
	t := snap.Spec.AppRef
	if rs.Spec.Target != nil {
		t = *rs.Spec.Target
	}
	// Into the RestoreSession's own namespace, whatever namespace the
	// backup came from (run refuses a spec.target of another one).
	t.Namespace = rs.Namespace
	return t
}

func components(rs *catalogv1alpha1.RestoreSession, snap *catalogv1alpha1.Snapshot) []string {
	if len(rs.Spec.DataSource.Components) > 0 {
		return rs.Spec.DataSource.Components
	}
	var out []string
	for name := range snap.Status.Components {
		out = append(out, name)
	}
	return out
}

// PausedByAnnotation marks a BackupConfiguration paused by a restore with
// "<namespace>/<name>/<uid>" of its RestoreSession. The mark, not the
// RestoreSession's status, is what undoes the pause: the BackupConfiguration
// controller resumes a configuration whose RestoreSession has ended or is
// gone, even when it was deleted while no controller ran.
const PausedByAnnotation = "catalog.kubestash.com/paused-by-restore"

func pauseMark(rs *catalogv1alpha1.RestoreSession) string {
	return rs.Namespace + "/" + rs.Name + "/" + string(rs.UID)
}

// PauseOrphaned reports whether the restore that paused a configuration
// with mark has ended or no longer exists. A failed lookup is an error, not
// an orphan: a catalog outage must not resume backups during a restore.
func PauseOrphaned(ctx context.Context, client versioned.Interface, mark string) (bool, error) {
	parts := strings.SplitN(mark, "/", 3)
	if len(parts) != 3 {
		return true, nil // not a mark of ours: nobody will ever undo it
	}
	rs, err := client.CatalogV1alpha1().RestoreSessions(parts[0]).Get(ctx, parts[1], metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("get RestoreSession %s/%s: %w", parts[0], parts[1], err)
	}
	return string(rs.UID) != parts[2] || rs.Status.Phase.IsTerminal(), nil
}

// pauseBackups pauses the BackupConfigurations of the target that are not
// paused already, marks and records them so that only those are resumed. A
// configuration paused by a restore that is over is taken over.
func (r *Reconciler) pauseBackups(ctx context.Context, rs *catalogv1alpha1.RestoreSession, target kmapi.TypedObjectReference, st *catalogv1alpha1.RestoreSessionStatus) error {
	bcs, err := r.Client.CoreV1alpha1().BackupConfigurations(target.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list BackupConfigurations: %w", err)
	}
	recorded := map[string]bool{}
	for _, p := range st.PausedBackups {
		recorded[p.Namespace+"/"+p.Name] = true
	}
	mine := pauseMark(rs)
	for _, bc := range bcs.Items {
		t := bc.Spec.Target
		if t == nil || t.Kind != target.Kind || t.Name != target.Name || (t.Namespace != "" && t.Namespace != target.Namespace) {
			continue
		}
		if recorded[bc.Namespace+"/"+bc.Name] {
			continue
		}
		ref := kmapi.TypedObjectReference{APIGroup: corev1alpha1.SchemeGroupVersion.Group, Kind: "BackupConfiguration", Namespace: bc.Namespace, Name: bc.Name}
		if bc.Spec.Paused {
			mark, byRestore := bc.Annotations[PausedByAnnotation]
			if mark == mine {
				// Paused by this restore, but the status that said so was
				// not written.
				st.PausedBackups = append(st.PausedBackups, ref)
				continue
			}
			if !byRestore {
				continue // paused by its owner: theirs to resume
			}
			if orphaned, err := PauseOrphaned(ctx, r.Client, mark); err != nil || !orphaned {
				continue // another restore runs: it resumes when done
			}
		}
		bc := bc.DeepCopy()
		bc.Spec.Paused = true
		if bc.Annotations == nil {
			bc.Annotations = map[string]string{}
		}
		bc.Annotations[PausedByAnnotation] = mine
		if _, err := r.Client.CoreV1alpha1().BackupConfigurations(bc.Namespace).Update(ctx, bc, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("pause BackupConfiguration %s/%s: %w", bc.Namespace, bc.Name, err)
		}
		st.PausedBackups = append(st.PausedBackups, ref)
	}
	return nil
}

// resumeBackups unpauses what pauseBackups paused, if it still carries this
// restore's mark, and forgets each one resumed.
func (r *Reconciler) resumeBackups(ctx context.Context, rs *catalogv1alpha1.RestoreSession, st *catalogv1alpha1.RestoreSessionStatus) error {
	var left []kmapi.TypedObjectReference
	var errs []error
	for _, p := range st.PausedBackups {
		bc, err := r.Client.CoreV1alpha1().BackupConfigurations(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err == nil && bc.Annotations[PausedByAnnotation] == pauseMark(rs) {
			_, err = Resume(ctx, r.Client, bc)
		}
		if err != nil {
			left = append(left, p)
			errs = append(errs, err)
		}
	}
	st.PausedBackups = left
	return errors.Join(errs...)
}

// Resume unpauses a configuration a restore paused and removes the mark.
func Resume(ctx context.Context, client versioned.Interface, bc *corev1alpha1.BackupConfiguration) (*corev1alpha1.BackupConfiguration, error) {
	bc = bc.DeepCopy()
	bc.Spec.Paused = false
	delete(bc.Annotations, PausedByAnnotation)
	out, err := client.CoreV1alpha1().BackupConfigurations(bc.Namespace).Update(ctx, bc, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("resume BackupConfiguration %s/%s: %w", bc.Namespace, bc.Name, err)
	}
	return out, nil
}

func (r *Reconciler) ensureJob(ctx context.Context, rs *catalogv1alpha1.RestoreSession, snap *catalogv1alpha1.Snapshot, target kmapi.TypedObjectReference) (*batchv1.Job, error) {
	name := catalogv1alpha1.ValidNameWithPrefixNSuffix("", rs.Name, "")
	if job, err := r.Reads.Jobs.Get(ctx, rs.Namespace, name); err == nil {
		return executor.ForSession(ctx, r.Kube, job, rs.UID)
	} else if !apierrors.IsNotFound(err) {
		return nil, err
	}
	repo, err := r.Client.CatalogV1alpha1().Repositories(snap.Namespace).Get(ctx, snap.Spec.Repository, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("Repository %s/%s: %w", snap.Namespace, snap.Spec.Repository, err)
	}
	storage := repo.Spec.StorageRef
	if storage.Namespace == "" {
		storage.Namespace = repo.Namespace
	}
	// The Secrets go in by secretKeyRef: the Job's account reads none. The
	// RestoreSession's encryption Secret wins over the Repository's, as in
	// the agent.
	var enc kmapi.ObjectReference
	switch {
	case rs.Spec.DataSource.EncryptionSecret != nil && rs.Spec.DataSource.EncryptionSecret.Name != "":
		enc = *rs.Spec.DataSource.EncryptionSecret
		if enc.Namespace == "" {
			enc.Namespace = rs.Namespace
		}
	case repo.Spec.EncryptionSecret != nil:
		enc = *repo.Spec.EncryptionSecret
		if enc.Namespace == "" {
			enc.Namespace = repo.Namespace
		}
	}
	env, sh, err := access.SecretEnv(ctx, r.Client, rs.Namespace, repo.Name, enc, storage)
	if err != nil {
		return nil, err
	}
	var shared []*storagev1alpha1.BackupStorage
	if sh != nil {
		shared = append(shared, sh)
	}
	lbls := jobSelector(rs.Namespace, rs.Name)
	lbls[storagev1alpha1.LabelManagedBy] = storagev1alpha1.LabelManagedByValue
	job, acct, err := executor.TaskJob{
		Client: r.Client, Kube: r.Kube, LocalDirs: r.LocalDirs,
		Name: name, Namespace: rs.Namespace,
		Addon: rs.Spec.Addon, Field: field.NewPath("spec", "addon"),
		Inputs: map[string]string{addon.InputNamespace: rs.Namespace, addon.InputRestoreSession: rs.Name, addon.InputSnapshot: snap.Name, addon.InputPVCName: target.Name},
		Env:    env, Storages: []kmapi.ObjectReference{storage}, Shared: shared,
		ServiceAccount: RestoreServiceAccount, ClusterRole: RestoreClusterRole,
		Labels: lbls, Timeout: rs.Spec.RestoreTimeout,
	}.Build(ctx)
	if err != nil {
		return nil, err
	}
	// From a namespace that shares its snapshots (run checked it): the
	// agent reads the Snapshot and its Repository there.
	if err := access.GrantSnapshot(ctx, r.Kube, snap, acct, rs.Namespace, rs.Name); err != nil {
		return nil, err
	}
	executor.Stamp(job, rs.UID, snap.Namespace, snap.Spec.Repository)
	created, err := r.Kube.BatchV1().Jobs(rs.Namespace).Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create Job %s: %w", name, err)
	}
	r.Recorder.Eventf(rs, corev1.EventTypeNormal, "RestoreExecutorEnsured", "Created Job %s to restore Snapshot %s", name, snap.Name)
	return created, nil
}

// jobSelector finds the restore Job of RestoreSession namespace/name.
func jobSelector(namespace, name string) labels.Set {
	return labels.Set{
		storagev1alpha1.LabelComponent:    JobComponent,
		catalogv1alpha1.LabelInvokerName:  name,
		"kubestash.com/invoker-namespace": namespace,
	}
}

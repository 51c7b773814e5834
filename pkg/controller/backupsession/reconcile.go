// Package backupsession reconciles BackupSessions: it skips one whose
// session is already running, creates one Snapshot per repository, runs the
// backup Job built from the session's Addon and Function, rolls the
// Snapshots' phases up into the session's, fails what a vanished or early
// ended Job left unfinished, and keeps sessionHistoryLimit sessions.
package backupsession

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
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/backenddirs"
	"kubestash.dev/kubestash/pkg/conditions"
	"kubestash.dev/kubestash/pkg/controller/access"
	"kubestash.dev/kubestash/pkg/controller/executor"
	"kubestash.dev/kubestash/pkg/controller/lookup"
	"kubestash.dev/kubestash/pkg/controller/loop"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/retention"
)

// Names of the identity the backup Jobs run as.
const (
	BackupServiceAccount = "kubestash-backup"
	BackupClusterRole    = "kubestash-backup-job"
	componentDump        = "dump"
	labelSessionName     = "kubestash.com/session-name"
	labelInvokerNS       = "kubestash.com/invoker-namespace"
)

// Reconciler reconciles one BackupSession at a time.
type Reconciler struct {
	Kube     kubernetes.Interface
	Client   versioned.Interface
	Recorder record.EventRecorder
	// Clock is the controller's clock (clock.RealClock{}; a fake one in tests).
	Clock clock.PassiveClock
	// AgentImage is the image of the agent, which the retention Job runs.
	AgentImage string
	// PendingTimeout is how long a backup Job's pod may stay Pending before
	// the session fails; 0 means executor.DefaultPendingTimeout.
	PendingTimeout time.Duration
	// FinishedJobTTL is how long the Jobs of a finished session are kept
	// (for their log) after they ended; 0 keeps them while the session is.
	FinishedJobTTL time.Duration
	// Reads are its reads: from the controller's informers
	// (lookup.CachedReads), or from the API (lookup.LiveReads).
	Reads *lookup.Reads
	// OpenBackend opens a BackupStorage's backend from this process, to
	// look for forget marks; nil means its Secret and storagebackend.Build.
	OpenBackend func(context.Context, *storagev1alpha1.BackupStorage) (backend.Backend, error)
	// LocalDirs says where local backends may be mounted from.
	LocalDirs backenddirs.Policy
}

// Reconcile derives the BackupSession's state from what exists now: its
// configuration, its Snapshots and its Job.
func (r *Reconciler) Reconcile(ctx context.Context, namespace, name string) error {
	bs, err := r.Reads.BackupSessions.Get(ctx, namespace, name)
	if apierrors.IsNotFound(err) {
		// Deleted: its backup and retention Jobs, and their pods, go too.
		return executor.SessionGone(ctx, r.Kube, r.Client, namespace, sessionJobs(namespace, name))
	}
	if err != nil {
		return fmt.Errorf("get BackupSession %s/%s: %w", namespace, name, err)
	}
	if bs.Status.Phase.IsTerminal() && conditions.Get(bs.Status.Conditions, catalogv1alpha1.TypeSessionHistoryCleaned) != nil && !retryDue(bs) {
		// Its outcome is recorded: its Jobs are kept only for their log.
		return executor.SessionRecorded(ctx, r.Kube, r.Reads.ListJobs, namespace, sessionJobs(namespace, name), r.FinishedJobTTL, r.Clock.Now())
	}
	st := bs.Status.DeepCopy()
	requeue := false
	bc, session, err := r.invoker(ctx, bs)
	fresh := false
	if err == nil && conditions.Get(st.Conditions, catalogv1alpha1.TypeSnapshotsEnsured) == nil {
		// Before anything is started: may this session run at all? (A
		// status write lost after the start must not turn a running
		// session into a Skipped one, hence started.)
		started, serr := r.started(ctx, bs, session)
		if serr != nil {
			return serr
		}
		fresh = !started
	}
	switch {
	case err != nil && !apierrors.IsNotFound(err) && !errors.Is(err, errNoSession):
		return err
	case err != nil:
		r.skip(st, err.Error())
	case fresh:
		reason, err := r.skipReason(ctx, bs, bc)
		if err != nil {
			return err
		}
		if reason != "" {
			r.skip(st, reason)
			break
		}
		fallthrough
	default:
		requeue, err = r.run(ctx, bs, bc, session, st)
		if err != nil {
			return err
		}
	}

	st.Phase = (&catalogv1alpha1.BackupSession{Status: *st}).CalculatePhase()
	if st.Phase.IsTerminal() {
		if st.Duration == "" {
			st.Duration = r.Clock.Now().Sub(bs.CreationTimestamp.Time).Round(time.Second).String()
		}
		if bc != nil && session != nil {
			r.cleanHistory(ctx, bs, session, st)
		} else {
			conditions.Set(&st.Conditions, conditions.True(catalogv1alpha1.TypeSessionHistoryCleaned, catalogv1alpha1.ReasonSuccessfullyCleanedSessionHistory, "nothing to clean"))
		}
	}
	if st.Phase == catalogv1alpha1.BackupSessionFailed && session != nil && r.retry(ctx, bs, bc, session, st) {
		requeue = true
	}
	if !apiequality.Semantic.DeepEqual(*st, bs.Status) {
		bs = bs.DeepCopy()
		bs.Status = *st
		if _, err := r.Client.CatalogV1alpha1().BackupSessions(namespace).UpdateStatus(ctx, bs, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update status of BackupSession %s/%s: %w", namespace, name, err)
		}
	}
	if requeue {
		return loop.ErrRequeue
	}
	return nil
}

var errNoSession = errors.New("no such session")

// sessionJobs selects the backup and retention Jobs of session ns/name.
func sessionJobs(ns, name string) labels.Set {
	return labels.Set{catalogv1alpha1.LabelInvokerName: name, labelInvokerNS: ns}
}

// retryDue reports whether a failed session still owes its retry.
func retryDue(bs *catalogv1alpha1.BackupSession) bool {
	return bs.Status.Phase == catalogv1alpha1.BackupSessionFailed && bs.Spec.RetryLeft > 0 && !ptr.Deref(bs.Status.Retried, false)
}

// retry follows retryConfig: a failed session with retries left gets a new
// session, with one retry less, once the delay has passed. It reports
// whether to look again (the delay is still running).
func (r *Reconciler) retry(ctx context.Context, bs *catalogv1alpha1.BackupSession, bc *corev1alpha1.BackupConfiguration, s *corev1alpha1.Session, st *catalogv1alpha1.BackupSessionStatus) bool {
	if bs.Spec.RetryLeft <= 0 || ptr.Deref(st.Retried, false) {
		return false
	}
	if st.NextRetry == nil {
		delay := time.Duration(0)
		if s.RetryConfig != nil {
			delay = s.RetryConfig.Delay.Duration
		}
		st.NextRetry = ptr.To(metav1.NewTime(r.Clock.Now().Add(delay).Truncate(time.Second)))
	}
	if r.Clock.Now().Before(st.NextRetry.Time) {
		return true
	}
	next := &catalogv1alpha1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{
			Name:      catalogv1alpha1.ValidNameWithPrefixNSuffix(bc.Name, s.Name, fmt.Sprint(r.Clock.Now().Unix())),
			Namespace: bs.Namespace,
			Labels:    bs.Labels,
		},
		Spec: *bs.Spec.DeepCopy(),
	}
	next.Spec.RetryLeft = bs.Spec.RetryLeft - 1
	if _, err := r.Client.CatalogV1alpha1().BackupSessions(bs.Namespace).Create(ctx, next, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		r.Recorder.Eventf(bs, corev1.EventTypeWarning, "RetryFailed", "Cannot create the retry session: %v", err)
		return true
	}
	r.Recorder.Eventf(bs, corev1.EventTypeNormal, "Retried", "Created BackupSession %s (%d retries left)", next.Name, next.Spec.RetryLeft)
	st.Retried = ptr.To(true)
	return false
}

func (r *Reconciler) invoker(ctx context.Context, bs *catalogv1alpha1.BackupSession) (*corev1alpha1.BackupConfiguration, *corev1alpha1.Session, error) {
	if bs.Spec.Invoker.Kind != "BackupConfiguration" {
		return nil, nil, fmt.Errorf("%w: invoker kind %q is not supported", errNoSession, bs.Spec.Invoker.Kind)
	}
	bc, err := r.Client.CoreV1alpha1().BackupConfigurations(bs.Namespace).Get(ctx, bs.Spec.Invoker.Name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	for i := range bc.Spec.Sessions {
		if bc.Spec.Sessions[i].Name == bs.Spec.Session {
			return bc, &bc.Spec.Sessions[i], nil
		}
	}
	return nil, nil, fmt.Errorf("%w: BackupConfiguration %s has no session %q", errNoSession, bc.Name, bs.Spec.Session)
}

func (r *Reconciler) skip(st *catalogv1alpha1.BackupSessionStatus, reason string) {
	conditions.Set(&st.Conditions, conditions.True(catalogv1alpha1.TypeBackupSkipped, catalogv1alpha1.ReasonSkippedTakingNewBackup, reason))
}

// skipReason says why a new session must not run: its configuration is
// paused or not Ready, or another session of the same configuration and
// session name is still running.
func (r *Reconciler) skipReason(ctx context.Context, bs *catalogv1alpha1.BackupSession, bc *corev1alpha1.BackupConfiguration) (string, error) {
	if bc.Spec.Paused {
		return fmt.Sprintf("BackupConfiguration %s is paused", bc.Name), nil
	}
	if bc.Status.Phase != corev1alpha1.BackupInvokerReady {
		why := fmt.Sprintf("BackupConfiguration %s is not Ready (%s)", bc.Name, bc.Status.Phase)
		if c := conditions.Get(bc.Status.Conditions, corev1alpha1.TypeReady); c != nil && c.Message != "" {
			why += ": " + c.Message
		}
		return why, nil
	}
	// Fails closed: without the list, nothing starts; the reconcile is
	// retried.
	others, err := r.sessions(ctx, bs.Namespace, bc.Name, bs.Spec.Session)
	if err != nil {
		return "", fmt.Errorf("list the BackupSessions of %s/%s: %w", bs.Namespace, bc.Name, err)
	}
	for _, o := range others {
		if o.Name == bs.Name || o.Status.Phase.IsTerminal() || conditions.Get(o.Status.Conditions, catalogv1alpha1.TypeSnapshotsEnsured) == nil {
			continue
		}
		return fmt.Sprintf("BackupSession %s of the same session is still running", o.Name), nil
	}
	return "", nil
}

// started reports whether bs's Job or one of its Snapshots exists: the
// session was started, whatever its stored status says. A failed lookup
// is an error, not "not started".
func (r *Reconciler) started(ctx context.Context, bs *catalogv1alpha1.BackupSession, s *corev1alpha1.Session) (bool, error) {
	job := catalogv1alpha1.ValidNameWithPrefixNSuffix("", bs.Name, "")
	_, err := r.Reads.Jobs.Get(ctx, bs.Namespace, job)
	switch {
	case err == nil:
		return true, nil
	case !apierrors.IsNotFound(err):
		return false, fmt.Errorf("get Job %s/%s: %w", bs.Namespace, job, err)
	}
	if s == nil {
		return false, nil
	}
	for _, repo := range s.Repositories {
		name := catalogv1alpha1.GenerateSnapshotName(repo.Name, bs.Name)
		_, err := r.Client.CatalogV1alpha1().Snapshots(bs.Namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil:
			return true, nil
		case !apierrors.IsNotFound(err):
			return false, fmt.Errorf("get Snapshot %s/%s: %w", bs.Namespace, name, err)
		}
	}
	return false, nil
}

// sessions lists the BackupSessions of one session of a configuration.
func (r *Reconciler) sessions(ctx context.Context, ns, bc, session string) ([]catalogv1alpha1.BackupSession, error) {
	sel := labels.SelectorFromSet(labels.Set{catalogv1alpha1.LabelInvokerName: bc})
	list, err := r.Client.CatalogV1alpha1().BackupSessions(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	var out []catalogv1alpha1.BackupSession
	for _, b := range list.Items {
		if b.Spec.Session == session && b.Spec.Invoker.Name == bc {
			out = append(out, b)
		}
	}
	return out, nil
}

// run ensures the Snapshots and the Job and observes both.
func (r *Reconciler) run(ctx context.Context, bs *catalogv1alpha1.BackupSession, bc *corev1alpha1.BackupConfiguration, s *corev1alpha1.Session, st *catalogv1alpha1.BackupSessionStatus) (bool, error) {
	if bs.Spec.BackupTimeout != nil && st.BackupDeadline == nil {
		st.BackupDeadline = ptr.To(metav1.NewTime(bs.CreationTimestamp.Add(bs.Spec.BackupTimeout.Duration)))
	}
	snaps, err := r.ensureSnapshots(ctx, bs, bc, s)
	if err != nil {
		conditions.Set(&st.Conditions, conditions.False(catalogv1alpha1.TypeSnapshotsEnsured, catalogv1alpha1.ReasonFailedToEnsureSnapshots, err.Error()))
		return false, err
	}
	conditions.Set(&st.Conditions, conditions.True(catalogv1alpha1.TypeSnapshotsEnsured, catalogv1alpha1.ReasonSuccessfullyEnsuredSnapshots, fmt.Sprintf("%d snapshots", len(snaps))))
	st.TotalSnapshots = ptr.To(int32(len(snaps)))

	job, err := r.ensureJob(ctx, bs, bc, s)
	if errors.Is(err, executor.ErrEarlierJob) {
		return true, nil
	}
	if err != nil {
		conditions.Set(&st.Conditions, conditions.False(catalogv1alpha1.TypeBackupExecutorEnsured, catalogv1alpha1.ReasonFailedToEnsureBackupExecutor, err.Error()))
		// Nothing will run: end the session rather than leave it Pending.
		conditions.Set(&st.Conditions, conditions.True(catalogv1alpha1.TypeMetricsPushed, catalogv1alpha1.ReasonSuccessfullyPushedMetrics, "session ended"))
		r.Recorder.Eventf(bs, corev1.EventTypeWarning, "BackupExecutorNotEnsured", "%v", err)
		// Its Snapshots will get no backup either: they fail, saying why,
		// rather than stay Pending.
		settled, _, err := r.settleSnapshots(ctx, snaps, st, true, "no backup Job: "+err.Error())
		if err != nil {
			return false, err
		}
		r.recordOutcome(bs, st, settled)
		return false, nil
	}
	conditions.Set(&st.Conditions, conditions.True(catalogv1alpha1.TypeBackupExecutorEnsured, catalogv1alpha1.ReasonSuccessfullyEnsuredBackupExecutor, "Job "+job.Name))

	// The Job ended, or the deadline passed, while a component was
	// unfinished: that component will never finish.
	w := executor.Watch{What: "backup", Deadline: st.BackupDeadline, PendingTimeout: r.PendingTimeout, Now: r.Clock.Now()}
	if bs.Spec.BackupTimeout != nil {
		w.DeadlineExceeded = fmt.Sprintf("backupTimeout %s exceeded", bs.Spec.BackupTimeout.Duration)
	}
	out, err := executor.Observe(ctx, r.Kube, job, w)
	if err != nil {
		return false, err
	}
	ended, why := out.Ended, out.Why
	if out.Stuck {
		conditions.Set(&st.Conditions, conditions.True(catalogv1alpha1.TypePodHasBeenInPendingStateForLongerThanExpected, catalogv1alpha1.ReasonPodHasBeenInPendingStateForLongerThanExpected, why))
		r.Recorder.Eventf(bs, corev1.EventTypeWarning, catalogv1alpha1.ReasonPodHasBeenInPendingStateForLongerThanExpected, "%s", why)
	}
	settled, allTerminal, err := r.settleSnapshots(ctx, snaps, st, ended, why)
	if err != nil {
		return false, err
	}
	if allTerminal {
		r.recordOutcome(bs, st, settled)
		r.applyRetention(ctx, bs, bc, s, st)
		if !r.forget(ctx, bs, bc, s, st) {
			return true, nil // the retention Job is running
		}
		for _, repo := range s.Repositories {
			if err := r.refreshRepository(ctx, bs.Namespace, repo.Name); err != nil {
				// Repository status is a summary; the backup itself stands.
				r.Recorder.Eventf(bs, corev1.EventTypeWarning, "RepositoryStatusNotUpdated", "%v", err)
			}
		}
		// The last step of a session (upstream pushes metrics here).
		conditions.Set(&st.Conditions, conditions.True(catalogv1alpha1.TypeMetricsPushed, catalogv1alpha1.ReasonSuccessfullyPushedMetrics, "all snapshots finished"))
		return false, nil
	}
	// Components report through the Snapshots, which we may not watch:
	// look again soon.
	return true, nil
}

// settleSnapshots settles each of snaps (ended: its Job ended, for why),
// lists them in st and reports whether every one has finished.
func (r *Reconciler) settleSnapshots(ctx context.Context, snaps []catalogv1alpha1.Snapshot, st *catalogv1alpha1.BackupSessionStatus,
	ended bool, why string) ([]*catalogv1alpha1.Snapshot, bool, error) {
	st.Snapshots = nil
	allTerminal := true
	var settled []*catalogv1alpha1.Snapshot
	for i := range snaps {
		snap, err := r.settleSnapshot(ctx, &snaps[i], ended, why)
		if err != nil {
			return nil, false, err
		}
		settled = append(settled, snap)
		st.Snapshots = append(st.Snapshots, catalogv1alpha1.BackupSessionSnapshotStatus{
			Name: snap.Name, Phase: snap.Status.Phase, AppRef: ptr.To(snap.Spec.AppRef), Repository: snap.Spec.Repository,
		})
		if snap.Status.Phase != catalogv1alpha1.SnapshotSucceeded && snap.Status.Phase != catalogv1alpha1.SnapshotFailed {
			allTerminal = false
		}
	}
	return settled, allTerminal, nil
}

// Condition of a finished session: did its Snapshots succeed, and if not,
// the failing component's reason and message, so that the session itself
// says why (upstream leaves that to the Snapshot).
const (
	TypeBackupSucceeded         = "BackupSucceeded"
	ReasonBackupSucceeded       = "SuccessfullyBackedUp"
	ReasonComponentBackupFailed = "ComponentBackupFailed"
	ReasonSnapshotBackupFailed  = "SnapshotBackupFailed"
	maxConditionMessage         = 1024
)

// recordOutcome sets BackupSucceeded from the settled Snapshots and, when it
// turns False or its reason or message changes, records a Warning event with
// the same reason and message (once, not on every look).
func (r *Reconciler) recordOutcome(bs *catalogv1alpha1.BackupSession, st *catalogv1alpha1.BackupSessionStatus, snaps []*catalogv1alpha1.Snapshot) {
	reason, msg := failureOf(snaps)
	if reason == "" {
		conditions.Set(&st.Conditions, conditions.True(TypeBackupSucceeded, ReasonBackupSucceeded, fmt.Sprintf("%d snapshots succeeded", len(snaps))))
		return
	}
	prev := conditions.Get(bs.Status.Conditions, TypeBackupSucceeded)
	conditions.Set(&st.Conditions, conditions.False(TypeBackupSucceeded, reason, msg))
	if prev == nil || prev.Status != metav1.ConditionFalse || prev.Reason != reason || prev.Message != msg {
		r.Recorder.Eventf(bs, corev1.EventTypeWarning, reason, "%s", msg)
	}
}

// failureOf says why the first failed Snapshot failed: its failed
// components' errors (what the agent reported, never a Secret's content),
// else the condition that failed it. Empty when none failed.
func failureOf(snaps []*catalogv1alpha1.Snapshot) (reason, msg string) {
	var why []string
	for _, snap := range snaps {
		if snap.Status.Phase != catalogv1alpha1.SnapshotFailed {
			continue
		}
		names := make([]string, 0, len(snap.Status.Components))
		for n := range snap.Status.Components {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if c := snap.Status.Components[n]; c.Phase == catalogv1alpha1.ComponentPhaseFailed {
				reason = ReasonComponentBackupFailed
				why = append(why, fmt.Sprintf("Snapshot %s, component %s: %s", snap.Name, n, orUnknown(c.Error)))
			}
		}
		if len(why) > 0 {
			break
		}
		for _, c := range snap.Status.Conditions {
			if (c.Type == catalogv1alpha1.TypeBackupIncomplete && c.Status == metav1.ConditionTrue) || c.Status == metav1.ConditionFalse {
				return c.Reason, truncate(fmt.Sprintf("Snapshot %s: %s", snap.Name, orUnknown(c.Message)))
			}
		}
		return ReasonSnapshotBackupFailed, fmt.Sprintf("Snapshot %s failed", snap.Name)
	}
	return reason, truncate(strings.Join(why, "; "))
}

func orUnknown(s string) string {
	if s == "" {
		return "no error reported"
	}
	return s
}

// truncate keeps a condition message readable (restic can print pages).
func truncate(s string) string {
	if len(s) <= maxConditionMessage {
		return s
	}
	return s[:maxConditionMessage-3] + "..."
}

// applyRetention runs, once per repository, the RetentionPolicy of the
// repository's backend, and records the outcome in status. A failure is
// reported there (and fails the session), never silent.
func (r *Reconciler) applyRetention(ctx context.Context, bs *catalogv1alpha1.BackupSession, bc *corev1alpha1.BackupConfiguration, s *corev1alpha1.Session, st *catalogv1alpha1.BackupSessionStatus) {
	done := map[string]bool{}
	for _, e := range st.RetentionPolicies {
		done[e.Repository] = e.Phase != ""
	}
	var entries []catalogv1alpha1.RetentionPolicyApplyStatus
	for _, repo := range s.Repositories {
		if done[repo.Name] {
			continue
		}
		rp, ok := bc.RetentionPolicyOf(repo)
		if !ok {
			continue
		}
		e := catalogv1alpha1.RetentionPolicyApplyStatus{Ref: rp, Repository: repo.Name, Phase: catalogv1alpha1.RetentionPolicyApplied}
		policy, err := r.Client.StorageV1alpha1().RetentionPolicies(rp.Namespace).Get(ctx, rp.Name, metav1.GetOptions{})
		if err == nil {
			var removed []string
			removed, err = retention.Apply(ctx, r.Client, bs.Namespace, repo.Name, policy, r.Clock.Now())
			if len(removed) > 0 {
				r.Recorder.Eventf(bs, corev1.EventTypeNormal, "RetentionPolicyApplied", "Removed %d snapshots of %s: %s", len(removed), repo.Name, strings.Join(removed, ", "))
			}
			// Their restic data goes in the retention Job (see forget).
			if err == nil && (len(removed) > 0 || r.hasForgetMarks(ctx, bc, repo)) {
				e.Phase = catalogv1alpha1.RetentionPolicyPending
			}
		}
		if err != nil {
			e.Phase, e.Error = catalogv1alpha1.RetentionPolicyFailedToApply, err.Error()
		}
		entries = append(entries, e)
	}
	for _, e := range entries {
		replaced := false
		for i := range st.RetentionPolicies {
			if st.RetentionPolicies[i].Repository == e.Repository {
				st.RetentionPolicies[i], replaced = e, true
			}
		}
		if !replaced {
			st.RetentionPolicies = append(st.RetentionPolicies, e)
		}
	}
	conditions.Set(&st.Conditions, conditions.True(catalogv1alpha1.TypeRetentionPolicyExecutorEnsured, catalogv1alpha1.ReasonSuccessfullyEnsuredRetentionPolicyExecutor, "catalog retention applied by the controller; restic data by Job "+retentionJobName(bs.Name)))
}

// ensureSnapshots creates the Snapshot of each repository of the session
// (upstream names and labels) and returns them.
func (r *Reconciler) ensureSnapshots(ctx context.Context, bs *catalogv1alpha1.BackupSession, bc *corev1alpha1.BackupConfiguration, s *corev1alpha1.Session) ([]catalogv1alpha1.Snapshot, error) {
	client := r.Client.CatalogV1alpha1().Snapshots(bs.Namespace)
	target := *bc.Spec.Target
	if target.Namespace == "" {
		target.Namespace = bc.Namespace
	}
	var out []catalogv1alpha1.Snapshot
	for _, repo := range s.Repositories {
		name := catalogv1alpha1.GenerateSnapshotName(repo.Name, bs.Name)
		snap, err := client.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			snap, err = client.Create(ctx, &catalogv1alpha1.Snapshot{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: bs.Namespace, Labels: map[string]string{
					catalogv1alpha1.LabelRepoName:        repo.Name,
					catalogv1alpha1.LabelAppRefKind:      target.Kind,
					catalogv1alpha1.LabelAppRefName:      target.Name,
					catalogv1alpha1.LabelAppRefNamespace: target.Namespace,
					catalogv1alpha1.LabelInvokerName:     bc.Name,
					labelSessionName:                     s.Name,
				}},
				Spec: catalogv1alpha1.SnapshotSpec{
					SnapshotID:     newULID(r.Clock.Now()),
					Type:           catalogv1alpha1.BackupTypeFull,
					Repository:     repo.Name,
					Session:        s.Name,
					BackupSession:  bs.Name,
					Version:        "v1",
					AppRef:         target,
					DeletionPolicy: catalogv1alpha1.DeletionPolicyDelete,
				},
			}, metav1.CreateOptions{})
			if err == nil {
				snap.Status.Phase = catalogv1alpha1.SnapshotPending
				snap.Status.TotalComponents = 1 // one Job for a PVC
				snap, err = client.UpdateStatus(ctx, snap, metav1.UpdateOptions{})
			}
		}
		if err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", name, err)
		}
		out = append(out, *snap)
	}
	return out, nil
}

// settleSnapshot derives a Snapshot's phase, marks it incomplete when its
// executor ended first, and fills what the finished backup tells.
func (r *Reconciler) settleSnapshot(ctx context.Context, snap *catalogv1alpha1.Snapshot, executorEnded bool, why string) (*catalogv1alpha1.Snapshot, error) {
	s := snap.DeepCopy()
	componentsDone := len(s.Status.Components) > 0
	for _, c := range s.Status.Components {
		if c.Phase != catalogv1alpha1.ComponentPhaseSucceeded && c.Phase != catalogv1alpha1.ComponentPhaseFailed {
			componentsDone = false
		}
	}
	if executorEnded && !componentsDone && s.Status.Phase != catalogv1alpha1.SnapshotFailed {
		conditions.Set(&s.Status.Conditions, conditions.True(catalogv1alpha1.TypeBackupIncomplete, catalogv1alpha1.ReasonBackupExecutorTerminatedBeforeCompletion, why))
	}
	if componentsDone && int32(len(s.Status.Components)) >= s.Status.TotalComponents {
		// Every status write of a Snapshot is its file in the backend, so
		// the metadata is uploaded by the time we see the components.
		conditions.Set(&s.Status.Conditions, conditions.True(catalogv1alpha1.TypeSnapshotMetadataUploaded, catalogv1alpha1.ReasonSuccessfullyUploadedSnapshotMetadata, "written to the backend"))
		if s.Status.SnapshotTime == nil {
			s.Status.SnapshotTime = ptr.To(metav1.NewTime(r.Clock.Now().UTC().Truncate(time.Second)))
		}
		integrity, size := summarize(s)
		s.Status.Integrity, s.Status.Size = integrity, size
	}
	s.Status.Phase = s.CalculatePhase()
	if apiequality.Semantic.DeepEqual(s.Status, snap.Status) {
		return s, nil
	}
	s.Status.LastUpdateTime = ptr.To(metav1.NewTime(r.Clock.Now()))
	out, err := r.Client.CatalogV1alpha1().Snapshots(s.Namespace).UpdateStatus(ctx, s, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("update status of Snapshot %s: %w", s.Name, err)
	}
	return out, nil
}

// summarize is upstream's rule: integrity is the AND of the components'
// (unknown while any lacks it); size is the components' sizes, shown only
// when every component has one.
func summarize(s *catalogv1alpha1.Snapshot) (*bool, string) {
	var integrity *bool
	all := true
	var sizes []string
	for _, c := range s.Status.Components {
		if c.Integrity == nil {
			all = false
		} else if integrity == nil || *integrity {
			integrity = ptr.To(*c.Integrity)
		}
		if c.Size != "" {
			sizes = append(sizes, c.Size)
		}
	}
	if !all {
		integrity = nil
	}
	size := ""
	if len(sizes) == len(s.Status.Components) && len(sizes) == 1 {
		size = sizes[0]
	} else if len(sizes) == len(s.Status.Components) {
		sort.Strings(sizes)
		size = strings.Join(sizes, "+")
	}
	return integrity, size
}

// ensureJob creates the backup Job from the session's Addon task and its
// Function, run as the namespace's backup ServiceAccount.
func (r *Reconciler) ensureJob(ctx context.Context, bs *catalogv1alpha1.BackupSession, bc *corev1alpha1.BackupConfiguration, s *corev1alpha1.Session) (*batchv1.Job, error) {
	name := catalogv1alpha1.ValidNameWithPrefixNSuffix("", bs.Name, "")
	if job, err := r.Reads.Jobs.Get(ctx, bs.Namespace, name); err == nil {
		return executor.ForSession(ctx, r.Kube, job, bs.UID)
	} else if !apierrors.IsNotFound(err) {
		return nil, err
	}
	// The Secrets go in by secretKeyRef: the Job's account reads none.
	var storages []kmapi.ObjectReference
	var shared []*storagev1alpha1.BackupStorage
	var env []corev1.EnvVar
	for _, repo := range s.Repositories {
		sref, ok := bc.StorageOf(repo)
		if !ok {
			continue
		}
		storages = append(storages, sref)
		var enc kmapi.ObjectReference
		if repo.EncryptionSecret != nil {
			enc = *repo.EncryptionSecret
			if enc.Namespace == "" {
				enc.Namespace = bc.Namespace
			}
		}
		e, sh, err := access.SecretEnv(ctx, r.Client, bs.Namespace, repo.Name, enc, sref)
		if err != nil {
			return nil, err
		}
		env = append(env, e...)
		if sh != nil {
			shared = append(shared, sh)
		}
	}
	job, _, err := executor.TaskJob{
		Client: r.Client, Kube: r.Kube, LocalDirs: r.LocalDirs,
		Name: name, Namespace: bs.Namespace,
		Addon: s.Addon, Field: sessionField(s).Child("addon"), Backup: true,
		Inputs: map[string]string{addon.InputNamespace: bs.Namespace, addon.InputBackupSession: bs.Name, addon.InputPVCName: bc.Spec.Target.Name},
		Env:    env, Storages: storages, Shared: shared,
		ServiceAccount: BackupServiceAccount, ClusterRole: BackupClusterRole,
		Labels: jobLabels(bs, s, BackupJobComponent), Timeout: bs.Spec.BackupTimeout,
	}.Build(ctx)
	if err != nil {
		return nil, err
	}
	// No owner reference to the BackupSession (see executor.Reap): the
	// controller deletes the Jobs of deleted sessions itself.
	if len(s.Repositories) > 0 {
		executor.Stamp(job, bs.UID, bs.Namespace, s.Repositories[0].Name)
	}
	created, err := r.Kube.BatchV1().Jobs(bs.Namespace).Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create Job %s: %w", name, err)
	}
	r.Recorder.Eventf(bs, corev1.EventTypeNormal, "BackupExecutorEnsured", "Created Job %s", name)
	return created, nil
}

// cleanHistory keeps the newest sessionHistoryLimit finished sessions of
// this session (and their Jobs) and deletes the rest. Snapshots stay: they
// are the backups.
func (r *Reconciler) cleanHistory(ctx context.Context, bs *catalogv1alpha1.BackupSession, s *corev1alpha1.Session, st *catalogv1alpha1.BackupSessionStatus) {
	limit := int(s.SessionHistoryLimit)
	if limit < 1 {
		limit = 1
	}
	all, err := r.sessions(ctx, bs.Namespace, bs.Spec.Invoker.Name, s.Name)
	if err != nil {
		conditions.Set(&st.Conditions, conditions.False(catalogv1alpha1.TypeSessionHistoryCleaned, catalogv1alpha1.ReasonFailedToCleanSessionHistory, err.Error()))
		return
	}
	var done []catalogv1alpha1.BackupSession
	for _, o := range all {
		if o.Name == bs.Name || o.Status.Phase.IsTerminal() {
			done = append(done, o)
		}
	}
	sort.Slice(done, func(i, j int) bool {
		ti, tj := done[i].CreationTimestamp, done[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return tj.Before(&ti)
		}
		return done[i].Name > done[j].Name
	})
	var errs []string
	for _, o := range done[min(limit, len(done)):] {
		if o.Name == bs.Name {
			continue
		}
		for _, job := range []string{catalogv1alpha1.ValidNameWithPrefixNSuffix("", o.Name, ""), retentionJobName(o.Name)} {
			if err := r.Kube.BatchV1().Jobs(o.Namespace).Delete(ctx, job, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err.Error())
			}
		}
		if err := r.Client.CatalogV1alpha1().BackupSessions(o.Namespace).Delete(ctx, o.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		conditions.Set(&st.Conditions, conditions.False(catalogv1alpha1.TypeSessionHistoryCleaned, catalogv1alpha1.ReasonFailedToCleanSessionHistory, strings.Join(errs, "; ")))
		return
	}
	conditions.Set(&st.Conditions, conditions.True(catalogv1alpha1.TypeSessionHistoryCleaned, catalogv1alpha1.ReasonSuccessfullyCleanedSessionHistory, fmt.Sprintf("keeping %d sessions", limit)))
}

// sessionField is the path of a session in its BackupConfiguration, by
// name as the configuration's status messages have it, for errors that
// name a field.
func sessionField(s *corev1alpha1.Session) *field.Path {
	return field.NewPath("spec", "sessions").Key(s.Name)
}

// jobLabels are the labels of a Job of session bs (its backup or retention
// Job, by component), by which the controller finds the session again.
func jobLabels(bs *catalogv1alpha1.BackupSession, s *corev1alpha1.Session, component string) map[string]string {
	return map[string]string{
		storagev1alpha1.LabelManagedBy:   storagev1alpha1.LabelManagedByValue,
		storagev1alpha1.LabelComponent:   component,
		catalogv1alpha1.LabelInvokerName: bs.Name,
		labelInvokerNS:                   bs.Namespace,
		labelSessionName:                 s.Name,
	}
}

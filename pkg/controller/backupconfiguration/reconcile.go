// Package backupconfiguration reconciles BackupConfigurations: it checks
// what they refer to, creates their Repositories through the catalog API,
// keeps one trigger CronJob per session, triggers the first backup and
// reports all of it in status.
package backupconfiguration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"kubestash.dev/kubestash/pkg/addon"
	addonsv1alpha1 "kubestash.dev/kubestash/pkg/apis/addons/v1alpha1"
	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/conditions"
	"kubestash.dev/kubestash/pkg/controller/access"
	"kubestash.dev/kubestash/pkg/controller/backupsession"
	"kubestash.dev/kubestash/pkg/controller/lookup"
	"kubestash.dev/kubestash/pkg/controller/loop"
	"kubestash.dev/kubestash/pkg/controller/restoresession"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/podsecurity"
)

// Names of what the controller creates for trigger CronJobs.
const (
	// TriggerServiceAccount runs the trigger CronJobs of a namespace.
	TriggerServiceAccount = "kubestash-trigger"
	// TriggerClusterRole (artifacts/controller) may create BackupSessions
	// and read BackupConfigurations.
	TriggerClusterRole = "kubestash-cron-job"
	// maxCronJobName is the longest CronJob name: its Jobs get an 11
	// character suffix and must stay within 63.
	maxCronJobName = 52
)

// Reconciler reconciles one BackupConfiguration at a time.
type Reconciler struct {
	Kube     kubernetes.Interface
	Client   versioned.Interface
	Recorder record.EventRecorder
	// AgentImage is the image of the agent, which the trigger CronJobs run.
	AgentImage string
	// CatalogServerAccount ("namespace/name") is granted get on the
	// encryption Secrets of the configuration's repositories, so that the
	// catalog server can serve snapshots/files and snapshots/download;
	// empty: no grant.
	CatalogServerAccount string
	// Clock is the controller's clock (clock.RealClock{}; a fake one in tests).
	Clock clock.PassiveClock
	// Reads are its reads: from the controller's informers
	// (lookup.CachedReads), or from the API (lookup.LiveReads).
	Reads *lookup.Reads
}

// Reconcile brings the world in line with the BackupConfiguration
// namespace/name, from what it observes now. It is idempotent.
func (r *Reconciler) Reconcile(ctx context.Context, namespace, name string) error {
	bc, err := r.Reads.BackupConfigurations.Get(ctx, namespace, name)
	if apierrors.IsNotFound(err) {
		// CronJobs go with it through their owner reference; Repositories
		// and backups stay (they outlive their configuration).
		return nil
	}
	if err != nil {
		return fmt.Errorf("get BackupConfiguration %s/%s: %w", namespace, name, err)
	}
	logger := klog.FromContext(ctx).WithValues("backupConfiguration", klog.KObj(bc))
	if bc, err = r.releaseOrphanedPause(ctx, bc); err != nil {
		return err
	}
	status := bc.Status.DeepCopy()
	// What the user was last told, to tell them again only when it changes.
	var prevReady *kmapi.Condition
	if c := conditions.Get(bc.Status.Conditions, corev1alpha1.TypeReady); c != nil {
		prevReady = c.DeepCopy()
	}

	problems := r.check(ctx, bc, status)
	if len(problems.invalid) > 0 {
		conditions.Set(&status.Conditions, conditions.False(corev1alpha1.TypeValidationPassed, corev1alpha1.ReasonResourceValidationFailed, strings.Join(problems.invalid, "; ")))
	} else {
		conditions.Set(&status.Conditions, conditions.True(corev1alpha1.TypeValidationPassed, corev1alpha1.ReasonResourceValidationPassed, "validation passed"))
	}

	var errs []string
	if len(problems.invalid) == 0 && len(problems.notReady) == 0 {
		if err := r.ensureRepositories(ctx, bc, status); err != nil {
			errs = append(errs, err.Error())
		}
		if err := access.GrantCatalogEncryptionSecrets(ctx, r.Kube, bc, r.CatalogServerAccount); err != nil {
			errs = append(errs, fmt.Sprintf("grant the catalog server the encryption Secrets: %v", err))
		}
	}
	if len(problems.invalid) == 0 {
		if err := r.ensureSchedulers(ctx, bc, status); err != nil {
			errs = append(errs, err.Error())
		}
	}
	status.Phase = phase(bc, status, len(problems.notReady) == 0)
	conditions.Set(&status.Conditions, readyCondition(status, problems, errs))
	if bc, err = r.updateStatus(ctx, bc, status); err != nil {
		return err
	}
	// The first backup only once Ready is stored: its BackupSession reads
	// the configuration's phase to decide whether it may run.
	if status.Phase == corev1alpha1.BackupInvokerReady && !bc.Spec.Paused {
		r.triggerInitialBackups(ctx, bc, status)
		if bc, err = r.updateStatus(ctx, bc, status); err != nil {
			return err
		}
	}
	logger.V(2).Info("Reconciled", "phase", status.Phase)
	r.recordReadiness(bc, prevReady, conditions.Get(status.Conditions, corev1alpha1.TypeReady), problems)
	if len(errs) > 0 {
		return fmt.Errorf("BackupConfiguration %s/%s: %s", namespace, name, strings.Join(errs, "; "))
	}
	if len(problems.notReady) > 0 {
		// Dependencies may appear without an event we watch (a Secret, a
		// PVC): look again soon.
		return errRequeue
	}
	return nil
}

// addRef records why the object ref of kind, read with err and refused
// by its usagePolicy, cannot be used from namespace ns, and returns that
// reason ("" when it can be used). A missing object may appear later
// (NotReady); a refusal of the namespace's own object is the
// configuration's error (Invalid); another namespace's object that is
// missing or refused reads the same, and is NotReady.
func (p *problems) addRef(kind string, ref kmapi.ObjectReference, ns string, err, refused error) string {
	switch {
	case ref.Namespace != ns && (apierrors.IsNotFound(err) || (err == nil && refused != nil)):
		// The same words for missing and refused: a tenant learns nothing
		// of another namespace's objects.
		return p.add(&p.notReady, foreignRefusal(kind, ref, ns))
	case apierrors.IsNotFound(err):
		return p.add(&p.notReady, fmt.Sprintf("%s %s/%s not found", kind, ref.Namespace, ref.Name))
	case err != nil:
		return p.add(&p.notReady, fmt.Sprintf("%s %s/%s could not be read: %v", kind, ref.Namespace, ref.Name, err))
	case refused != nil:
		return p.add(&p.invalid, fmt.Sprintf("%s %s/%s: %v", kind, ref.Namespace, ref.Name, refused))
	}
	return ""
}

// visible says whether the status may show the object ref, read with err
// and refused: it exists, and is the namespace's own or usable from it.
func visible(ref kmapi.ObjectReference, ns string, err, refused error) bool {
	return err == nil && (ref.Namespace == ns || refused == nil)
}

func (p *problems) add(to *[]string, reason string) string {
	*to = append(*to, reason)
	return reason
}

// foreignRefusal is why a reference to another namespace's object cannot
// be used, in words that do not tell whether it exists.
func foreignRefusal(kind string, ref kmapi.ObjectReference, ns string) string {
	return fmt.Sprintf("%s %s/%s does not exist or its usagePolicy does not allow namespace %q", kind, ref.Namespace, ref.Name, ns)
}

// releaseOrphanedPause resumes a configuration that a restore paused when
// that restore has ended or its RestoreSession is gone: a deleted
// RestoreSession must not leave backups paused for ever.
func (r *Reconciler) releaseOrphanedPause(ctx context.Context, bc *corev1alpha1.BackupConfiguration) (*corev1alpha1.BackupConfiguration, error) {
	mark, ok := bc.Annotations[restoresession.PausedByAnnotation]
	if !ok {
		return bc, nil
	}
	orphaned, err := restoresession.PauseOrphaned(ctx, r.Client, mark)
	if err != nil || !orphaned {
		return bc, err
	}
	out, err := restoresession.Resume(ctx, r.Client, bc)
	if err != nil {
		return nil, err
	}
	klog.FromContext(ctx).Info("Resumed backups paused by a restore that is over", "backupConfiguration", klog.KObj(bc), "pausedBy", mark)
	return out, nil
}

// updateStatus writes status if it differs from bc's and returns the
// stored object.
func (r *Reconciler) updateStatus(ctx context.Context, bc *corev1alpha1.BackupConfiguration, status *corev1alpha1.BackupConfigurationStatus) (*corev1alpha1.BackupConfiguration, error) {
	if apiequality.Semantic.DeepEqual(*status, bc.Status) {
		return bc, nil
	}
	bc = bc.DeepCopy()
	bc.Status = *status.DeepCopy()
	out, err := r.Client.CoreV1alpha1().BackupConfigurations(bc.Namespace).UpdateStatus(ctx, bc, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("update status of BackupConfiguration %s/%s: %w", bc.Namespace, bc.Name, err)
	}
	return out, nil
}

// recordReadiness emits the NotReady or Invalid Warning only when the Ready
// condition's reason or message changes (every requeue would repeat it
// otherwise), and a Normal Ready event when a configuration that was not
// ready becomes ready, so the last event shown is never a stale reason.
func (r *Reconciler) recordReadiness(bc *corev1alpha1.BackupConfiguration, prev, cur *kmapi.Condition, p problems) {
	if cur == nil {
		return
	}
	changed := prev == nil || prev.Status != cur.Status || prev.Reason != cur.Reason || prev.Message != cur.Message
	switch {
	case !changed:
	case cur.Status != metav1.ConditionTrue && cur.Reason == corev1alpha1.ReasonResourceValidationFailed:
		r.Recorder.Eventf(bc, corev1.EventTypeWarning, "Invalid", "%s", cur.Message)
	case len(p.notReady) > 0:
		r.Recorder.Eventf(bc, corev1.EventTypeWarning, "NotReady", "%s", strings.Join(p.notReady, "; "))
	case cur.Status == metav1.ConditionTrue && prev != nil && prev.Status != metav1.ConditionTrue:
		r.Recorder.Eventf(bc, corev1.EventTypeNormal, "Ready", "%s", cur.Message)
	}
}

// readyCondition sums up why the phase is what it is.
func readyCondition(st *corev1alpha1.BackupConfigurationStatus, p problems, errs []string) kmapi.Condition {
	switch st.Phase {
	case corev1alpha1.BackupInvokerReady:
		return conditions.True(corev1alpha1.TypeReady, corev1alpha1.ReasonReady, "ready to back up")
	case corev1alpha1.BackupInvokerInvalid:
		return conditions.False(corev1alpha1.TypeReady, corev1alpha1.ReasonResourceValidationFailed, strings.Join(p.invalid, "; "))
	}
	why := append(append([]string{}, p.notReady...), errs...)
	for _, r := range st.Repositories {
		if r.Phase != storagev1alpha1.RepositoryReady && r.Reason != "" && !strings.Contains(strings.Join(errs, "\n"), r.Reason) {
			why = append(why, fmt.Sprintf("repository %s: %s", r.Name, r.Reason))
		}
	}
	if len(why) == 0 {
		why = append(why, "waiting for repositories and schedulers to be in place")
	}
	return conditions.False(corev1alpha1.TypeReady, corev1alpha1.ReasonDependenciesNotReady, strings.Join(why, "; "))
}

// errRequeue asks the caller to look again after a back-off.
var errRequeue = fmt.Errorf("dependencies not ready: %w", loop.ErrRequeue)

// IsRequeue tells a requeue from a failure.
func IsRequeue(err error) bool { return errors.Is(err, loop.ErrRequeue) }

type problems struct {
	invalid  []string // errors of the configuration itself: phase Invalid
	notReady []string // missing or unready dependencies: phase NotReady
}

// check looks at everything the configuration refers to and records it in
// status: the target, each backend's storage and retention policy, the
// addon, the encryption secrets and the namespace's right to use each.
func (r *Reconciler) check(ctx context.Context, bc *corev1alpha1.BackupConfiguration, status *corev1alpha1.BackupConfigurationStatus) problems {
	var p problems
	ns := bc.Namespace
	nsObj, err := r.Reads.Namespaces.Get(ctx, "", ns)
	if err != nil {
		// Needed only by a usagePolicy with a selector, which then
		// refuses; a failed lookup is said, and looked up again.
		nsObj = nil
		if !apierrors.IsNotFound(err) {
			p.notReady = append(p.notReady, fmt.Sprintf("Namespace %s: %v", ns, err))
		}
	}

	// Target.
	found := false
	if t := bc.Spec.Target; t != nil && t.Kind == "PersistentVolumeClaim" && t.APIGroup == "" && t.Namespace != "" && t.Namespace != ns {
		// The backup pod runs here and can mount only claims of this
		// namespace; nor may the status tell what exists elsewhere.
		p.invalid = append(p.invalid, fmt.Sprintf("spec.target.namespace: %q is not the configuration's namespace %q: a BackupConfiguration backs up only PersistentVolumeClaims of its own namespace", t.Namespace, ns))
	} else if t != nil && t.Kind == "PersistentVolumeClaim" && t.APIGroup == "" {
		tns := ns
		pvc, err := r.Reads.Claims.Get(ctx, tns, t.Name)
		found = err == nil
		switch {
		case apierrors.IsNotFound(err):
			p.notReady = append(p.notReady, fmt.Sprintf("target PersistentVolumeClaim %s/%s not found", tns, t.Name))
		case err != nil:
			p.notReady = append(p.notReady, fmt.Sprintf("target PersistentVolumeClaim %s/%s: %v", tns, t.Name, err))
		case pvc.DeletionTimestamp != nil:
			// A kubelet starts no Pod with a claim that is being
			// deleted: a backup Job now would wait forever.
			p.notReady = append(p.notReady, fmt.Sprintf("target PersistentVolumeClaim %s/%s is being deleted", tns, t.Name))
		}
	} else {
		p.invalid = append(p.invalid, "spec.target must be a PersistentVolumeClaim (apiGroup \"\", kind PersistentVolumeClaim)")
	}
	status.TargetFound = ptr.To(found)

	// Backends.
	status.Backends = nil
	backendNames := map[string]bool{}
	for _, b := range bc.Spec.Backends {
		backendNames[b.Name] = true
		st := corev1alpha1.BackendStatus{Name: b.Name, Ready: ptr.To(false)}
		ready := true
		if b.StorageRef == nil {
			p.invalid = append(p.invalid, fmt.Sprintf("spec.backends[%s].storageRef is required", b.Name))
			ready = false
		} else {
			ref := withNamespace(*b.StorageRef, ns)
			st.Storage = &corev1alpha1.StorageStatus{Ref: ref}
			bs, err := r.Reads.BackupStorages.Get(ctx, ref.Namespace, ref.Name)
			var refused error
			if err == nil {
				refused = bs.Spec.UsagePolicy.Allows(bs.Namespace, ns, nsObj)
			}
			if visible(ref, ns, err, refused) {
				st.Storage.Phase = bs.Status.Phase
			}
			if st.Storage.Reason = p.addRef("BackupStorage", ref, ns, err, refused); st.Storage.Reason != "" {
				ready = false
			} else if bs.Status.Phase != storagev1alpha1.BackupStoragePhaseReady {
				st.Storage.Reason = fmt.Sprintf("BackupStorage %s/%s is not Ready", ref.Namespace, ref.Name)
				if why := failedConditions(bs.Status.Conditions); why != "" {
					st.Storage.Reason += ": " + why
				}
				p.notReady = append(p.notReady, st.Storage.Reason)
				ready = false
			}
		}
		if b.RetentionPolicy == nil {
			p.invalid = append(p.invalid, fmt.Sprintf("spec.backends[%s].retentionPolicy is required", b.Name))
			ready = false
		} else {
			ref := withNamespace(*b.RetentionPolicy, ns)
			st.RetentionPolicy = &corev1alpha1.RetentionPolicyStatus{Ref: ref, Found: ptr.To(false)}
			rp, err := r.Reads.RetentionPolicies.Get(ctx, ref.Namespace, ref.Name)
			var refused error
			if err == nil {
				refused = rp.Spec.UsagePolicy.Allows(rp.Namespace, ns, nsObj)
			}
			if st.RetentionPolicy.Reason = p.addRef("RetentionPolicy", ref, ns, err, refused); st.RetentionPolicy.Reason != "" {
				ready = false
			}
			st.RetentionPolicy.Found = ptr.To(visible(ref, ns, err, refused))
		}
		st.Ready = ptr.To(ready)
		status.Backends = append(status.Backends, st)
	}
	if len(bc.Spec.Backends) == 0 {
		p.invalid = append(p.invalid, "spec.backends: at least one backend is required")
	}

	// Sessions: repositories' backends, encryption secrets, addon tasks.
	status.Dependencies = nil
	addons := map[string]*addonsv1alpha1.Addon{}
	seenSecrets := map[kmapi.ObjectReference]bool{}
	for _, s := range bc.Spec.Sessions {
		for _, repo := range s.Repositories {
			if repo.Backend != "" && !backendNames[repo.Backend] {
				p.invalid = append(p.invalid, fmt.Sprintf("spec.sessions[%s].repositories[%s].backend %q is not in spec.backends", s.Name, repo.Name, repo.Backend))
			}
			if repo.EncryptionSecret == nil {
				p.invalid = append(p.invalid, fmt.Sprintf("spec.sessions[%s].repositories[%s].encryptionSecret is required", s.Name, repo.Name))
				continue
			}
			ref := withNamespace(*repo.EncryptionSecret, ns)
			if ref.Namespace != ns {
				// Never read: the backup Job could not either (nothing
				// grants it another namespace's Secret), and the status
				// would tell whether it exists.
				p.invalid = append(p.invalid, fmt.Sprintf("spec.sessions[%s].repositories[%s].encryptionSecret.namespace: %q is not the configuration's namespace %q: the encryption Secret must be in the configuration's namespace", s.Name, repo.Name, ref.Namespace, ns))
				continue
			}
			sec, err := r.Kube.CoreV1().Secrets(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			switch {
			case err != nil && !apierrors.IsNotFound(err):
				p.notReady = append(p.notReady, fmt.Sprintf("encryption Secret %s/%s of repository %s could not be read: %v", ref.Namespace, ref.Name, repo.Name, err))
			case err != nil:
				p.notReady = append(p.notReady, fmt.Sprintf("encryption Secret %s/%s of repository %s not found", ref.Namespace, ref.Name, repo.Name))
			case len(sec.Data[storagev1alpha1.ResticPassword]) == 0:
				p.notReady = append(p.notReady, fmt.Sprintf("encryption Secret %s/%s has no %s", ref.Namespace, ref.Name, storagev1alpha1.ResticPassword))
			}
			if !seenSecrets[ref] {
				seenSecrets[ref] = true
				status.Dependencies = append(status.Dependencies, corev1alpha1.ResourceFoundStatus{
					Kind: "Secret", Namespace: ref.Namespace, Name: ref.Name, Found: ptr.To(err == nil),
				})
			}
		}
		if s.Addon == nil {
			continue
		}
		p.invalid = append(p.invalid, checkAddonInfo(bc, &s)...)
		p.invalid = append(p.invalid, checkScheduler(&s)...)
		a, ok := addons[s.Addon.Name]
		if !ok {
			var err error
			a, err = r.Reads.Addons.Get(ctx, "", s.Addon.Name)
			dep := corev1alpha1.ResourceFoundStatus{APIGroup: addonsv1alpha1.SchemeGroupVersion.Group, Kind: "Addon", Name: s.Addon.Name}
			switch {
			case err == nil:
				dep.Found = ptr.To(true)
			case apierrors.IsNotFound(err):
				dep.Found = ptr.To(false)
				p.notReady = append(p.notReady, fmt.Sprintf("Addon %s not found", s.Addon.Name))
			default:
				// Not known to be missing: looked up again.
				p.notReady = append(p.notReady, fmt.Sprintf("Addon %s: %v", s.Addon.Name, err))
			}
			if err != nil {
				a = nil
			}
			addons[s.Addon.Name] = a
			status.Dependencies = append(status.Dependencies, dep)
		}
		if a == nil {
			continue
		}
		for _, task := range s.Addon.Tasks {
			if !hasTask(a.Spec.BackupTasks, task.Name) {
				p.invalid = append(p.invalid, fmt.Sprintf("spec.sessions[%s].addon.tasks[%s]: Addon %s has no backup task %s", s.Name, task.Name, a.Name, task.Name))
			}
		}
	}
	return p
}

// checkAddonInfo checks what a session's addon lets a namespace's user
// put into the backup Job. The CRD's CEL rule refuses hostPath and other
// node-level addonVolumes, but not in objects stored before it; and
// whether a jobTemplate's serviceAccountName may be used depends on where
// the storages are. The backup session refuses both again when it builds
// the Job (pkg/addon, access.CheckUserAccount); here they make the
// configuration Invalid, naming the field, before any session runs.
func checkAddonInfo(bc *corev1alpha1.BackupConfiguration, s *corev1alpha1.Session) []string {
	var out []string
	fld := field.NewPath("spec", "sessions").Key(s.Name).Child("addon")
	for i, t := range s.Addon.Tasks {
		for _, e := range addon.ValidateAddonVolumes(fld.Child("tasks").Index(i).Child("addonVolumes"), t.AddonVolumes) {
			out = append(out, e.Error())
		}
	}
	if jt := s.Addon.JobTemplate; jt != nil {
		var storages []kmapi.ObjectReference
		for _, repo := range s.Repositories {
			if ref, ok := bc.StorageOf(repo); ok {
				storages = append(storages, ref)
			}
		}
		if e := access.CheckUserAccount(fld.Child("jobTemplate", "spec", "serviceAccountName"), jt.Spec.ServiceAccountName,
			bc.Namespace, backupsession.BackupServiceAccount, storages); e != nil {
			out = append(out, e.Error())
		}
	}
	return out
}

// checkScheduler refuses, naming it, the one part of a session's
// scheduler.jobTemplate that is not applied to the trigger CronJob: the
// trigger pod's template. The pod only creates a BackupSession, under the
// restricted Pod Security level, so there is little to tune in it, and
// what a user may set in a pod template is checked for the backup Job
// only (executor.ApplyJobTemplate).
func checkScheduler(s *corev1alpha1.Session) []string {
	if s.Scheduler == nil || apiequality.Semantic.DeepEqual(s.Scheduler.JobTemplate.Template, storagev1alpha1.PodTemplateSpec{}) {
		return nil
	}
	fld := field.NewPath("spec", "sessions").Key(s.Name).Child("scheduler", "jobTemplate", "template")
	return []string{field.Forbidden(fld, "not supported yet; remove it (the backup Job's pod is set in addon.jobTemplate)").Error()}
}

// failedConditions joins the messages of a status's False conditions
// (for a BackupStorage: its Secret missing, its backend not initialized).
func failedConditions(conds []kmapi.Condition) string {
	var out []string
	for _, c := range conds {
		if c.Status == metav1.ConditionFalse && c.Message != "" {
			out = append(out, c.Message)
		}
	}
	return strings.Join(out, "; ")
}

func hasTask(tasks []addonsv1alpha1.Task, name string) bool {
	for _, t := range tasks {
		if t.Name == name {
			return true
		}
	}
	return false
}

func withNamespace(ref kmapi.ObjectReference, ns string) kmapi.ObjectReference {
	if ref.Namespace == "" {
		ref.Namespace = ns
	}
	return ref
}

// ensureRepositories creates each repository of each session through the
// catalog API (which writes repository.yaml into the backend) and reports
// them in status.repositories.
func (r *Reconciler) ensureRepositories(ctx context.Context, bc *corev1alpha1.BackupConfiguration, status *corev1alpha1.BackupConfigurationStatus) error {
	repos := r.Client.CatalogV1alpha1().Repositories(bc.Namespace)
	seen := map[string]bool{}
	status.Repositories = nil
	var errs []string
	target := *bc.Spec.Target
	if target.Namespace == "" {
		target.Namespace = bc.Namespace
	}
	for _, s := range bc.Spec.Sessions {
		for _, info := range s.Repositories {
			if seen[info.Name] {
				continue
			}
			seen[info.Name] = true
			st := corev1alpha1.RepoStatus{Name: info.Name, Phase: storagev1alpha1.RepositoryNotReady}
			storage, _ := bc.StorageOf(info)
			want := &catalogv1alpha1.Repository{
				ObjectMeta: metav1.ObjectMeta{Name: info.Name, Namespace: bc.Namespace, Labels: map[string]string{
					storagev1alpha1.LabelManagedBy: storagev1alpha1.LabelManagedByValue,
				}},
				Spec: catalogv1alpha1.RepositorySpec{
					AppRef:           target,
					StorageRef:       storage,
					Path:             info.Directory,
					EncryptionSecret: ptr.To(withNamespace(*info.EncryptionSecret, bc.Namespace)),
					DeletionPolicy:   repositoryDeletionPolicy(info.DeletionPolicy),
				},
			}
			cur, err := r.Reads.Repositories.Get(ctx, bc.Namespace, info.Name)
			switch {
			case apierrors.IsNotFound(err):
				cur, err = repos.Create(ctx, want, metav1.CreateOptions{})
				if err != nil {
					st.Reason = fmt.Sprintf("create Repository: %v", err)
					errs = append(errs, st.Reason)
					break
				}
				r.Recorder.Eventf(bc, corev1.EventTypeNormal, "RepositoryCreated", "Created Repository %s at %s", info.Name, info.Directory)
				st.Phase = storagev1alpha1.RepositoryReady
			case err != nil:
				st.Reason = fmt.Sprintf("get Repository: %v", err)
				errs = append(errs, st.Reason)
			case cur.Spec.AppRef != want.Spec.AppRef || cur.Spec.StorageRef != want.Spec.StorageRef || strings.Trim(cur.Spec.Path, "/") != strings.Trim(want.Spec.Path, "/"):
				// Never take over another application's repository.
				st.Reason = fmt.Sprintf("Repository %s exists for %s/%s in %s at %s", info.Name, cur.Spec.AppRef.Namespace, cur.Spec.AppRef.Name, cur.Spec.StorageRef.Name, cur.Spec.Path)
			default:
				st.Phase = storagev1alpha1.RepositoryReady
			}
			status.Repositories = append(status.Repositories, st)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("repositories: %s", strings.Join(errs, "; "))
	}
	return nil
}

func repositoryDeletionPolicy(p storagev1alpha1.BackupConfigDeletionPolicy) catalogv1alpha1.DeletionPolicy {
	if string(p) == string(catalogv1alpha1.DeletionPolicyWipeOut) {
		return catalogv1alpha1.DeletionPolicyWipeOut
	}
	return catalogv1alpha1.DeletionPolicyDelete
}

// CronJobName is the trigger CronJob of a session.
func CronJobName(bc, session string) string {
	n := catalogv1alpha1.ValidNameWithPrefixNSuffix("trigger", bc, session)
	if len(n) > maxCronJobName {
		n = strings.Trim(n[:maxCronJobName], "-")
	}
	return n
}

// ensureSchedulers keeps one CronJob per session, and the ServiceAccount
// and RoleBinding its Jobs run as.
func (r *Reconciler) ensureSchedulers(ctx context.Context, bc *corev1alpha1.BackupConfiguration, status *corev1alpha1.BackupConfigurationStatus) error {
	if _, err := access.EnsureAccount(ctx, r.Kube, bc.Namespace, TriggerServiceAccount, TriggerClusterRole); err != nil {
		return err
	}
	var errs []string
	prev := map[string]corev1alpha1.SessionStatus{}
	for _, s := range status.Sessions {
		prev[s.Name] = s
	}
	status.Sessions = nil
	for _, s := range bc.Spec.Sessions {
		st := prev[s.Name]
		st.Name = s.Name
		if err := r.ensureCronJob(ctx, bc, s); err != nil {
			conditions.Set(&st.Conditions, conditions.False(corev1alpha1.TypeSchedulerEnsured, corev1alpha1.ReasonSchedulerNotEnsured, err.Error()))
			errs = append(errs, err.Error())
		} else {
			conditions.Set(&st.Conditions, conditions.True(corev1alpha1.TypeSchedulerEnsured, corev1alpha1.ReasonSchedulerEnsured, "trigger CronJob "+CronJobName(bc.Name, s.Name)+" is in place"))
		}
		st.NextSchedule = ""
		if sched, err := cron.ParseStandard(s.Scheduler.Schedule); err == nil && !bc.Spec.Paused && !ptr.Deref(s.Scheduler.Suspend, false) {
			st.NextSchedule = sched.Next(r.Clock.Now()).UTC().Format(time.RFC3339)
		}
		status.Sessions = append(status.Sessions, st)
	}
	if err := r.removeGoneSchedulers(ctx, bc); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("schedulers: %s", strings.Join(errs, "; "))
	}
	return nil
}

// removeGoneSchedulers deletes the trigger CronJobs of sessions no longer
// in the configuration: each of their runs would fail.
func (r *Reconciler) removeGoneSchedulers(ctx context.Context, bc *corev1alpha1.BackupConfiguration) error {
	cjs, err := r.Reads.ListCronJobs(ctx, bc.Namespace, labels.SelectorFromSet(labels.Set{labelInvokerName: bc.Name}))
	if err != nil {
		return fmt.Errorf("list CronJobs: %w", err)
	}
	for _, cj := range cjs {
		if !metav1.IsControlledBy(cj, bc) || slices.ContainsFunc(bc.Spec.Sessions, func(s corev1alpha1.Session) bool {
			return CronJobName(bc.Name, s.Name) == cj.Name
		}) {
			continue
		}
		err := r.Kube.BatchV1().CronJobs(bc.Namespace).Delete(ctx, cj.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cj.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete CronJob %s of removed session %s: %w", cj.Name, cj.Labels[labelSessionName], err)
		}
		r.Recorder.Eventf(bc, corev1.EventTypeNormal, "SchedulerRemoved", "Deleted CronJob %s: session %s is gone", cj.Name, cj.Labels[labelSessionName])
	}
	return nil
}

func (r *Reconciler) ensureCronJob(ctx context.Context, bc *corev1alpha1.BackupConfiguration, s corev1alpha1.Session) error {
	want := r.cronJob(bc, s)
	cjs := r.Kube.BatchV1().CronJobs(bc.Namespace)
	cur, err := r.Reads.CronJobs.Get(ctx, bc.Namespace, want.Name)
	if apierrors.IsNotFound(err) {
		if _, err := cjs.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create CronJob %s: %w", want.Name, err)
		}
		r.Recorder.Eventf(bc, corev1.EventTypeNormal, "SchedulerEnsured", "Created CronJob %s (%s)", want.Name, want.Spec.Schedule)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get CronJob %s: %w", want.Name, err)
	}
	if !metav1.IsControlledBy(cur, bc) {
		return fmt.Errorf("CronJob %s exists and is not this BackupConfiguration's", want.Name)
	}
	if apiequality.Semantic.DeepDerivative(want.Spec, cur.Spec) && apiequality.Semantic.DeepEqual(want.Labels, cur.Labels) {
		return nil
	}
	cur = cur.DeepCopy()
	cur.Spec, cur.Labels = want.Spec, want.Labels
	if _, err := cjs.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update CronJob %s: %w", want.Name, err)
	}
	return nil
}

func (r *Reconciler) cronJob(bc *corev1alpha1.BackupConfiguration, s corev1alpha1.Session) *batchv1.CronJob {
	labels := map[string]string{
		storagev1alpha1.LabelManagedBy: storagev1alpha1.LabelManagedByValue,
		storagev1alpha1.LabelComponent: "kubestash-trigger",
		labelInvokerName:               bc.Name,
		labelSessionName:               s.Name,
	}
	sch := s.Scheduler
	jt := sch.JobTemplate
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{
			Name: CronJobName(bc.Name, s.Name), Namespace: bc.Namespace, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(bc, corev1alpha1.SchemeGroupVersion.WithKind("BackupConfiguration"))},
		},
		Spec: batchv1.CronJobSpec{
			Schedule:                   sch.Schedule,
			StartingDeadlineSeconds:    sch.StartingDeadlineSeconds,
			ConcurrencyPolicy:          orDefault(sch.ConcurrencyPolicy, batchv1.ForbidConcurrent),
			Suspend:                    ptr.To(bc.Spec.Paused || ptr.Deref(sch.Suspend, false)),
			SuccessfulJobsHistoryLimit: orDefaultPtr(sch.SuccessfulJobsHistoryLimit, 3),
			FailedJobsHistoryLimit:     orDefaultPtr(sch.FailedJobsHistoryLimit, 1),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: batchv1.JobSpec{
					BackoffLimit:            orDefaultPtr(jt.BackoffLimit, 1),
					ActiveDeadlineSeconds:   jt.ActiveDeadlineSeconds,
					TTLSecondsAfterFinished: jt.TTLSecondsAfterFinished,
					// As upstream: the user's, to the letter.
					Parallelism:    jt.Parallelism,
					Completions:    jt.Completions,
					CompletionMode: jt.CompletionMode,
					Suspend:        jt.Suspend,
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec: corev1.PodSpec{
							RestartPolicy:      corev1.RestartPolicyNever,
							ServiceAccountName: TriggerServiceAccount,
							Containers: []corev1.Container{{
								Name:  "trigger",
								Image: r.AgentImage,
								Args: []string{
									"trigger",
									"--namespace=" + bc.Namespace,
									"--invoker-name=" + bc.Name,
									"--invoker-kind=BackupConfiguration",
									"--session-name=" + s.Name,
								},
								// It only creates a BackupSession.
								SecurityContext: podsecurity.Restricted(),
							}},
						},
					},
				},
			},
		},
	}
}

// Labels of the objects made for a BackupConfiguration (§5.2).
const (
	labelInvokerName = "kubestash.com/invoker-name"
	labelSessionName = "kubestash.com/session-name"
)

func orDefault[T comparable](v, d T) T {
	var zero T
	if v == zero {
		return d
	}
	return v
}

func orDefaultPtr(v *int32, d int32) *int32 {
	if v == nil {
		return ptr.To(d)
	}
	return v
}

// phase is upstream's rule: Invalid when validation failed; Ready when the
// target exists, every backend is ready and every session has its
// scheduler; NotReady otherwise. Upstream's webhook refuses a configuration
// whose encryption Secret or Addon is missing; without a webhook, depsReady
// (everything referred to exists) is part of Ready here.
func phase(bc *corev1alpha1.BackupConfiguration, st *corev1alpha1.BackupConfigurationStatus, depsReady bool) corev1alpha1.BackupInvokerPhase {
	if conditions.IsFalse(st.Conditions, corev1alpha1.TypeValidationPassed) {
		return corev1alpha1.BackupInvokerInvalid
	}
	if !depsReady || !ptr.Deref(st.TargetFound, false) || len(st.Backends) != len(bc.Spec.Backends) || len(st.Sessions) != len(bc.Spec.Sessions) {
		return corev1alpha1.BackupInvokerNotReady
	}
	for _, b := range st.Backends {
		if !ptr.Deref(b.Ready, false) {
			return corev1alpha1.BackupInvokerNotReady
		}
	}
	for _, r := range st.Repositories {
		if r.Phase != storagev1alpha1.RepositoryReady {
			return corev1alpha1.BackupInvokerNotReady
		}
	}
	for _, s := range st.Sessions {
		if !conditions.IsTrue(s.Conditions, corev1alpha1.TypeSchedulerEnsured) {
			return corev1alpha1.BackupInvokerNotReady
		}
	}
	return corev1alpha1.BackupInvokerReady
}

// triggerInitialBackups creates the first BackupSession of each session
// once, when the configuration first becomes Ready.
func (r *Reconciler) triggerInitialBackups(ctx context.Context, bc *corev1alpha1.BackupConfiguration, st *corev1alpha1.BackupConfigurationStatus) {
	for i := range st.Sessions {
		ss := &st.Sessions[i]
		if conditions.IsTrue(ss.Conditions, corev1alpha1.TypeInitialBackupTriggered) {
			continue
		}
		var session *corev1alpha1.Session
		for j := range bc.Spec.Sessions {
			if bc.Spec.Sessions[j].Name == ss.Name {
				session = &bc.Spec.Sessions[j]
			}
		}
		if session == nil {
			continue
		}
		// Named for the configuration's creation, not for now: a reconcile
		// that read the configuration before this status was stored makes
		// the same name, which the server refuses, not a second backup.
		bs := NewBackupSession(bc, session, bc.CreationTimestamp.Time)
		_, err := r.Client.CatalogV1alpha1().BackupSessions(bc.Namespace).Create(ctx, bs, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			conditions.Set(&ss.Conditions, conditions.False(corev1alpha1.TypeInitialBackupTriggered, corev1alpha1.ReasonFailedToTriggerInitialBackup, err.Error()))
			continue
		}
		r.Recorder.Eventf(bc, corev1.EventTypeNormal, "InitialBackupTriggered", "Created BackupSession %s", bs.Name)
		conditions.Set(&ss.Conditions, conditions.True(corev1alpha1.TypeInitialBackupTriggered, corev1alpha1.ReasonSuccessfullyTriggeredInitialBackup, "created BackupSession "+bs.Name))
	}
}

// NewBackupSession is the BackupSession a trigger creates for a session:
// <bc>-<session>-<unix seconds>, invoked by the configuration.
func NewBackupSession(bc *corev1alpha1.BackupConfiguration, s *corev1alpha1.Session, now time.Time) *catalogv1alpha1.BackupSession {
	retry := int32(0)
	if s.RetryConfig != nil {
		retry = s.RetryConfig.MaxRetry
	}
	return &catalogv1alpha1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{
			Name:      catalogv1alpha1.ValidNameWithPrefixNSuffix(bc.Name, s.Name, fmt.Sprint(now.Unix())),
			Namespace: bc.Namespace,
			Labels:    map[string]string{labelInvokerName: bc.Name, labelSessionName: s.Name},
		},
		Spec: catalogv1alpha1.BackupSessionSpec{
			Invoker:       corev1.TypedLocalObjectReference{APIGroup: ptr.To(corev1alpha1.SchemeGroupVersion.Group), Kind: "BackupConfiguration", Name: bc.Name},
			Session:       s.Name,
			RetryLeft:     retry,
			BackupTimeout: s.BackupTimeout,
		},
	}
}

// Package wipeout removes from restic, soon after, the data of WipeOut
// Snapshots deleted outside retention (a user's `kubectl delete snapshot`):
// the catalog server left a forget mark for each; a Job per Repository runs
// `agent forget` on them. Retention's own deletions are forgotten by the
// session's retention Job; this one stands back while any runs.
package wipeout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/controller/executor"
	"kubestash.dev/kubestash/pkg/controller/lookup"
	"kubestash.dev/kubestash/pkg/controller/loop"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/storagebackend"
)

const (
	// JobComponent is the component label of the clean-up Jobs.
	JobComponent = "kubestash-wipeout"
	// LabelRepository names the Repository a clean-up Job forgets in.
	LabelRepository = "kubestash.com/repository"
	// jobTTL keeps a finished clean-up Job (and its pod's log) for a day.
	jobTTL = 24 * 60 * 60
)

// Reconciler reconciles one Repository at a time: its forget marks, if
// any, get a clean-up Job.
type Reconciler struct {
	Kube     kubernetes.Interface
	Client   versioned.Interface
	Recorder record.EventRecorder
	// Forget builds the Jobs' pods.
	Forget executor.Forget
	// RetentionComponent is the component label of the sessions'
	// retention Jobs, which forget the same marks.
	RetentionComponent string
	// OpenBackend opens a BackupStorage's backend from this process;
	// nil means storagebackend.Open.
	OpenBackend func(context.Context, *storagev1alpha1.BackupStorage) (backend.Backend, error)
	// MinAge is how old (by the backend's clock) a mark must be before a
	// clean-up Job takes it: a session's retention deletes its Snapshots
	// first and creates its own retention Job a moment later, and a mark
	// seen in between must not get a second Job. Every deletion queues
	// the Repository MinAge later, so no mark waits for an event.
	MinAge time.Duration
	// Clock is the controller's clock; nil means the real one.
	Clock clock.PassiveClock
	// Reads are its reads: from the controller's informers
	// (lookup.CachedReads), or from the API (lookup.LiveReads).
	Reads *lookup.Reads
}

// Reconcile starts a clean-up Job for the forget marks of Repository
// ns/name, unless one runs: a forget Job already running in the namespace
// (it may be working on these marks) makes it look again later. The Job's
// name derives from the marks, so the same marks never get two Jobs.
func (r *Reconciler) Reconcile(ctx context.Context, ns, name string) error {
	logger := klog.FromContext(ctx).WithValues("repository", klog.KRef(ns, name))
	repo, err := r.Reads.Repositories.Get(ctx, ns, name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get Repository %s/%s: %w", ns, name, err)
	}
	jobs, err := r.Reads.ListJobs(ctx, ns, lookup.Ours)
	if err != nil {
		return fmt.Errorf("list Jobs of %s: %w", ns, err)
	}
	for _, j := range jobs {
		c := j.Labels[storagev1alpha1.LabelComponent]
		if ended, _ := executor.Ended(j, "forget"); (c == r.RetentionComponent || c == JobComponent) && !ended {
			logger.V(2).Info("A forget Job runs; looking again later", "job", j.Name)
			return loop.ErrRequeue
		}
	}

	ref := repo.Spec.StorageRef
	if ref.Namespace == "" {
		ref.Namespace = ns
	}
	bs, err := r.Reads.BackupStorages.Get(ctx, ref.Namespace, ref.Name)
	if err != nil {
		return fmt.Errorf("BackupStorage %s/%s of Repository %s/%s: %w", ref.Namespace, ref.Name, ns, name, err)
	}
	open := r.OpenBackend
	if open == nil {
		open = func(ctx context.Context, bs *storagev1alpha1.BackupStorage) (backend.Backend, error) {
			return storagebackend.Open(ctx, r.Kube, bs)
		}
	}
	b, err := open(ctx, bs)
	if err != nil {
		return fmt.Errorf("open the backend of Repository %s/%s: %w", ns, name, err)
	}
	marks, err := layout.ListForgetMarks(ctx, b, repo.Spec.Path)
	if err != nil {
		return fmt.Errorf("list forget marks of Repository %s/%s: %w", ns, name, err)
	}
	var clk clock.PassiveClock = clock.RealClock{}
	if r.Clock != nil {
		clk = r.Clock
	}
	now := clk.Now()
	keys := make([]string, 0, len(marks))
	var wait time.Duration
	for _, m := range marks {
		if age := now.Sub(m.LastModified); age < r.MinAge {
			wait = max(wait, r.MinAge-age)
			continue
		}
		keys = append(keys, m.Key)
	}
	if len(keys) == 0 {
		if wait > 0 {
			logger.V(2).Info("Forget marks too recent to take; looking again later", "after", wait)
			return loop.RequeueAfter(wait)
		}
		return nil
	}
	sort.Strings(keys)
	sum := sha256.New()
	for _, k := range keys {
		fmt.Fprintln(sum, k)
	}
	jobName := catalogv1alpha1.ValidNameWithPrefixNSuffix("wipeout", name, hex.EncodeToString(sum.Sum(nil))[:10])
	for _, j := range jobs {
		if j.Name == jobName {
			// It ended (a running one returned above) and failed to
			// forget these marks: they wait for the next session's
			// retention, or for this Job's TTL to end.
			logger.V(2).Info("The Job for these forget marks ended; leaving them to retention", "job", jobName)
			return nil
		}
	}
	pod, err := r.Forget.PodSpec(ctx, ns, []string{name})
	if err != nil {
		return err
	}
	lbls := map[string]string{
		storagev1alpha1.LabelManagedBy: storagev1alpha1.LabelManagedByValue,
		storagev1alpha1.LabelComponent: JobComponent,
		LabelRepository:                name,
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: jobName, Namespace: ns, Labels: lbls},
		Spec: batchv1.JobSpec{
			// forget is idempotent: one more try rides out a blip. A
			// failed Job leaves the marks to the next session's retention.
			BackoffLimit:            ptr.To(int32(1)),
			TTLSecondsAfterFinished: ptr.To(int32(jobTTL)),
			Template:                corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbls}, Spec: pod},
		},
	}
	_, err = r.Kube.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create Job %s/%s: %w", ns, jobName, err)
	}
	logger.V(1).Info("Forgetting deleted WipeOut Snapshots", "job", jobName, "marks", len(keys))
	if r.Recorder != nil {
		r.Recorder.Eventf(repo, corev1.EventTypeNormal, "WipeOut", "Created Job %s to remove the data of %d deleted Snapshot(s)", jobName, len(keys))
	}
	return nil
}

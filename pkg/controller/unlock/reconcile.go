// Package unlock answers `kubectl kubestash unlock`: a Repository whose
// catalogv1alpha1.AnnotationUnlockRequest names a token not yet answered
// gets a Job running `agent unlock`, which removes the repository's stale
// restic locks (never a live one); when the Job ended, the Repository's
// condition StaleLocksRemoved says how, and AnnotationUnlocked takes the
// token.
package unlock

import (
	"context"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/conditions"
	"kubestash.dev/kubestash/pkg/controller/executor"
	"kubestash.dev/kubestash/pkg/controller/lookup"
	"kubestash.dev/kubestash/pkg/controller/loop"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
)

const (
	// JobComponent is the component label of the unlock Jobs.
	JobComponent = "kubestash-unlock"
	// LabelRepository names the Repository an unlock Job works on.
	LabelRepository = "kubestash.com/repository"
	// jobTTL keeps a finished unlock Job (and its log) for a day; its
	// outcome is on the Repository by then.
	jobTTL = 24 * 60 * 60
	// pollRunning is how often a running unlock Job is looked at.
	pollRunning = 3 * time.Second
)

// Reconciler reconciles one Repository's unlock request at a time.
type Reconciler struct {
	Kube     kubernetes.Interface
	Client   versioned.Interface
	Recorder record.EventRecorder
	// Pods builds the Jobs' pods (the access of a forget pod).
	Pods executor.Forget
	// Reads are its reads: from the controller's informers
	// (lookup.CachedReads), or from the API (lookup.LiveReads).
	Reads *lookup.Reads
}

// Reconcile handles Repository ns/name.
func (r *Reconciler) Reconcile(ctx context.Context, ns, name string) error {
	repo, err := r.Reads.Repositories.Get(ctx, ns, name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get Repository %s/%s: %w", ns, name, err)
	}
	token := repo.Annotations[catalogv1alpha1.AnnotationUnlockRequest]
	if token == "" || repo.Annotations[catalogv1alpha1.AnnotationUnlocked] == token || repo.DeletionTimestamp != nil {
		return nil
	}
	logger := klog.FromContext(ctx).WithValues("repository", klog.KObj(repo))
	jobName := catalogv1alpha1.UnlockJobName(name, token)
	job, err := r.Reads.Jobs.Get(ctx, ns, jobName)
	if apierrors.IsNotFound(err) {
		if job, err = r.createJob(ctx, repo, jobName); err != nil {
			r.finish(ctx, repo, token, conditions.False(catalogv1alpha1.TypeStaleLocksRemoved, catalogv1alpha1.ReasonUnlockFailed, fmt.Sprintf("cannot run the unlock Job: %v", err)))
			return err
		}
		logger.V(1).Info("Removing stale restic locks", "job", jobName)
		r.Recorder.Eventf(repo, corev1.EventTypeNormal, "UnlockJobCreated", "Created Job %s to remove stale restic locks", jobName)
	}
	if err != nil {
		return fmt.Errorf("get Job %s/%s: %w", ns, jobName, err)
	}
	ended, _ := executor.Ended(job, "unlock")
	if !ended {
		return loop.RequeueAfter(pollRunning)
	}
	c := conditions.True(catalogv1alpha1.TypeStaleLocksRemoved, catalogv1alpha1.ReasonUnlockSucceeded, "Job "+jobName+" completed: "+completedSummary(ctx, r.Kube, job))
	if job.Status.Failed > 0 && job.Status.Succeeded == 0 {
		c = conditions.False(catalogv1alpha1.TypeStaleLocksRemoved, catalogv1alpha1.ReasonUnlockFailed, "Job "+jobName+" failed: "+executor.PodFailure(ctx, r.Kube, job))
	}
	return r.finish(ctx, repo, token, c)
}

// finish records the outcome c of request token: the condition, an
// Event, then the token as answered.
func (r *Reconciler) finish(ctx context.Context, repo *catalogv1alpha1.Repository, token string, c kmapi.Condition) error {
	typ := corev1.EventTypeNormal
	if c.Status != metav1.ConditionTrue {
		typ = corev1.EventTypeWarning
	}
	repos := r.Client.CatalogV1alpha1().Repositories(repo.Namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := repos.Get(ctx, repo.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.Annotations[catalogv1alpha1.AnnotationUnlockRequest] != token {
			return nil // a newer request: its own Job answers it
		}
		if conditions.Set(&cur.Status.Conditions, c) {
			if cur, err = repos.UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
				return err
			}
		}
		cur.Annotations[catalogv1alpha1.AnnotationUnlocked] = token
		_, err = repos.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("record the unlock of Repository %s/%s: %w", repo.Namespace, repo.Name, err)
	}
	r.Recorder.Eventf(repo, typ, c.Reason, "%s", c.Message)
	return nil
}

func (r *Reconciler) createJob(ctx context.Context, repo *catalogv1alpha1.Repository, name string) (*batchv1.Job, error) {
	pod, err := r.Pods.UnlockPodSpec(ctx, repo.Namespace, repo.Name)
	if err != nil {
		return nil, err
	}
	lbls := map[string]string{
		storagev1alpha1.LabelManagedBy: storagev1alpha1.LabelManagedByValue,
		storagev1alpha1.LabelComponent: JobComponent,
		LabelRepository:                repo.Name,
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: repo.Namespace, Labels: lbls},
		Spec: batchv1.JobSpec{
			// unlock is idempotent: one more try rides out a blip.
			BackoffLimit:            ptr.To(int32(1)),
			TTLSecondsAfterFinished: ptr.To(int32(jobTTL)),
			Template:                corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbls}, Spec: pod},
		},
	}
	created, err := r.Kube.BatchV1().Jobs(repo.Namespace).Create(ctx, job, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return r.Kube.BatchV1().Jobs(repo.Namespace).Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("create Job %s/%s: %w", repo.Namespace, name, err)
	}
	return created, nil
}

// completedSummary is what the agent reported, one restic repository a
// clause: its termination message.
func completedSummary(ctx context.Context, kube kubernetes.Interface, job *batchv1.Job) string {
	if msg := executor.PodSuccess(ctx, kube, job); msg != "" {
		return strings.ReplaceAll(msg, "\n", "; ")
	}
	return "(no summary)"
}

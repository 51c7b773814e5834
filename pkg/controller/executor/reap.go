package executor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
)

// Annotations of the Jobs of a session. Catalog objects are not owners the
// garbage collector can be trusted with: while a catalog server that
// restarted during a backend outage has not read a storage yet, it answers
// 404 for that storage's sessions, and the collector would delete their
// running Jobs. So the controller ties Jobs to sessions itself (Reap).
const (
	// AnnotationSessionUID is the UID of the session a Job runs for: a
	// session deleted and created again under its name gets a new Job.
	AnnotationSessionUID = "kubestash.com/session-uid"
	// AnnotationRepository is the Repository ("namespace/name") the
	// session writes to or restores from.
	AnnotationRepository = "kubestash.com/repository"
)

// ErrEarlierJob is returned while the Job of an earlier session of the same
// name is being removed: the new one is created once it is gone.
var ErrEarlierJob = errors.New("the Job of an earlier session of this name is being removed")

// Stamp records on job the session it runs for.
func Stamp(job *batchv1.Job, session types.UID, repoNamespace, repoName string) {
	if job.Annotations == nil {
		job.Annotations = map[string]string{}
	}
	job.Annotations[AnnotationSessionUID] = string(session)
	job.Annotations[AnnotationRepository] = repoNamespace + "/" + repoName
}

// ForSession returns job if it runs for the session of UID session. A Job
// of an earlier session of the same name is deleted, and ErrEarlierJob
// returned until it is gone. Jobs made before the stamp existed are taken
// as the session's.
func ForSession(ctx context.Context, kube kubernetes.Interface, job *batchv1.Job, session types.UID) (*batchv1.Job, error) {
	uid, ok := job.Annotations[AnnotationSessionUID]
	if !ok || types.UID(uid) == session {
		return job, nil
	}
	if job.DeletionTimestamp == nil {
		klog.FromContext(ctx).V(1).Info("Deleting the Job of an earlier session of this name", "job", klog.KObj(job))
		if err := DeleteJob(ctx, kube, job); err != nil {
			return nil, err
		}
	}
	return nil, ErrEarlierJob
}

// Reap deletes the Jobs of a session that no longer exists, found by
// selector in namespace. A finished Job goes at once: its pods keep the
// PersistentVolumeClaims they mounted from being deleted. A running one goes
// only when the catalog still serves its Repository, which tells that the
// catalog has read the storage and the session is really gone, not unread;
// otherwise pending is true and the caller looks again later.
func Reap(ctx context.Context, kube kubernetes.Interface, client versioned.Interface, namespace string, selector labels.Set) (pending bool, err error) {
	jobs, err := kube.BatchV1().Jobs(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return false, fmt.Errorf("list Jobs %s in %s: %w", selector, namespace, err)
	}
	var errs []error
	for i := range jobs.Items {
		job := &jobs.Items[i]
		if job.DeletionTimestamp != nil {
			continue
		}
		if ended, _ := Ended(job, ""); !ended {
			served, err := repositoryServed(ctx, client, job)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !served {
				pending = true
				continue
			}
		}
		klog.FromContext(ctx).V(1).Info("Deleting the Job of a deleted session", "job", klog.KObj(job))
		if err := DeleteJob(ctx, kube, job); err != nil {
			errs = append(errs, err)
		}
	}
	return pending, errors.Join(errs...)
}

func repositoryServed(ctx context.Context, client versioned.Interface, job *batchv1.Job) (bool, error) {
	ns, name, ok := splitRef(job.Annotations[AnnotationRepository])
	if !ok {
		return false, nil
	}
	_, err := client.CatalogV1alpha1().Repositories(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("get Repository %s/%s of Job %s/%s: %w", ns, name, job.Namespace, job.Name, err)
	}
	return true, nil
}

func splitRef(ref string) (ns, name string, ok bool) {
	ns, name, ok = strings.Cut(ref, "/")
	return ns, name, ok && ns != "" && name != ""
}

// DeleteJob deletes job and, in the background, its pods; the UID
// precondition keeps a Job of the same name made meanwhile. A Job already
// gone, or replaced, is no error.
func DeleteJob(ctx context.Context, kube kubernetes.Interface, job *batchv1.Job) error {
	err := kube.BatchV1().Jobs(job.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
		Preconditions:     &metav1.Preconditions{UID: &job.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete Job %s/%s: %w", job.Namespace, job.Name, err)
	}
	return nil
}

// ReleaseClaim deletes the finished Jobs of ours in pvc's namespace whose
// pods mount it. A PersistentVolumeClaim being deleted waits for every pod
// that mounts it, finished ones too; a restored or backed-up claim must not
// hang in Terminating because of a Job's pod kept for its log.
func ReleaseClaim(ctx context.Context, kube kubernetes.Interface, jobs []*batchv1.Job, namespace, claim string) error {
	var errs []error
	for _, job := range jobs {
		if job.Namespace != namespace || job.DeletionTimestamp != nil {
			continue
		}
		if ended, _ := Ended(job, ""); !ended || !mounts(job, claim) {
			continue
		}
		klog.FromContext(ctx).V(1).Info("Deleting a finished Job whose pod keeps a deleted claim", "job", klog.KObj(job), "claim", claim)
		if err := DeleteJob(ctx, kube, job); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func mounts(job *batchv1.Job, claim string) bool {
	for _, v := range job.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
			return true
		}
	}
	return false
}

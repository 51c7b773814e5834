package backupsession

import (
	"context"
	"fmt"
	"sort"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/controller/executor"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/storagebackend"
)

// The retention Job: after the catalog part of a RetentionPolicy (the
// selected Snapshots set to WipeOut and deleted, which leaves forget marks
// in the backend), it runs `agent forget`, which runs restic forget
// --prune on what the marks name. Upstream's name prefix and component.
const (
	retentionJobPrefix = "retentionpolicy"
	// RetentionJobComponent is the component label of retention Jobs.
	RetentionJobComponent = "kubestash-retention-policy"
)

// forgetPods builds the retention Jobs' pods, run as the namespace's
// backup ServiceAccount (which may read what forget reads).
func (r *Reconciler) forgetPods() executor.Forget {
	return executor.Forget{Client: r.Client, Kube: r.Kube, Image: r.AgentImage, ServiceAccount: BackupServiceAccount, ClusterRole: BackupClusterRole, LocalDirs: r.LocalDirs}
}

// retentionJobName is the name of the retention Job of session bs.
func retentionJobName(bs string) string {
	return catalogv1alpha1.ValidNameWithPrefixNSuffix(retentionJobPrefix, bs, "")
}

// hasForgetMarks reports whether the backend of repository has forget
// marks left, e.g. from a WipeOut Snapshot a user deleted. It is a cheap
// look, made only when retention itself removed nothing: when the backend
// cannot be reached from here, the answer is no and the marks wait for the
// next retention Job, which handles every mark of its repositories.
func (r *Reconciler) hasForgetMarks(ctx context.Context, bc *corev1alpha1.BackupConfiguration, repo corev1alpha1.RepositoryInfo) bool {
	logger := klog.FromContext(ctx).WithValues("repository", klog.KRef(bc.Namespace, repo.Name))
	ref, ok := bc.StorageOf(repo)
	if !ok {
		return false
	}
	rp, err := r.Client.CatalogV1alpha1().Repositories(bc.Namespace).Get(ctx, repo.Name, metav1.GetOptions{})
	if err != nil {
		logger.V(2).Info("Cannot look for forget marks", "err", err)
		return false
	}
	bs, err := r.Client.StorageV1alpha1().BackupStorages(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		logger.V(2).Info("Cannot look for forget marks", "err", err)
		return false
	}
	b, err := r.openBackend(ctx, bs)
	if err == nil {
		var marks []backend.Object
		if marks, err = layout.ListForgetMarks(ctx, b, rp.Spec.Path); err == nil {
			return len(marks) > 0
		}
	}
	logger.V(2).Info("Cannot look for forget marks", "err", err)
	return false
}

// openBackend opens bs's backend from this process: OpenBackend, else
// storagebackend.Open.
func (r *Reconciler) openBackend(ctx context.Context, bs *storagev1alpha1.BackupStorage) (backend.Backend, error) {
	if r.OpenBackend != nil {
		return r.OpenBackend(ctx, bs)
	}
	return storagebackend.Open(ctx, r.Kube, bs)
}

// forget runs the retention Job for the repositories whose retention is
// Pending and settles them from its outcome. It reports whether retention
// is finished for every repository.
func (r *Reconciler) forget(ctx context.Context, bs *catalogv1alpha1.BackupSession, bc *corev1alpha1.BackupConfiguration, s *corev1alpha1.Session, st *catalogv1alpha1.BackupSessionStatus) bool {
	var pending []string
	for _, e := range st.RetentionPolicies {
		if e.Phase == catalogv1alpha1.RetentionPolicyPending {
			pending = append(pending, e.Repository)
		}
	}
	if len(pending) == 0 {
		return true
	}
	settle := func(phase catalogv1alpha1.RetentionPolicyApplyPhase, msg string) {
		for i := range st.RetentionPolicies {
			if e := &st.RetentionPolicies[i]; e.Phase == catalogv1alpha1.RetentionPolicyPending {
				e.Phase, e.Error = phase, msg
			}
		}
	}
	name := retentionJobName(bs.Name)
	job, err := r.Reads.Jobs.Get(ctx, bs.Namespace, name)
	if apierrors.IsNotFound(err) {
		job, err = r.createRetentionJob(ctx, bs, bc, s, pending)
		if err != nil {
			msg := fmt.Sprintf("cannot run the retention Job: %v", err)
			settle(catalogv1alpha1.RetentionPolicyFailedToApply, msg)
			r.Recorder.Eventf(bs, corev1.EventTypeWarning, "RetentionPolicyFailed", "%s", msg)
			return true
		}
	}
	if err != nil {
		// Look again: the Job may well be running.
		klog.FromContext(ctx).V(2).Info("Cannot get the retention Job", "job", klog.KRef(bs.Namespace, name), "err", err)
		return false
	}
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet:
			settle(catalogv1alpha1.RetentionPolicyApplied, "")
			return true
		case batchv1.JobFailed, batchv1.JobFailureTarget:
			msg := executor.PodFailure(ctx, r.Kube, job)
			if msg == "" {
				msg = fmt.Sprintf("%s: %s", c.Reason, c.Message)
			}
			settle(catalogv1alpha1.RetentionPolicyFailedToApply, fmt.Sprintf("retention Job %s failed: %s", name, msg))
			r.Recorder.Eventf(bs, corev1.EventTypeWarning, "RetentionPolicyFailed", "Job %s failed", name)
			return true
		}
	}
	return false
}

// createRetentionJob creates the retention Job running `agent forget` on
// repos, with the mounts of their local storages, as the namespace's
// backup ServiceAccount (which may read what forget reads).
func (r *Reconciler) createRetentionJob(ctx context.Context, bs *catalogv1alpha1.BackupSession, bc *corev1alpha1.BackupConfiguration, s *corev1alpha1.Session, repos []string) (*batchv1.Job, error) {
	sort.Strings(repos)
	pod, err := r.forgetPods().PodSpec(ctx, bs.Namespace, repos)
	if err != nil {
		return nil, err
	}
	name := retentionJobName(bs.Name)
	lbls := jobLabels(bs, s, RetentionJobComponent)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: bs.Namespace, Labels: lbls},
		Spec: batchv1.JobSpec{
			// forget is idempotent: one more try rides out a blip.
			BackoffLimit: ptr.To(int32(1)),
			Template:     corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbls}, Spec: pod},
		},
	}
	if len(repos) > 0 {
		executor.Stamp(job, bs.UID, bs.Namespace, repos[0])
	}
	created, err := r.Kube.BatchV1().Jobs(bs.Namespace).Create(ctx, job, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return r.Kube.BatchV1().Jobs(bs.Namespace).Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("create Job %s: %w", name, err)
	}
	r.Recorder.Eventf(bs, corev1.EventTypeNormal, "RetentionPolicyExecutorEnsured", "Created Job %s for %s", name, strings.Join(repos, ", "))
	return created, nil
}

package executor

import (
	"context"
	"errors"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"kubestash.dev/kubestash/pkg/addon"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backenddirs"
	"kubestash.dev/kubestash/pkg/controller/access"
	"kubestash.dev/kubestash/pkg/controller/backendmount"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
)

// TaskJob is the Job that runs the first task of a session's Addon: the
// backup of a BackupSession, the restore of a RestoreSession. Both are
// built here, the same way: Addon task + Function + params, the
// repositories' Secrets by secretKeyRef, the local storages' mounts, the
// controller's account for the namespace, the user's runtime settings and
// jobTemplate, the grants of shared storages, the session's timeout.
type TaskJob struct {
	Client    versioned.Interface
	Kube      kubernetes.Interface
	LocalDirs backenddirs.Policy

	// Name and Namespace of the Job (the session's).
	Name, Namespace string
	// Addon of the session, at Field; Backup says which kind of task.
	Addon  *corev1alpha1.AddonInfo
	Field  *field.Path
	Backup bool
	// Inputs are the Function's built-in variables (addon.Input*).
	Inputs map[string]string
	// Env are the Secrets by secretKeyRef (access.SecretEnv) of the Storages
	// the Job reads and writes; Shared are those of other namespaces,
	// which the Job's account is granted.
	Env      []corev1.EnvVar
	Storages []kmapi.ObjectReference
	Shared   []*storagev1alpha1.BackupStorage
	// ServiceAccount the Job runs as, bound to ClusterRole (access.EnsureAccount).
	ServiceAccount, ClusterRole string
	Labels                      map[string]string
	// Timeout of the session: the Job's activeDeadlineSeconds.
	Timeout *metav1.Duration
}

// Build returns the Job, not yet created, and the account it runs as
// unless the user's jobTemplate names another. Its shared storages are
// granted to that account.
func (t TaskJob) Build(ctx context.Context) (*batchv1.Job, access.Account, error) {
	if t.Addon == nil || len(t.Addon.Tasks) == 0 {
		return nil, access.Account{}, errors.New(t.Field.String() + ": the addon has no task")
	}
	a, err := t.Client.AddonsV1alpha1().Addons().Get(ctx, t.Addon.Name, metav1.GetOptions{})
	if err != nil {
		return nil, access.Account{}, fmt.Errorf("Addon %s: %w", t.Addon.Name, err)
	}
	ref := &t.Addon.Tasks[0]
	task, err := addon.FindTask(a, ref.Name, t.Backup)
	if err != nil {
		return nil, access.Account{}, err
	}
	fn, err := t.Client.AddonsV1alpha1().Functions().Get(ctx, task.Function, metav1.GetOptions{})
	if err != nil {
		return nil, access.Account{}, fmt.Errorf("Function %s of task %s: %w", task.Function, task.Name, err)
	}
	params, err := addon.Params(task, ref, t.Inputs)
	if err != nil {
		return nil, access.Account{}, err
	}
	pod, err := addon.PodSpec(addon.Input{Task: task, Function: fn, Ref: ref, Field: t.Field.Child("tasks").Index(0), Params: params, Env: t.Env})
	if err != nil {
		return nil, access.Account{}, err
	}
	if err := backendmount.Add(ctx, t.Client, t.LocalDirs, &pod, t.Storages); err != nil {
		return nil, access.Account{}, err
	}
	acct, err := access.EnsureAccount(ctx, t.Kube, t.Namespace, t.ServiceAccount, t.ClusterRole)
	if err != nil {
		return nil, access.Account{}, err
	}
	pod.ServiceAccountName = acct.Name()
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: t.Name, Namespace: t.Namespace, Labels: t.Labels},
		Spec: batchv1.JobSpec{
			// One try: a failed backup is retried as a new session
			// (retryConfig), with fresh Snapshots; a restore as a new
			// RestoreSession.
			BackoffLimit: ptr.To(int32(0)),
			Completions:  ptr.To(int32(1)),
			Parallelism:  ptr.To(int32(1)),
			Template:     corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: t.Labels}, Spec: pod},
		},
	}
	// The user's jobTemplate: the Job may run as the user's account, but a
	// shared storage is granted only to ours, so that is refused rather
	// than the storage owner's Secret bound to any account the user names.
	if err := ApplyRuntimeSettings(job, t.Addon.ContainerRuntimeSettings, t.Field.Child("containerRuntimeSettings")); err != nil {
		return nil, access.Account{}, err
	}
	if err := ApplyJobTemplate(job, t.Addon.JobTemplate, t.Field.Child("jobTemplate"), acct, t.Storages); err != nil {
		return nil, access.Account{}, err
	}
	// After ApplyJobTemplate, a Job with a shared storage runs as acct.
	if err := access.GrantStorages(ctx, t.Kube, t.Shared, acct); err != nil {
		return nil, access.Account{}, err
	}
	if t.Timeout != nil {
		job.Spec.ActiveDeadlineSeconds = ptr.To(int64(t.Timeout.Seconds()))
	}
	return job, acct, nil
}

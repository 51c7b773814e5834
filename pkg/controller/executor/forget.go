package executor

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backenddirs"
	"kubestash.dev/kubestash/pkg/controller/access"
	"kubestash.dev/kubestash/pkg/controller/backendmount"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/podsecurity"
)

// ForgetScratchDir is where a forget pod's restic keeps its cache.
const ForgetScratchDir = "/kubestash-tmp"

// Forget builds the pods that run `agent forget`, which runs restic forget
// --prune on what the forget marks of some Repositories name: the
// retention Job of a session and the clean-up after a WipeOut Snapshot is
// deleted.
type Forget struct {
	Client versioned.Interface
	Kube   kubernetes.Interface
	// Image is the agent's image.
	Image string
	// ServiceAccount the pods run as, bound to ClusterRole in their
	// namespace (access.EnsureAccount).
	ServiceAccount, ClusterRole string
	// LocalDirs says where local backends may be mounted from.
	LocalDirs backenddirs.Policy
}

// PodSpec returns the pod that forgets for the Repositories repos of
// namespace ns: their Secrets by secretKeyRef (or a grant for a shared
// storage), the mounts of their local storages, and an emptyDir scratch.
func (f Forget) PodSpec(ctx context.Context, ns string, repos []string) (corev1.PodSpec, error) {
	return f.podSpec(ctx, "forget", ns, repos)
}

// UnlockPodSpec returns the pod that runs `agent unlock` on Repository
// repo of namespace ns, with the same access as a forget pod.
func (f Forget) UnlockPodSpec(ctx context.Context, ns, repo string) (corev1.PodSpec, error) {
	return f.podSpec(ctx, "unlock", ns, []string{repo})
}

// podSpec is the pod of agent command (forget or unlock, which take the
// same arguments) on repos of ns.
func (f Forget) podSpec(ctx context.Context, command, ns string, repos []string) (corev1.PodSpec, error) {
	if f.Image == "" {
		return corev1.PodSpec{}, fmt.Errorf("the controller has no agent image (--agent-image)")
	}
	repos = append([]string(nil), repos...)
	sort.Strings(repos)
	var storageRefs []kmapi.ObjectReference
	var shared []*storagev1alpha1.BackupStorage
	var env []corev1.EnvVar
	for _, name := range repos {
		repo, err := f.Client.CatalogV1alpha1().Repositories(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return corev1.PodSpec{}, fmt.Errorf("Repository %s/%s: %w", ns, name, err)
		}
		sref := repo.Spec.StorageRef
		if sref.Namespace == "" {
			sref.Namespace = repo.Namespace
		}
		storageRefs = append(storageRefs, sref)
		var enc kmapi.ObjectReference
		if repo.Spec.EncryptionSecret != nil {
			enc = *repo.Spec.EncryptionSecret
			if enc.Namespace == "" {
				enc.Namespace = repo.Namespace
			}
		}
		e, sh, err := access.SecretEnv(ctx, f.Client, ns, name, enc, sref)
		if err != nil {
			return corev1.PodSpec{}, err
		}
		env = append(env, e...)
		if sh != nil {
			shared = append(shared, sh)
		}
	}
	pod := corev1.PodSpec{
		RestartPolicy:      corev1.RestartPolicyNever,
		ServiceAccountName: f.ServiceAccount,
		Containers: []corev1.Container{{
			Name:  command,
			Image: f.Image,
			Args: []string{command, "--namespace=" + ns, "--repository=" + strings.Join(repos, ","),
				"--scratch-dir=" + ForgetScratchDir},
			VolumeMounts:             []corev1.VolumeMount{{Name: "kubestash-tmp-volume", MountPath: ForgetScratchDir}},
			Env:                      env,
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			// Root, as the owner of a local backend's files (the backups
			// wrote them), with no capability.
			SecurityContext: podsecurity.Root(),
		}},
		Volumes: []corev1.Volume{{Name: "kubestash-tmp-volume", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
	}
	if err := backendmount.Add(ctx, f.Client, f.LocalDirs, &pod, storageRefs); err != nil {
		return corev1.PodSpec{}, err
	}
	acct, err := access.EnsureAccount(ctx, f.Kube, ns, f.ServiceAccount, f.ClusterRole)
	if err != nil {
		return corev1.PodSpec{}, err
	}
	if err := access.GrantStorages(ctx, f.Kube, shared, acct); err != nil {
		return corev1.PodSpec{}, err
	}
	return pod, nil
}

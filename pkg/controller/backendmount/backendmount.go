// Package backendmount gives a backup or restore pod the volumes of the
// local BackupStorages it writes to: a local backend is a volume (hostPath,
// NFS, PVC) that the agent reaches at spec.storage.local.mountPath.
package backendmount

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backenddirs"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
)

// Add adds to pod a volume and a mount (in every container) for each
// distinct local BackupStorage among refs; other providers need none. A
// local storage that dirs does not allow is refused: the pod would read
// and write the node's files as root.
func Add(ctx context.Context, client versioned.Interface, dirs backenddirs.Policy, pod *corev1.PodSpec, refs []kmapi.ObjectReference) error {
	seen := map[string]bool{}
	for _, ref := range refs {
		key := ref.Namespace + "/" + ref.Name
		if seen[key] {
			continue
		}
		seen[key] = true
		bs, err := client.StorageV1alpha1().BackupStorages(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("BackupStorage %s: %w", key, err)
		}
		l := bs.Spec.Storage.Local
		if bs.Spec.Storage.Provider != storagev1alpha1.ProviderLocal || l == nil {
			continue
		}
		if ferr := dirs.Check(l); ferr != nil {
			return fmt.Errorf("BackupStorage %s: %w", key, ferr)
		}
		name := fmt.Sprintf("kubestash-backend-%d", len(seen))
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: name, VolumeSource: l.VolumeSource.ToCore()})
		for i := range pod.Containers {
			pod.Containers[i].VolumeMounts = append(pod.Containers[i].VolumeMounts, corev1.VolumeMount{
				Name: name, MountPath: l.MountPath, SubPath: l.SubPath,
			})
		}
	}
	return nil
}

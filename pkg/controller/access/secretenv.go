package access

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/secretenv"
	"kubestash.dev/kubestash/pkg/storagebackend"
)

// SecretEnv returns the environment (secretKeyRefs, see pkg/secretenv)
// through which a pod in podNS gets the Secrets of repository: its
// encryption Secret enc and the Secret of its BackupStorage storage. Both
// references must have their namespace set; an empty storage name adds
// only the encryption Secret. shared is the BackupStorage when it is of
// another namespace: the pod's ServiceAccount must then be granted it
// (GrantStorage).
func SecretEnv(ctx context.Context, client versioned.Interface, podNS, repository string, enc, storage kmapi.ObjectReference) (env []corev1.EnvVar, shared *storagev1alpha1.BackupStorage, err error) {
	refs := []secretenv.Ref{{Namespace: enc.Namespace, Name: enc.Name, Keys: []string{secretenv.KeyResticPassword}}}
	if storage.Name != "" {
		bs, err := client.StorageV1alpha1().BackupStorages(storage.Namespace).Get(ctx, storage.Name, metav1.GetOptions{})
		if err != nil {
			return nil, nil, fmt.Errorf("BackupStorage %s/%s: %w", storage.Namespace, storage.Name, err)
		}
		if sn := storagebackend.SecretName(bs); sn != "" && bs.Spec.Storage.Provider == storagev1alpha1.ProviderS3 {
			refs = append(refs, secretenv.Ref{Namespace: bs.Namespace, Name: sn,
				Keys: []string{secretenv.KeyAccessKeyID, secretenv.KeySecretAccessKey}, Optional: []string{secretenv.KeyCACertData}})
		}
		if bs.Namespace != podNS {
			shared = bs
		}
	}
	return secretenv.Env(podNS, repository, refs...), shared, nil
}

// Package storagebackend opens the backend of a BackupStorage (S3 with the
// keys of its Secret, or a local directory the policy allows): the one way
// the catalog server, the controller and the agent reach a storage. It has
// no informers, so the agent imports it without the catalog server's
// machinery.
package storagebackend

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/backenddirs"
)

// Keys of a BackupStorage's Secret (upstream's names, see the reference §4.3).
const (
	KeyAccessKeyID     = "AWS_ACCESS_KEY_ID"
	KeySecretAccessKey = "AWS_SECRET_ACCESS_KEY"
	KeyCACertData      = "CA_CERT_DATA"
)

// BuildFunc makes the backend of a BackupStorage. secret is the Secret its
// spec names, nil when it names none. Errors must not quote Secret values.
type BuildFunc func(bs *storagev1alpha1.BackupStorage, secret *corev1.Secret) (backend.Backend, error)

// SecretName returns the name of the Secret bs needs, "" when none.
func SecretName(bs *storagev1alpha1.BackupStorage) string {
	st := bs.Spec.Storage
	switch {
	case st.Provider == storagev1alpha1.ProviderS3 && st.S3 != nil:
		return st.S3.SecretName
	case st.Provider == storagev1alpha1.ProviderGCS && st.GCS != nil:
		return st.GCS.SecretName
	case st.Provider == storagev1alpha1.ProviderAzure && st.Azure != nil:
		return st.Azure.SecretName
	}
	return ""
}

// Builder builds the backends of BackupStorages for the servers.
type Builder struct {
	// LocalDirs says where local backends may be; the zero value allows
	// none, so that a tenant's BackupStorage never opens a directory of
	// the node that no administrator allowed.
	LocalDirs backenddirs.Policy
}

// Build is Builder{}.Build: S3 only, no local backend.
func Build(bs *storagev1alpha1.BackupStorage, secret *corev1.Secret) (backend.Backend, error) {
	return Builder{}.Build(bs, secret)
}

// Open is Builder{}.Open.
func Open(ctx context.Context, kube kubernetes.Interface, bs *storagev1alpha1.BackupStorage) (backend.Backend, error) {
	return Builder{}.Open(ctx, kube, bs)
}

// Build is the BuildFunc of the servers: S3 from spec.storage.s3 and the
// Secret's keys, a local directory from spec.storage.local where
// b.LocalDirs allows it.
func (b Builder) Build(bs *storagev1alpha1.BackupStorage, secret *corev1.Secret) (backend.Backend, error) {
	st := bs.Spec.Storage
	switch st.Provider {
	case storagev1alpha1.ProviderS3:
		if st.S3 == nil {
			return nil, errors.New("spec.storage.s3 is missing")
		}
		cfg := backend.S3Config{
			Endpoint:    st.S3.Endpoint,
			Bucket:      st.S3.Bucket,
			Prefix:      st.S3.Prefix,
			Region:      st.S3.Region,
			InsecureTLS: st.S3.InsecureTLS,
		}
		if st.S3.SecretName != "" {
			if secret == nil {
				return nil, fmt.Errorf("secret %s/%s not found", bs.Namespace, st.S3.SecretName)
			}
			id, key := secret.Data[KeyAccessKeyID], secret.Data[KeySecretAccessKey]
			if len(id) == 0 || len(key) == 0 {
				// Name the keys, never their values.
				return nil, fmt.Errorf("secret %s/%s needs the keys %s and %s", secret.Namespace, secret.Name, KeyAccessKeyID, KeySecretAccessKey)
			}
			cfg.AccessKeyID, cfg.SecretAccessKey = string(id), string(key)
			cfg.CACertPEM = secret.Data[KeyCACertData]
		}
		b, err := backend.NewS3(cfg)
		if err != nil {
			return nil, err
		}
		return b, nil
	case storagev1alpha1.ProviderLocal:
		if st.Local == nil {
			return nil, errors.New("spec.storage.local is missing")
		}
		dir := LocalDir(st.Local)
		if dir == "" {
			return nil, errors.New("spec.storage.local has neither a hostPath nor a mountPath")
		}
		if ferr := b.LocalDirs.Check(st.Local); ferr != nil {
			return nil, ferr
		}
		if err := b.LocalDirs.CheckResolved(dir); err != nil {
			return nil, err
		}
		lb, err := backend.NewLocal(dir)
		if err != nil {
			return nil, err
		}
		return lb, nil
	case "":
		return nil, errors.New("spec.storage.provider is empty")
	default:
		return nil, fmt.Errorf("provider %q is not supported by the catalog server (s3 and local are)", st.Provider)
	}
}

// LocalDir is where the catalog server finds a local backend: the host
// directory of a hostPath source (it runs on the host, or mounts the same
// path), else the mountPath at which the volume is mounted into the server.
// subPath selects a folder inside a hostPath volume; for a mounted volume
// the mount itself already applies it.
func LocalDir(l *storagev1alpha1.LocalSpec) string {
	if l.HostPath != nil && l.HostPath.Path != "" {
		return filepath.Join(l.HostPath.Path, l.SubPath)
	}
	return l.MountPath
}

// Open builds bs's backend with its Secret, read through kube: for a
// controller that looks into a backend itself, rather than through the
// catalog.
func (b Builder) Open(ctx context.Context, kube kubernetes.Interface, bs *storagev1alpha1.BackupStorage) (backend.Backend, error) {
	var secret *corev1.Secret
	if sn := SecretName(bs); sn != "" {
		var err error
		if secret, err = kube.CoreV1().Secrets(bs.Namespace).Get(ctx, sn, metav1.GetOptions{}); err != nil {
			return nil, fmt.Errorf("get Secret %s/%s: %w", bs.Namespace, sn, err)
		}
	}
	return b.Build(bs, secret)
}

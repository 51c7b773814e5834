// Package backupstorage reconciles BackupStorages: it checks the Secret,
// initializes the backend (metadata.yaml, written only if absent) and
// reports the repositories the catalog holds for it, with their sizes.
package backupstorage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	corev1 "k8s.io/api/core/v1"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/conditions"
	"kubestash.dev/kubestash/pkg/controller/access"
	"kubestash.dev/kubestash/pkg/controller/lookup"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/restic"
	"kubestash.dev/kubestash/pkg/storagebackend"
	"kubestash.dev/kubestash/pkg/version"
)

// Reconciler reconciles one BackupStorage at a time.
type Reconciler struct {
	Kube   kubernetes.Interface
	Client versioned.Interface
	// Build makes the backend; nil means storagebackend.Build.
	Build storagebackend.BuildFunc
	// CatalogServerAccount ("namespace/name") is granted get on the
	// storage's Secret; empty: no grant.
	CatalogServerAccount string
	// Recorder, if set, gets the Events of wipe-outs.
	Recorder record.EventRecorder
	// Reads are its reads: from the controller's informers
	// (lookup.CachedReads), or from the API (lookup.LiveReads).
	Reads *lookup.Reads
}

// Reconcile checks the storage from scratch and writes what it finds into
// status. It deletes nothing in the backend but on the explicit deletion of
// a storage whose deletionPolicy is WipeOut (finishDeletion). It also revokes what
// Jobs of other namespaces were granted of it (access.GrantStorage) and
// its usagePolicy no longer allows.
func (r *Reconciler) Reconcile(ctx context.Context, namespace, name string) error {
	bs, err := r.Reads.BackupStorages.Get(ctx, namespace, name)
	if apierrors.IsNotFound(err) {
		return access.RevokeStorageGrants(ctx, r.Kube, namespace, name, nil)
	}
	if err != nil {
		return fmt.Errorf("get BackupStorage %s/%s: %w", namespace, name, err)
	}
	if err := access.RevokeStorageGrants(ctx, r.Kube, namespace, name, bs); err != nil {
		return err
	}
	if bs.DeletionTimestamp != nil {
		if slices.Contains(bs.Finalizers, catalogv1alpha1.FinalizerWipeOut) {
			return r.finishDeletion(ctx, bs)
		}
	} else if changed, err := r.finalizer(ctx, bs); err != nil || changed {
		return err
	}
	// The catalog server holds no right on Secrets but those granted
	// here; until it has it, it serves the storage as unavailable.
	if bs.DeletionTimestamp == nil {
		if err := access.GrantCatalogSecret(ctx, r.Kube, bs, r.CatalogServerAccount); err != nil {
			return fmt.Errorf("grant the catalog server the Secret of BackupStorage %s/%s: %w", namespace, name, err)
		}
	}
	st := bs.Status.DeepCopy()

	var secret *corev1.Secret
	secretOK := true
	if sn := storagebackend.SecretName(bs); sn != "" {
		secret, err = r.Kube.CoreV1().Secrets(namespace).Get(ctx, sn, metav1.GetOptions{})
		if err != nil {
			secretOK = false
			conditions.Set(&st.Conditions, conditions.False(storagev1alpha1.TypeBackendSecretFound, storagev1alpha1.ReasonBackendSecretNotAvailable,
				fmt.Sprintf("Secret %s/%s: %v", namespace, sn, reason(err))))
		} else {
			conditions.Set(&st.Conditions, conditions.True(storagev1alpha1.TypeBackendSecretFound, storagev1alpha1.ReasonBackendSecretAvailable, "Secret "+sn+" found"))
		}
	}
	if secretOK {
		build := r.Build
		if build == nil {
			build = storagebackend.Build
		}
		b, err := build(bs, secret)
		if err == nil {
			ictx, cancel := context.WithTimeout(ctx, time.Minute)
			err = initialize(ictx, bs, b)
			cancel()
		}
		if err != nil {
			conditions.Set(&st.Conditions, conditions.False(storagev1alpha1.TypeBackendInitialized, storagev1alpha1.ReasonBackendInitializationFailed, initMessage(bs, err)))
		} else {
			conditions.Set(&st.Conditions, conditions.True(storagev1alpha1.TypeBackendInitialized, storagev1alpha1.ReasonBackendInitializationSucceeded, "metadata.yaml is in place"))
		}
	} else {
		conditions.Set(&st.Conditions, conditions.False(storagev1alpha1.TypeBackendInitialized, storagev1alpha1.ReasonBackendInitializationFailed, "the backend's Secret is missing"))
	}

	// Upstream's rule: Ready iff initialized and the Secret, if any, found.
	st.Phase = storagev1alpha1.BackupStoragePhaseNotReady
	if conditions.IsTrue(st.Conditions, storagev1alpha1.TypeBackendInitialized) && secretOK {
		st.Phase = storagev1alpha1.BackupStoragePhaseReady
	}
	if err := r.repositories(ctx, bs, st); err != nil {
		// The catalog may be unavailable: keep the last list.
		st.Repositories, st.TotalSize = bs.Status.Repositories, bs.Status.TotalSize
	}

	if !apiequality.Semantic.DeepEqual(*st, bs.Status) {
		bs = bs.DeepCopy()
		bs.Status = *st
		if _, err := r.Client.StorageV1alpha1().BackupStorages(namespace).UpdateStatus(ctx, bs, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update status of BackupStorage %s/%s: %w", namespace, name, err)
		}
	}
	return nil
}

// initialize makes the backend ready for the catalog: the bucket, created
// if missing as upstream does (when the credentials allow), and
// metadata.yaml, written if absent.
func initialize(ctx context.Context, bs *storagev1alpha1.BackupStorage, b backend.Backend) error {
	if bm, ok := b.(backend.BucketMaker); ok {
		created, err := bm.EnsureBucket(ctx)
		if err != nil {
			return err
		}
		if created {
			klog.FromContext(ctx).Info("Created the bucket of a BackupStorage", "backupStorage", klog.KObj(bs), "backend", b.String())
		}
	}
	_, err := layout.EnsureMeta(ctx, b, version.Version)
	return err
}

// initMessage is the BackendInitialized condition's message for err. A
// missing bucket names the field and says what to do, since that is a
// mistake in the spec or a right the credentials lack, not an outage.
func initMessage(bs *storagev1alpha1.BackupStorage, err error) string {
	if !errors.Is(err, backend.ErrNoSuchBucket) || bs.Spec.Storage.S3 == nil {
		return err.Error()
	}
	var cause error = err
	var be *backend.Error
	if errors.As(err, &be) && be.Err != nil {
		cause = be.Err
	}
	return fmt.Sprintf("spec.storage.s3.bucket: bucket %q does not exist and could not be created (%v); create it, or allow the storage's credentials s3:CreateBucket",
		bs.Spec.Storage.S3.Bucket, cause)
}

// reason keeps a Secret lookup error short and free of its content.
func reason(err error) string {
	if apierrors.IsNotFound(err) {
		return "not found"
	}
	return err.Error()
}

// repositories lists, from the catalog, the Repositories kept in bs.
func (r *Reconciler) repositories(ctx context.Context, bs *storagev1alpha1.BackupStorage, st *storagev1alpha1.BackupStorageStatus) error {
	list, err := r.Reads.ListRepositories(ctx)
	if err != nil {
		return err
	}
	var total uint64
	known := false
	st.Repositories = nil
	for _, repo := range list {
		ns := repo.Spec.StorageRef.Namespace
		if ns == "" {
			ns = repo.Namespace
		}
		if ns != bs.Namespace || repo.Spec.StorageRef.Name != bs.Name {
			continue
		}
		st.Repositories = append(st.Repositories, storagev1alpha1.RepositoryInfo{
			Name: repo.Name, Namespace: repo.Namespace, Path: repo.Spec.Path, Size: repo.Status.Size, Synced: ptr.To(true),
		})
		if n, err := restic.ParseBytes(repo.Status.Size); err == nil && repo.Status.Size != "" {
			total, known = total+n, true
		}
	}
	sort.Slice(st.Repositories, func(i, j int) bool {
		a, b := st.Repositories[i], st.Repositories[j]
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	// Upstream leaves totalSize blank until a size is known, not "0 B".
	st.TotalSize = ""
	if known {
		st.TotalSize = restic.FormatBytes(total)
	}
	return nil
}

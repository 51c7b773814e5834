package wipeout

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/controller/lookup"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/storagebackend"
)

// wipeTimeout bounds one attempt at removing a repository's or a storage's
// data. A wipe is idempotent: one cut short is carried on by the next.
const wipeTimeout = 10 * time.Minute

// RepositoryReconciler finishes the explicit deletion of Repositories with
// deletionPolicy WipeOut. The catalog server keeps
// catalogv1alpha1.FinalizerWipeOut on them, so a delete only marks the
// Repository deleted (in its file, where any cluster over the bucket sees
// it); this removes the restic data and the catalog folders (snapshots,
// sessions, forget marks) straight from the backend, and then the
// finalizer, upon which the catalog server removes repository.yaml and its
// entry in metadata.yaml. The work is list and delete calls, done here
// rather than in a Job: it needs no restic, and nothing is left to
// forget once the whole repository is gone.
type RepositoryReconciler struct {
	Kube     kubernetes.Interface
	Client   versioned.Interface
	Recorder record.EventRecorder
	// OpenBackend opens a BackupStorage's backend from this process;
	// nil means storagebackend.Open.
	OpenBackend func(context.Context, *storagev1alpha1.BackupStorage) (backend.Backend, error)
	// Reads are its reads: from the controller's informers
	// (lookup.CachedReads), or from the API (lookup.LiveReads).
	Reads *lookup.Reads
}

// Reconcile handles Repository ns/name.
func (r *RepositoryReconciler) Reconcile(ctx context.Context, ns, name string) error {
	logger := klog.FromContext(ctx).WithValues("repository", klog.KRef(ns, name))
	repo, err := r.Reads.Repositories.Get(ctx, ns, name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get Repository %s/%s: %w", ns, name, err)
	}
	wipeOut := repo.Spec.DeletionPolicy == catalogv1alpha1.DeletionPolicyWipeOut
	has := slices.Contains(repo.Finalizers, catalogv1alpha1.FinalizerWipeOut)
	if repo.DeletionTimestamp == nil {
		if wipeOut && !has {
			// A file written elsewhere (by hand, by upstream): any update
			// through the catalog server gives it the finalizer.
			_, err := r.Client.CatalogV1alpha1().Repositories(ns).Update(ctx, repo, metav1.UpdateOptions{})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return fmt.Errorf("add the WipeOut finalizer to Repository %s/%s: %w", ns, name, err)
			}
		}
		return nil
	}
	if !has {
		return nil
	}
	// The catalog server never starts the deletion of an object of a
	// terminating namespace, but one begun before may meet it: backups
	// outlive their namespace, so nothing is removed now. When the
	// namespace is created again the Repository is served again, still
	// being deleted, and the wipe goes on.
	if terminating, err := NamespaceTerminating(ctx, r.Kube, ns); err != nil || terminating {
		return err
	}
	if wipeOut {
		n, err := r.wipe(ctx, repo)
		if err != nil {
			r.event(repo, corev1.EventTypeWarning, "WipeOutFailed", "Cannot remove the data of the Repository: %v", err)
			return err
		}
		logger.Info("Removed the data of a deleted WipeOut Repository", "objects", n)
		r.event(repo, corev1.EventTypeNormal, "WipeOut", "Removed the Repository's data from the backend (%d objects)", n)
	}
	// Without WipeOut (changed since the delete) the data stays; the
	// finalizer only goes.
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := r.Client.CatalogV1alpha1().Repositories(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		cur.Finalizers = slices.DeleteFunc(cur.Finalizers, func(f string) bool { return f == catalogv1alpha1.FinalizerWipeOut })
		_, err = r.Client.CatalogV1alpha1().Repositories(ns).Update(ctx, cur, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}

// wipe removes the repository's data from its backend, all but
// repository.yaml, which the catalog server removes with the finalizer.
func (r *RepositoryReconciler) wipe(ctx context.Context, repo *catalogv1alpha1.Repository) (int, error) {
	ref := repo.Spec.StorageRef
	if ref.Namespace == "" {
		ref.Namespace = repo.Namespace
	}
	bs, err := r.Client.StorageV1alpha1().BackupStorages(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("BackupStorage %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	open := r.OpenBackend
	if open == nil {
		open = func(ctx context.Context, bs *storagev1alpha1.BackupStorage) (backend.Backend, error) {
			return storagebackend.Open(ctx, r.Kube, bs)
		}
	}
	b, err := open(ctx, bs)
	if err != nil {
		return 0, fmt.Errorf("open the backend of BackupStorage %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	wctx, cancel := context.WithTimeout(ctx, wipeTimeout)
	defer cancel()
	return layout.WipeRepository(wctx, b, repo.Spec.Path, false)
}

func (r *RepositoryReconciler) event(repo *catalogv1alpha1.Repository, typ, reason, format string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(repo, typ, reason, format, args...)
	}
}

// NamespaceTerminating tells whether namespace ns is being deleted (or is
// gone): what is deleted with it must keep its data in the backend.
func NamespaceTerminating(ctx context.Context, kube kubernetes.Interface, ns string) (bool, error) {
	n, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("get Namespace %s: %w", ns, err)
	}
	return n.DeletionTimestamp != nil || n.Status.Phase == corev1.NamespaceTerminating, nil
}

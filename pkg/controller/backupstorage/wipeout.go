package backupstorage

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/controller/wipeout"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/storagebackend"
)

// wipeTimeout bounds one attempt at removing a storage's data; the next
// reconcile carries on where it stopped.
const wipeTimeout = 30 * time.Minute

// finalizer keeps catalogv1alpha1.FinalizerWipeOut on bs exactly while its
// deletionPolicy is WipeOut, so that its deletion waits for the wipe. It
// reports whether it changed bs (the update brings another reconcile).
func (r *Reconciler) finalizer(ctx context.Context, bs *storagev1alpha1.BackupStorage) (bool, error) {
	want := bs.Spec.DeletionPolicy == storagev1alpha1.DeletionPolicyWipeOut
	if want == slices.Contains(bs.Finalizers, catalogv1alpha1.FinalizerWipeOut) {
		return false, nil
	}
	bs = bs.DeepCopy()
	if want {
		bs.Finalizers = append(bs.Finalizers, catalogv1alpha1.FinalizerWipeOut)
	} else {
		bs.Finalizers = slices.DeleteFunc(bs.Finalizers, func(f string) bool { return f == catalogv1alpha1.FinalizerWipeOut })
	}
	if _, err := r.Client.StorageV1alpha1().BackupStorages(bs.Namespace).Update(ctx, bs, metav1.UpdateOptions{}); err != nil {
		return false, fmt.Errorf("update the finalizers of BackupStorage %s/%s: %w", bs.Namespace, bs.Name, err)
	}
	return true, nil
}

// finishDeletion handles a BackupStorage being deleted that carries the
// WipeOut finalizer. An explicit delete with deletionPolicy WipeOut removes
// everything this project wrote under its prefix (layout.WipeStorage);
// the deletion of its namespace never does: backups outlive their
// namespace. Either way the finalizer goes last.
func (r *Reconciler) finishDeletion(ctx context.Context, bs *storagev1alpha1.BackupStorage) error {
	logger := klog.FromContext(ctx).WithValues("backupStorage", klog.KObj(bs))
	terminating, err := wipeout.NamespaceTerminating(ctx, r.Kube, bs.Namespace)
	if err != nil {
		return err
	}
	switch {
	case terminating:
		logger.Info("Namespace is being deleted: the BackupStorage goes, its data stays")
	case bs.Spec.DeletionPolicy == storagev1alpha1.DeletionPolicyWipeOut:
		n, err := r.wipe(ctx, bs)
		if err != nil {
			r.event(bs, corev1.EventTypeWarning, "WipeOutFailed", "Cannot remove the data of the BackupStorage: %v", err)
			return err
		}
		logger.Info("Removed the data of a deleted WipeOut BackupStorage", "objects", n)
		r.event(bs, corev1.EventTypeNormal, "WipeOut", "Removed the BackupStorage's data from the backend (%d objects)", n)
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := r.Client.StorageV1alpha1().BackupStorages(bs.Namespace).Get(ctx, bs.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		cur.Finalizers = slices.DeleteFunc(cur.Finalizers, func(f string) bool { return f == catalogv1alpha1.FinalizerWipeOut })
		_, err = r.Client.StorageV1alpha1().BackupStorages(bs.Namespace).Update(ctx, cur, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}

func (r *Reconciler) wipe(ctx context.Context, bs *storagev1alpha1.BackupStorage) (int, error) {
	var secret *corev1.Secret
	if sn := storagebackend.SecretName(bs); sn != "" {
		var err error
		if secret, err = r.Kube.CoreV1().Secrets(bs.Namespace).Get(ctx, sn, metav1.GetOptions{}); err != nil {
			return 0, fmt.Errorf("Secret %s/%s: %s", bs.Namespace, sn, reason(err))
		}
	}
	build := r.Build
	if build == nil {
		build = storagebackend.Build
	}
	b, err := build(bs, secret)
	if err != nil {
		return 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, wipeTimeout)
	defer cancel()
	return layout.WipeStorage(wctx, b)
}

func (r *Reconciler) event(bs *storagev1alpha1.BackupStorage, typ, reason, format string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(bs, typ, reason, format, args...)
	}
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/storagebackend"
)

// ForgetOptions are the arguments of `agent forget` (the retention Job).
type ForgetOptions struct {
	Namespace    string
	Repositories []string
	ScratchDir   string
}

// Forget acts on the forget marks of each repository (layout.ForgetDir):
// for every deleted WipeOut Snapshot whose file is really gone, it runs
// restic forget --prune on the restic snapshots the mark names, then drops
// the mark's entry. A mark whose Snapshot still exists (same UID) is left
// alone: the deletion that wrote it did not happen. Restic snapshots that
// are already gone are skipped, so running it again after a crash is safe.
// Repositories are done one after the other; a failure in one does not
// stop the others.
func (a *Agent) Forget(ctx context.Context, o ForgetOptions) error {
	if o.Namespace == "" || len(o.Repositories) == 0 {
		return errors.New("forget: --namespace and at least one --repository are required")
	}
	if o.ScratchDir == "" {
		o.ScratchDir = DefaultScratchDir
	}
	var errs []error
	for _, name := range o.Repositories {
		n, err := a.forgetRepository(ctx, o, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("repository %s/%s: %w", o.Namespace, name, err))
			continue
		}
		klog.InfoS("Forgot the restic data of deleted snapshots", "repository", klog.KRef(o.Namespace, name), "snapshots", n)
	}
	return errors.Join(errs...)
}

// forgetRepository handles one repository's marks and returns how many
// deleted Snapshots it forgot.
func (a *Agent) forgetRepository(ctx context.Context, o ForgetOptions, name string) (int, error) {
	repo, err := a.Client.CatalogV1alpha1().Repositories(o.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("get Repository: %w", err)
	}
	acc, err := a.repoAccess(ctx, repo, nil, repo.Namespace)
	if err != nil {
		return 0, err
	}
	b, err := a.backendOf(ctx, repo)
	if err != nil {
		return 0, err
	}
	keys, err := layout.ListForgetMarks(ctx, b, repo.Spec.Path)
	if err != nil {
		return 0, err
	}

	type entry struct {
		key string
		uid string
	}
	var todo []entry
	ids := map[string][]string{} // component path -> restic snapshot ids
	for _, k := range keys {
		m, _, err := layout.ReadForgetMark(ctx, b, k.Key)
		if errors.Is(err, backend.ErrNotFound) {
			continue // done by another run meanwhile
		}
		if err != nil {
			return 0, err
		}
		for _, e := range m.Snapshots {
			gone, err := a.snapshotGone(ctx, e)
			if err != nil {
				return 0, err
			}
			if !gone {
				klog.V(2).InfoS("Forget mark of a Snapshot that still exists; left alone", "snapshot", klog.KRef(e.Namespace, e.Name), "uid", e.UID)
				continue
			}
			for _, c := range e.Components {
				ids[c.Path] = append(ids[c.Path], c.ResticSnapshots...)
			}
			todo = append(todo, entry{key: k.Key, uid: e.UID})
		}
	}

	paths := make([]string, 0, len(ids))
	for p := range ids {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if err := a.forgetIn(ctx, repo, acc, p, ids[p], o.ScratchDir); err != nil {
			return 0, err
		}
	}
	// Only now that restic forgot them: a mark dropped earlier would leak
	// the data if the prune failed.
	for _, e := range todo {
		if err := layout.DropForgetEntry(ctx, b, e.key, e.uid); err != nil {
			return 0, err
		}
	}
	return len(todo), nil
}

// snapshotGone reports whether the Snapshot of a mark's entry is deleted:
// no Snapshot of that name, or one made again under it (another UID).
func (a *Agent) snapshotGone(ctx context.Context, e layout.ForgetSnapshot) (bool, error) {
	s, err := a.Client.CatalogV1alpha1().Snapshots(e.Namespace).Get(ctx, e.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("get Snapshot %s/%s: %w", e.Namespace, e.Name, err)
	}
	return e.UID != "" && string(s.UID) != e.UID, nil
}

// forgetIn runs restic forget --prune on those of ids that the restic
// repository at componentPath still has.
func (a *Agent) forgetIn(ctx context.Context, repo *catalogv1alpha1.Repository, acc *access, componentPath string, ids []string, scratchDir string) error {
	if componentPath == "" || len(ids) == 0 {
		return nil
	}
	r, err := a.newRestic(acc, componentPath, scratchDir, false)
	if err != nil {
		return err
	}
	exists, err := r.Exists(ctx)
	if err != nil {
		return err
	}
	if !exists {
		return nil // never initialized, or wiped: nothing to forget
	}
	have, err := r.Snapshots(ctx)
	if err != nil {
		return err
	}
	present := map[string]bool{}
	for _, s := range have {
		present[s.ID] = true
	}
	var del []string
	for _, id := range ids {
		if present[id] {
			del = append(del, id)
			delete(present, id) // once, even if two marks name it
		}
	}
	if len(del) == 0 {
		return nil
	}
	// forget --prune needs an exclusive lock, which any lock blocks:
	// those of pods that no longer run go first (restic's own forget
	// removes the stale ones it can tell).
	a.removeDeadLocks(ctx, r, repo, componentPath)
	klog.InfoS("Forgetting restic snapshots", "component", componentPath, "ids", strings.Join(del, ","))
	return r.Forget(ctx, del, true)
}

// backendOf opens the backend of a Repository's BackupStorage as this Pod
// sees it: a local storage at its mountPath (the Job mounts it there), S3
// with the keys of the storage's Secret.
func (a *Agent) backendOf(ctx context.Context, repo *catalogv1alpha1.Repository) (backend.Backend, error) {
	ref := repo.Spec.StorageRef
	if ref.Namespace == "" {
		ref.Namespace = repo.Namespace
	}
	bs, err := a.Client.StorageV1alpha1().BackupStorages(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get BackupStorage %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	if bs.Spec.Storage.Provider == storagev1alpha1.ProviderLocal && bs.Spec.Storage.Local != nil {
		return backend.NewLocal(a.onDisk(bs.Spec.Storage.Local.MountPath))
	}
	var secret *corev1.Secret
	if sn := storagebackend.SecretName(bs); sn != "" {
		data, err := a.secretData(ctx, "storage secret", repo.Name, bs.Namespace, sn, []string{KeyAccessKeyID, KeySecretAccessKey}, []string{KeyCACertData})
		if err != nil {
			return nil, err
		}
		secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: bs.Namespace, Name: sn}, Data: data}
	}
	b, err := storagebackend.Build(bs, secret)
	if err != nil {
		return nil, fmt.Errorf("BackupStorage %s/%s: %w", bs.Namespace, bs.Name, err)
	}
	return b, nil
}

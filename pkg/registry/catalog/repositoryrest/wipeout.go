package repositoryrest

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/store"
)

// Unlister drops a repository from its storage's metadata.yaml
// (registry.Catalog.UnlistRepository).
type Unlister interface {
	UnlistRepository(ctx context.Context, storage string, b backend.Backend, repoPath string) error
}

// UnlistOnWipeOut is the DeleteHook of repositories: the file of a
// Repository wiped out (deletionPolicy WipeOut, its deletion begun, which
// the controller lets finish only once it has removed the data) takes its
// entry in metadata.yaml with it. Deleting a Repository with
// deletionPolicy Delete keeps the entry, as its data stays.
type UnlistOnWipeOut struct {
	Catalog Unlister
}

var _ store.DeleteHook = UnlistOnWipeOut{}

// BeforeDelete implements store.DeleteHook.
func (u UnlistOnWipeOut) BeforeDelete(ctx context.Context, b backend.Backend, loc store.Location, obj runtime.Object) (func(context.Context), error) {
	r, ok := obj.(*catalog.Repository)
	if !ok {
		return nil, fmt.Errorf("want a Repository, got %T", obj)
	}
	if r.Spec.DeletionPolicy != catalog.DeletionPolicyWipeOut || r.DeletionTimestamp == nil || u.Catalog == nil {
		return nil, nil
	}
	if err := u.Catalog.UnlistRepository(ctx, loc.Storage, b, r.Spec.Path); err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(2).Info("Repository wiped out: removed from metadata.yaml", "repository", klog.KObj(r), "storage", loc.Storage)
	return func(ctx context.Context) {
		// The file stays after all: list it again, or discovery loses it.
		if err := layout.AddRepository(ctx, b, layout.RepositoryInfo{Name: r.Name, Namespace: r.Namespace, Path: r.Spec.Path}); err != nil {
			klog.FromContext(ctx).Error(err, "Cannot list again a Repository that was not deleted", "repository", klog.KObj(r), "storage", loc.Storage)
		}
	}, nil
}

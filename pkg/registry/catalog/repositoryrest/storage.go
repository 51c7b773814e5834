package repositoryrest

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/placement"
	"kubestash.dev/kubestash/pkg/registry"
)

// NewREST returns the storage of repositories and repositories/status:
// repository.yaml in the repository's directory of its BackupStorage,
// recorded in the storage's metadata.yaml. A Repository with deletionPolicy
// WipeOut carries a finalizer (see wipeOutFinalizer) and leaves
// metadata.yaml when its file goes (UnlistOnWipeOut).
func NewREST(scheme *runtime.Scheme, c *registry.Catalog, namespaces registry.Namespaces) (*registry.REST, *registry.StatusREST, error) {
	strategy := registry.NewStrategy(scheme, Kind)
	return c.NewREST(registry.Resource{
		Plural:         catalogv1alpha1.ResourcePluralRepository,
		Singular:       "repository",
		Kind:           layout.KindRepository,
		NewFunc:        func() runtime.Object { return &catalog.Repository{} },
		NewListFunc:    func() runtime.Object { return &catalog.RepositoryList{} },
		Strategy:       strategy,
		StatusStrategy: registry.NewStatusStrategy(strategy),
		GetAttrs:       GetAttrs,
		Table:          Table,
		ShortNames:     []string{"repo"},
		Categories:     registry.Categories,
		Locator:        placement.RepositoryLocator{},
		DeleteHook:     UnlistOnWipeOut{Catalog: c},
		Reference: func(obj runtime.Object) registry.Reference {
			r := obj.(*catalog.Repository)
			ns := r.Spec.StorageRef.Namespace
			if ns == "" {
				ns = r.Namespace
			}
			return registry.Reference{Field: field.NewPath("spec", "storageRef"), Kind: "BackupStorage", Namespace: ns, Name: r.Spec.StorageRef.Name}
		},
	}, namespaces)
}

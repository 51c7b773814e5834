package snapshotrest

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/placement"
	"kubestash.dev/kubestash/pkg/registry"
)

// NewREST returns the storage of snapshots and snapshots/status: files in
// the folder of their Repository. Deleting one with deletionPolicy WipeOut
// marks its restic data to be forgotten (ForgetOnWipeOut).
func NewREST(scheme *runtime.Scheme, c *registry.Catalog, namespaces registry.Namespaces) (*registry.REST, *registry.StatusREST, error) {
	strategy := registry.NewStrategy(scheme, Kind)
	return c.NewREST(registry.Resource{
		Plural:         catalogv1alpha1.ResourcePluralSnapshot,
		Singular:       "snapshot",
		Kind:           layout.KindSnapshot,
		NewFunc:        func() runtime.Object { return &catalog.Snapshot{} },
		NewListFunc:    func() runtime.Object { return &catalog.SnapshotList{} },
		Strategy:       strategy,
		StatusStrategy: registry.NewStatusStrategy(strategy),
		GetAttrs:       GetAttrs,
		Table:          Table,
		Categories:     registry.CategoriesNotInAll,
		Locator:        placement.SnapshotLocator{Repos: c.Repositories()},
		Reference: func(obj runtime.Object) registry.Reference {
			s := obj.(*catalog.Snapshot)
			return registry.Reference{Field: field.NewPath("spec", "repository"), Kind: "Repository", Namespace: s.Namespace, Name: s.Spec.Repository}
		},
		DeleteHook: ForgetOnWipeOut{},
	}, namespaces)
}

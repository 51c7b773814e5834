package restoresessionrest

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/placement"
	"kubestash.dev/kubestash/pkg/registry"
)

// NewREST returns the storage of restoresessions and restoresessions/status:
// files in the folder of the Repository restored from.
func NewREST(scheme *runtime.Scheme, c *registry.Catalog, namespaces registry.Namespaces) (*registry.REST, *registry.StatusREST, error) {
	kind := Kind
	kind.Default = func(r *catalog.RestoreSession) {
		Kind.Default(r)
		// Upstream accepts a Snapshot's name alone; the file goes in its
		// Repository's folder, so the Repository is looked up.
		if d := &r.Spec.DataSource; d.Repository == "" && d.PITR == nil && d.Snapshot != "" && d.Snapshot != LatestSnapshot {
			// Only from a Snapshot the namespace may use: otherwise
			// whether one of another namespace exists would show.
			if repo, ok := c.UsableSnapshotRepository(r.Namespace, d.Namespace, d.Snapshot); ok {
				d.Repository = repo
			}
		}
	}
	strategy := registry.NewStrategy(scheme, kind)
	return c.NewREST(registry.Resource{
		Plural:         catalogv1alpha1.ResourcePluralRestoreSession,
		Singular:       "restoresession",
		Kind:           layout.KindRestoreSession,
		NewFunc:        func() runtime.Object { return &catalog.RestoreSession{} },
		NewListFunc:    func() runtime.Object { return &catalog.RestoreSessionList{} },
		Strategy:       strategy,
		StatusStrategy: registry.NewStatusStrategy(strategy),
		GetAttrs:       GetAttrs,
		Table:          Table,
		ShortNames:     []string{"restore"},
		Categories:     registry.Categories,
		Locator:        placement.RestoreSessionLocator{Repos: c.Repositories()},
		Reference: func(obj runtime.Object) registry.Reference {
			r := obj.(*catalog.RestoreSession)
			ns := r.Spec.DataSource.Namespace
			if ns == "" {
				ns = r.Namespace
			}
			return registry.Reference{Field: field.NewPath("spec", "dataSource", "repository"), Kind: "Repository", Namespace: ns, Name: r.Spec.DataSource.Repository}
		},
	}, namespaces)
}

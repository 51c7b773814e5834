package backupsessionrest

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/placement"
	"kubestash.dev/kubestash/pkg/registry"
)

// NewREST returns the storage of backupsessions and backupsessions/status:
// files in the first repository of their session, which sessions finds in
// the BackupConfiguration.
func NewREST(scheme *runtime.Scheme, c *registry.Catalog, namespaces registry.Namespaces, sessions placement.SessionRepositories) (*registry.REST, *registry.StatusREST, error) {
	strategy := registry.NewStrategy(scheme, Kind)
	return c.NewREST(registry.Resource{
		Plural:         catalogv1alpha1.ResourcePluralBackupSession,
		Singular:       "backupsession",
		Kind:           layout.KindBackupSession,
		NewFunc:        func() runtime.Object { return &catalog.BackupSession{} },
		NewListFunc:    func() runtime.Object { return &catalog.BackupSessionList{} },
		Strategy:       strategy,
		StatusStrategy: registry.NewStatusStrategy(strategy),
		GetAttrs:       GetAttrs,
		Table:          Table,
		Categories:     registry.Categories,
		Locator:        placement.BackupSessionLocator{Repos: c.Repositories(), Sessions: sessions},
		Reference: func(obj runtime.Object) registry.Reference {
			// The repository is found through the BackupConfiguration of
			// the session's own namespace.
			b := obj.(*catalog.BackupSession)
			return registry.Reference{Field: field.NewPath("spec", "session"), Kind: "Repository", Namespace: b.Namespace, Name: b.Spec.Session}
		},
	}, namespaces)
}

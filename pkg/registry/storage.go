package registry

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/store"
)

// Categories of the catalog resources, as upstream's CRDs have them; a
// Snapshot is not in "all" (there are many).
var (
	Categories         = []string{"kubestash", "appscode", "all"}
	CategoriesNotInAll = []string{"kubestash", "appscode"}
)

// Resource describes one catalog resource for NewREST.
type Resource struct {
	Plural, Singular string
	Kind             layout.Kind
	NewFunc          func() runtime.Object
	NewListFunc      func() runtime.Object
	Strategy         interface {
		rest.RESTCreateStrategy
		rest.RESTUpdateStrategy
		rest.RESTDeleteStrategy
		rest.ResetFieldsStrategy
	}
	StatusStrategy interface {
		rest.RESTUpdateStrategy
		rest.ResetFieldsStrategy
	}
	// GetAttrs exposes labels and the selectable fields.
	GetAttrs   storage.AttrFunc
	Table      rest.TableConvertor
	ShortNames []string
	Categories []string
	// Locator places an object (pkg/placement), without side effects.
	Locator store.Locator
	// Reference is what Locator follows: the tenancy checks ask whether
	// the object's namespace may use it.
	Reference func(runtime.Object) Reference
	// DeleteHook, if set, runs before an object's file is removed.
	DeleteHook store.DeleteHook
}

// NewREST builds the REST storage of a resource and its /status over a
// catalog store.
func (c *Catalog) NewREST(r Resource, namespaces Namespaces) (*REST, *StatusREST, error) {
	s := &genericregistry.Store{
		NewFunc:                   r.NewFunc,
		NewListFunc:               r.NewListFunc,
		DefaultQualifiedResource:  catalog.Resource(r.Plural),
		SingularQualifiedResource: catalog.Resource(r.Singular),

		CreateStrategy:      r.Strategy,
		UpdateStrategy:      r.Strategy,
		DeleteStrategy:      r.Strategy,
		ResetFieldsStrategy: r.Strategy,

		TableConvertor: r.Table,
	}
	if r.Locator == nil || r.Reference == nil {
		return nil, nil, fmt.Errorf("storage of %s: Locator and Reference are required", r.Plural)
	}
	locator := &checkedLocator{c: c, kind: r.Kind, place: r.Locator, ref: r.Reference}
	var prepare store.PrepareFunc
	if r.Kind == layout.KindRepository {
		locator.indexed = c.repositoryIndexed
		prepare = (&repositoryRecorder{c: c}).record
	}
	hook := r.DeleteHook
	var owner *sessionOwner
	if (r.Kind == layout.KindBackupSession || r.Kind == layout.KindRestoreSession) && namespaces != nil {
		// A session belongs to the namespace incarnation that made it.
		owner = &sessionOwner{namespaces: namespaces}
		hook = ArchiveHook{Next: hook}
	}
	opts := &generic.StoreOptions{RESTOptions: c.RESTOptions(r.Plural, r.Kind, locator, hook, prepare), AttrFunc: r.GetAttrs}
	if err := s.CompleteWithOptions(opts); err != nil {
		return nil, nil, fmt.Errorf("storage of %s: %w", r.Plural, err)
	}
	g := &guard{check: locator.Check, location: func(key string) (store.Location, bool) {
		st := c.store(r.Plural)
		if st == nil {
			return store.Location{}, false
		}
		return st.Location(key)
	}}
	rest := NewREST(s, namespaces, r.ShortNames, r.Categories)
	rest.guard = g
	rest.owner = owner
	return rest, NewStatusREST(s, r.StatusStrategy), nil
}

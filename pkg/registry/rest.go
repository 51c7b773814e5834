// Package registry holds what the REST storages of the catalog resources
// (pkg/registry/catalog/...) share: the REST wrapper that keeps the backend
// out of namespace deletion, the status subresource, table conversion,
// validation helpers, and Catalog, which builds a catalog store per resource
// over shared backends.
package registry

import (
	"context"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// Namespaces tells whether a namespace is being deleted, and which
// incarnation of it is alive.
type Namespaces interface {
	Terminating(namespace string) bool
	// Incarnation returns the namespace as it is now; ok is false when it
	// does not exist, err when that cannot be told.
	Incarnation(ctx context.Context, namespace string) (inc Incarnation, ok bool, err error)
}

// NamespaceLister answers Namespaces from an informer's lister, and from
// Client (if set) for a namespace the informer has not seen yet.
type NamespaceLister struct {
	Lister corelisters.NamespaceLister
	Client NamespaceGetter

	mu     sync.Mutex
	missed map[string]time.Time // namespaces Client found missing, and when
}

// Terminating is true for a namespace in phase Terminating or with a
// deletionTimestamp; false when it is unknown.
func (n *NamespaceLister) Terminating(namespace string) bool {
	if namespace == "" || n.Lister == nil {
		return false
	}
	ns, err := n.Lister.Get(namespace)
	if err != nil {
		return false
	}
	return ns.Status.Phase == corev1.NamespaceTerminating || ns.DeletionTimestamp != nil
}

// REST is the storage of a catalog resource: the generic registry, plus
// what makes backups outlive the cluster's housekeeping. The namespace
// controller deletes every namespaced resource of a namespace being deleted
// and waits until lists of them come back empty; a backup catalog must not
// go with it (a namespace deleted by accident must be restorable from its
// own backups). So objects of a terminating namespace drop out of lists and
// watches, and deleting them there succeeds without touching the backend.
type REST struct {
	*genericregistry.Store
	namespaces Namespaces
	shortNames []string
	categories []string
	// guard runs the store's write checks for dry runs; nil: none.
	guard *guard
	// owner, for sessions, serves only those of their namespace's current
	// incarnation; nil: every object is served.
	owner *sessionOwner
}

var (
	_ rest.ShortNamesProvider   = &REST{}
	_ rest.CategoriesProvider   = &REST{}
	_ rest.SingularNameProvider = &REST{}
	_ rest.StandardStorage      = &REST{}
)

// NewREST wraps a completed store.
func NewREST(s *genericregistry.Store, namespaces Namespaces, shortNames, categories []string) *REST {
	return &REST{Store: s, namespaces: namespaces, shortNames: shortNames, categories: categories}
}

// ShortNames implements rest.ShortNamesProvider.
func (r *REST) ShortNames() []string { return r.shortNames }

// Categories implements rest.CategoriesProvider.
func (r *REST) Categories() []string { return r.categories }

func (r *REST) terminating(namespace string) bool {
	return r.namespaces != nil && r.namespaces.Terminating(namespace)
}

// List leaves out the objects of terminating namespaces.
func (r *REST) List(ctx context.Context, options *metainternalversion.ListOptions) (runtime.Object, error) {
	obj, err := r.doList(ctx, options)
	return obj, r.publicError(ctx, err)
}

func (r *REST) doList(ctx context.Context, options *metainternalversion.ListOptions) (runtime.Object, error) {
	if ns, ok := genericapirequest.NamespaceFrom(ctx); ok && ns != "" && r.terminating(ns) {
		return r.emptyList(ctx), nil
	}
	obj, err := r.Store.List(ctx, options)
	if err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(obj)
	if err != nil {
		return nil, err
	}
	kept := make([]runtime.Object, 0, len(items))
	for _, it := range items {
		m, err := meta.Accessor(it)
		if err != nil || (!r.terminating(m.GetNamespace()) && !r.hidden(ctx, it)) {
			kept = append(kept, it)
		}
	}
	if len(kept) == len(items) {
		return obj, nil
	}
	if err := meta.SetList(obj, kept); err != nil {
		return nil, err
	}
	if lm, err := meta.ListAccessor(obj); err == nil {
		lm.SetRemainingItemCount(nil) // no longer exact
	}
	return obj, nil
}

// emptyList is a list without items at the current resourceVersion, as the
// list of an empty namespace would be.
func (r *REST) emptyList(ctx context.Context) runtime.Object {
	list := r.NewListFunc()
	if rv, err := r.Storage.Storage.GetCurrentResourceVersion(ctx); err == nil {
		if lm, err := meta.ListAccessor(list); err == nil {
			lm.SetResourceVersion(strconv.FormatUint(rv, 10))
		}
	}
	return list
}

// Watch leaves out the events of objects of terminating namespaces, as
// List does.
func (r *REST) Watch(ctx context.Context, options *metainternalversion.ListOptions) (watch.Interface, error) {
	w, err := r.doWatch(ctx, options)
	return w, r.publicError(ctx, err)
}

func (r *REST) doWatch(ctx context.Context, options *metainternalversion.ListOptions) (watch.Interface, error) {
	w, err := r.Store.Watch(ctx, options)
	if err != nil || r.namespaces == nil {
		return w, err
	}
	return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
		if e.Type == watch.Bookmark || e.Type == watch.Error {
			return e, true
		}
		m, err := meta.Accessor(e.Object)
		if err != nil {
			return e, true
		}
		return e, !r.terminating(m.GetNamespace()) && !r.hidden(ctx, e.Object)
	}), nil
}

// Delete of an object in a terminating namespace reports success and leaves
// the object and its file alone: the namespace controller is cleaning up,
// and backups outlive that.
func (r *REST) Delete(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	obj, done, err := r.doDelete(ctx, name, deleteValidation, options)
	return obj, done, r.publicError(ctx, err)
}

func (r *REST) doDelete(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	ns, _ := genericapirequest.NamespaceFrom(ctx)
	if r.owner != nil {
		if cur, err := r.Store.Get(ctx, name, &metav1.GetOptions{}); err == nil && r.hidden(ctx, cur) {
			return nil, false, apierrors.NewNotFound(r.DefaultQualifiedResource, name)
		}
	}
	if !r.terminating(ns) {
		return r.Store.Delete(ctx, name, deleteValidation, options)
	}
	obj, err := r.Store.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, false, err
	}
	klog.FromContext(ctx).V(2).Info("Namespace is terminating: catalog object kept in the backend",
		"resource", r.DefaultQualifiedResource.String(), "namespace", ns, "name", name)
	return obj, true, nil
}

// DeleteCollection in a terminating namespace deletes nothing; across all
// namespaces it deletes item by item so that terminating ones are spared.
func (r *REST) DeleteCollection(ctx context.Context, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions, listOptions *metainternalversion.ListOptions) (runtime.Object, error) {
	obj, err := r.doDeleteCollection(ctx, deleteValidation, options, listOptions)
	return obj, r.publicError(ctx, err)
}

func (r *REST) doDeleteCollection(ctx context.Context, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions, listOptions *metainternalversion.ListOptions) (runtime.Object, error) {
	if ns, ok := genericapirequest.NamespaceFrom(ctx); ok && ns != "" {
		if r.terminating(ns) {
			klog.FromContext(ctx).V(2).Info("Namespace is terminating: catalog objects kept in the backend",
				"resource", r.DefaultQualifiedResource.String(), "namespace", ns)
			return r.NewListFunc(), nil
		}
		if r.owner == nil {
			return r.Store.DeleteCollection(ctx, deleteValidation, options, listOptions)
		}
		// Sessions go one by one through List, which leaves out history.
	}
	if listOptions == nil {
		listOptions = &metainternalversion.ListOptions{}
	} else {
		listOptions = listOptions.DeepCopy()
	}
	listObj, err := r.List(ctx, listOptions)
	if err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(listObj)
	if err != nil {
		return nil, err
	}
	deleted := make([]runtime.Object, 0, len(items))
	for _, it := range items {
		m, err := meta.Accessor(it)
		if err != nil {
			return nil, err
		}
		opts := options
		if opts != nil {
			opts = opts.DeepCopy()
		}
		obj, _, err := r.Delete(genericapirequest.WithNamespace(ctx, m.GetNamespace()), m.GetName(), deleteValidation, opts)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		deleted = append(deleted, obj)
	}
	out := r.NewListFunc()
	if err := meta.SetList(out, deleted); err != nil {
		return nil, err
	}
	return out, nil
}

// StatusREST is the /status subresource: updates change status only.
type StatusREST struct {
	store *genericregistry.Store
}

// NewStatusREST returns the status subresource over a copy of s whose
// update strategy (and reset fields) is status.
func NewStatusREST(s *genericregistry.Store, status interface {
	rest.RESTUpdateStrategy
	rest.ResetFieldsStrategy
}) *StatusREST {
	st := *s
	st.UpdateStrategy = status
	st.ResetFieldsStrategy = status
	return &StatusREST{store: &st}
}

var (
	_ rest.Patcher             = &StatusREST{}
	_ rest.ResetFieldsStrategy = &StatusREST{}
)

// New returns an empty object.
func (r *StatusREST) New() runtime.Object { return r.store.New() }

// Destroy does nothing: the store is shared with the main resource, which
// destroys it.
func (r *StatusREST) Destroy() {}

// Get retrieves the object; Patch needs it.
func (r *StatusREST) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	obj, err := r.store.Get(ctx, name, options)
	return obj, publicError(ctx, r.store.DefaultQualifiedResource.String(), err)
}

// Update changes the status of an object; a subresource never creates.
func (r *StatusREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc,
	updateValidation rest.ValidateObjectUpdateFunc, _ bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	obj, created, err := r.store.Update(ctx, name, objInfo, createValidation, updateValidation, false, options)
	return obj, created, publicError(ctx, r.store.DefaultQualifiedResource.String(), err)
}

// GetResetFields implements rest.ResetFieldsStrategy.
func (r *StatusREST) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return r.store.GetResetFields()
}

// ConvertToTable implements rest.TableConvertor.
func (r *StatusREST) ConvertToTable(ctx context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	return r.store.ConvertToTable(ctx, object, tableOptions)
}

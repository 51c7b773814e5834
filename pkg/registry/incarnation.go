package registry

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/klog/v2"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/store"
)

// Incarnation is one life of a namespace: deleting a namespace and creating
// it again (or creating it in another cluster over the same bucket) makes a
// new one, with a new UID.
type Incarnation struct {
	UID     types.UID
	Created metav1.Time
}

// Owns tells whether the session m was created in this incarnation. A
// session stamped by the catalog server (AnnotationNamespaceUID) belongs
// to the incarnation of that UID; one written before the stamp existed
// belongs to the incarnation that was alive when it was created.
func (inc Incarnation) Owns(m metav1.Object) bool {
	if uid, ok := m.GetAnnotations()[catalogv1alpha1.AnnotationNamespaceUID]; ok {
		return types.UID(uid) == inc.UID
	}
	created := m.GetCreationTimestamp()
	return !created.Before(&inc.Created)
}

// liveGetTimeout bounds the lookup of a namespace the informer does not
// have yet.
const liveGetTimeout = 5 * time.Second

// missTTL is how long a namespace found missing by a live lookup is
// believed missing: the sessions of a deleted namespace are filtered on
// every list, and one lookup each would flood kube-apiserver.
const missTTL = 5 * time.Second

// NamespaceGetter reads a namespace from kube-apiserver.
type NamespaceGetter interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Namespace, error)
}

// incarnationOf answers from the lister, and for a namespace the informer
// has not seen (created a moment ago) from kube-apiserver.
func (n *NamespaceLister) incarnationOf(ctx context.Context, namespace string) (Incarnation, bool, error) {
	if n.Lister != nil {
		if ns, err := n.Lister.Get(namespace); err == nil {
			return Incarnation{UID: ns.UID, Created: ns.CreationTimestamp}, true, nil
		}
	}
	if n.Client == nil {
		return Incarnation{}, false, nil
	}
	n.mu.Lock()
	missed, ok := n.missed[namespace]
	n.mu.Unlock()
	if fresh, _ := ctx.Value(freshKey{}).(bool); ok && !fresh && time.Since(missed) < missTTL {
		return Incarnation{}, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, liveGetTimeout)
	defer cancel()
	ns, err := n.Client.Get(ctx, namespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		n.mu.Lock()
		if n.missed == nil {
			n.missed = map[string]time.Time{}
		}
		now := time.Now()
		for ns, at := range n.missed {
			if now.Sub(at) >= missTTL {
				delete(n.missed, ns) // keeps the cache as small as the misses of the last few seconds
			}
		}
		n.missed[namespace] = now
		n.mu.Unlock()
		return Incarnation{}, false, nil
	case err != nil:
		return Incarnation{}, false, fmt.Errorf("read namespace %s: %w", namespace, err)
	}
	return Incarnation{UID: ns.UID, Created: ns.CreationTimestamp}, true, nil
}

// Incarnation returns the namespace's current incarnation; ok is false
// when the namespace does not exist.
func (n *NamespaceLister) Incarnation(ctx context.Context, namespace string) (Incarnation, bool, error) {
	if namespace == "" {
		return Incarnation{}, false, nil
	}
	return n.incarnationOf(ctx, namespace)
}

// sessionOwner is the check of the session resources: a session is served
// only to the incarnation of its namespace that created it.
type sessionOwner struct{ namespaces Namespaces }

// current tells whether obj is a session of its namespace as it is now.
// A namespace that cannot be looked up keeps its sessions hidden: a list
// must not show history as live while kube-apiserver is unreachable.
func (o sessionOwner) current(ctx context.Context, obj runtime.Object) bool {
	ok, err := o.check(ctx, obj)
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Namespace unknown: its sessions are not listed", "err", err)
	}
	return ok && err == nil
}

// check is current with the error of a namespace that cannot be looked
// up, for a GET to answer 503 rather than 404: a 404 tells clients such as
// the controller that the session is gone.
func (o sessionOwner) check(ctx context.Context, obj runtime.Object) (bool, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return true, nil
	}
	inc, ok, err := o.namespaces.Incarnation(ctx, m.GetNamespace())
	if err != nil {
		return false, apierrors.NewServiceUnavailable(fmt.Sprintf("namespace %s cannot be looked up: %v", m.GetNamespace(), err))
	}
	return ok && inc.Owns(m), nil
}

// stamp records on a session being created the incarnation it belongs to.
func (o sessionOwner) stamp(ctx context.Context, obj runtime.Object) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	// A namespace created a moment ago may be missing from the informer
	// and from the cache of misses: look it up.
	inc, ok, err := o.namespaces.Incarnation(context.WithValue(ctx, freshKey{}, true), m.GetNamespace())
	if err != nil {
		return apierrors.NewServiceUnavailable(err.Error())
	}
	if !ok {
		return apierrors.NewNotFound(corev1.Resource("namespaces"), m.GetNamespace())
	}
	a := m.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[catalogv1alpha1.AnnotationNamespaceUID] = string(inc.UID)
	m.SetAnnotations(a)
	return nil
}

// keepStamp carries the stamp of old over to obj: it is the server's
// record, not the user's to change.
func keepStamp(obj, old runtime.Object) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	om, err := meta.Accessor(old)
	if err != nil {
		return
	}
	a := m.GetAnnotations()
	uid, ok := om.GetAnnotations()[catalogv1alpha1.AnnotationNamespaceUID]
	switch {
	case ok:
		if a == nil {
			a = map[string]string{}
		}
		a[catalogv1alpha1.AnnotationNamespaceUID] = uid
	case a != nil:
		delete(a, catalogv1alpha1.AnnotationNamespaceUID)
	}
	m.SetAnnotations(a)
}

type archiveKey struct{}

// freshKey marks a lookup that must not trust the cache of misses.
type freshKey struct{}

// withArchive marks a delete as the replacement of a session of an earlier
// incarnation: the hook keeps its file in the history folder.
func withArchive(ctx context.Context) context.Context {
	return context.WithValue(ctx, archiveKey{}, true)
}

// maxHistoryFile bounds what is copied into the history folder; catalog
// files are limited far below this by --max-object-size.
const maxHistoryFile = 16 << 20

// ArchiveHook is the DeleteHook of the session resources. A session of an
// earlier incarnation of its namespace that a new session takes the name
// of is copied, byte for byte, to the history folder (layout.HistoryKey)
// before its file is replaced: a namespace's past restores and backups
// remain in the bucket. Other deletes pass through to next.
type ArchiveHook struct{ Next store.DeleteHook }

var _ store.DeleteHook = ArchiveHook{}

// BeforeDelete implements store.DeleteHook.
func (h ArchiveHook) BeforeDelete(ctx context.Context, b backend.Backend, loc store.Location, obj runtime.Object) (func(context.Context), error) {
	if archive, _ := ctx.Value(archiveKey{}).(bool); !archive {
		if h.Next == nil {
			return nil, nil
		}
		return h.Next.BeforeDelete(ctx, b, loc, obj)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	stamp := m.GetCreationTimestamp().UTC().Format("20060102T150405Z")
	if uid := string(m.GetUID()); len(uid) >= 8 {
		stamp += "-" + uid[:8] // two sessions of one name in one second
	}
	key, err := layout.HistoryKey(loc.Key, stamp)
	if err != nil {
		return nil, err
	}
	data, _, err := backend.GetLimit(ctx, b, loc.Key, maxHistoryFile)
	if err != nil {
		return nil, fmt.Errorf("read %s to keep it in the history: %w", loc, err)
	}
	if _, err := b.Put(ctx, key, data, backend.PutOptions{}); err != nil {
		return nil, fmt.Errorf("keep %s as %s: %w", loc, key, err)
	}
	klog.FromContext(ctx).V(1).Info("Session of an earlier namespace incarnation kept in the history",
		"namespace", m.GetNamespace(), "name", m.GetName(), "file", key)
	return nil, nil
}

// hidden tells whether obj is a session of an earlier incarnation of its
// namespace (or of one that does not exist now): kept in the bucket, never
// served.
func (r *REST) hidden(ctx context.Context, obj runtime.Object) bool {
	return r.owner != nil && !r.owner.current(ctx, obj)
}

// replaceEarlier makes room for a new session named name when the one under
// that name is from an earlier incarnation of the namespace: its file goes
// to the history folder (ArchiveHook) and the index lets it go. replaced is
// false when the name is taken by a session of this incarnation, or free.
func (r *REST) replaceEarlier(ctx context.Context, name string, dryRun []string) (replaced bool, err error) {
	cur, err := r.Store.Get(ctx, name, &metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if r.owner.current(ctx, cur) {
		return false, nil
	}
	if len(dryRun) > 0 {
		// A dry run writes nothing, so the name stays taken.
		return false, apierrors.NewConflict(r.DefaultQualifiedResource, name,
			fmt.Errorf("a session of an earlier incarnation of the namespace has this name; a real request keeps it in the history and replaces it"))
	}
	m, err := meta.Accessor(cur)
	if err != nil {
		return false, err
	}
	uid, rv := m.GetUID(), m.GetResourceVersion()
	_, _, err = r.Store.Delete(withArchive(ctx), name, rest.ValidateAllObjectFunc, &metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("replace %s of an earlier namespace incarnation: %w", name, err)
	}
	return true, nil
}

// stampedInfo stamps a session that an update creates, and keeps the stamp
// of one it changes.
type stampedInfo struct {
	rest.UpdatedObjectInfo
	owner *sessionOwner
}

func (s stampedInfo) UpdatedObject(ctx context.Context, old runtime.Object) (runtime.Object, error) {
	obj, err := s.UpdatedObjectInfo.UpdatedObject(ctx, old)
	if err != nil {
		return nil, err
	}
	om, err := meta.Accessor(old)
	if err != nil {
		return nil, err
	}
	if om.GetResourceVersion() == "" && om.GetUID() == "" {
		return obj, s.owner.stamp(ctx, obj) // created by this update
	}
	keepStamp(obj, old)
	return obj, nil
}

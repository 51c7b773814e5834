// Package storagetracker keeps the catalog server's backends in step with
// the cluster: every BackupStorage (storage.kubestash.com) and the Secret it
// names become a backend that the catalog stores serve, under the storage id
// "namespace/name". A storage that appears, changes or disappears is added
// to, reloaded in or removed from every store without a restart. A storage
// whose backend can't be built is reported (Failures, /readyz detail, a log
// line) while the others keep working.
//
// It also answers the usagePolicy question for the stores' admitters: may
// the objects of a storage be served in a namespace (Allowed)?
package storagetracker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/conditions"
	storageinformers "kubestash.dev/kubestash/pkg/generated/informers/externalversions/storage/v1alpha1"
	storagelisters "kubestash.dev/kubestash/pkg/generated/listers/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/placement"
	"kubestash.dev/kubestash/pkg/storagebackend"
)

// secretGetTimeout bounds the read of a Secret.
const secretGetTimeout = 30 * time.Second

// DefaultSecretPollInterval is how often every storage's Secret is read
// again, to notice new or deleted credentials that no BackupStorage event
// announces.
const DefaultSecretPollInterval = 10 * time.Second

// Target is a catalog store that serves the Manager's storages.
type Target interface {
	// AddStorage starts serving a storage (listing and reading its files);
	// adding one that is served already does nothing.
	AddStorage(ctx context.Context, id string) error
	// RemoveStorage stops serving a storage; nothing in it is touched.
	RemoveStorage(id string)
}

// Options are what a Manager watches.
type Options struct {
	// Client reads the Secrets that BackupStorages name.
	Client         kubernetes.Interface
	BackupStorages storageinformers.BackupStorageInformer
	Namespaces     coreinformers.NamespaceInformer
	// Build makes a backend; nil means storagebackend.Build.
	Build storagebackend.BuildFunc
	// SecretPollInterval is how often the Secrets are read again; zero
	// means DefaultSecretPollInterval.
	SecretPollInterval time.Duration
	// Logger; the zero value means klog.Background().
	Logger klog.Logger
}

// Manager keeps a set of backends, one per BackupStorage, and the stores
// that serve them, in step with the cluster. It implements the catalog
// store's Backends.
type Manager struct {
	client   kubernetes.Interface
	bsLister storagelisters.BackupStorageLister
	bsSynced cache.InformerSynced
	nsLister corelisters.NamespaceLister
	nsSynced cache.InformerSynced
	build    storagebackend.BuildFunc
	poll     time.Duration
	logger   klog.Logger
	queue    workqueue.TypedRateLimitingInterface[string]

	mu       sync.RWMutex
	served   map[string]*served
	failures map[string]*failure
	reload   sets.Set[string] // storages to re-read although unchanged
	targets  []Target
	synced   bool
}

// served is a storage whose backend is in use.
type served struct {
	backend backend.Backend
	// where identifies what the storage serves (spec.storage and
	// usagePolicy); a change means other objects, so stores re-read it.
	where string
	// creds identifies the Secret's version; a change only swaps the
	// backend, the objects stay.
	creds string
	// placeholder: the Secret could not be read yet, so nothing has been
	// read from the storage; the backend refuses every call saying why.
	placeholder bool
}

// failure is a storage whose backend could not be built.
type failure struct {
	err          error
	where, creds string
}

// New returns a Manager. Its event handlers are registered at once; start
// the informers, then call Sync and Run.
func New(o Options) (*Manager, error) {
	if o.Client == nil || o.BackupStorages == nil || o.Namespaces == nil {
		return nil, errors.New("storages: Client, BackupStorages and Namespaces are required")
	}
	m := &Manager{
		client:   o.Client,
		bsLister: o.BackupStorages.Lister(),
		bsSynced: o.BackupStorages.Informer().HasSynced,
		nsLister: o.Namespaces.Lister(),
		nsSynced: o.Namespaces.Informer().HasSynced,
		build:    o.Build,
		poll:     o.SecretPollInterval,
		logger:   o.Logger,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "backupstorages"}),
		served:   map[string]*served{},
		failures: map[string]*failure{},
		reload:   sets.New[string](),
	}
	if m.build == nil {
		m.build = storagebackend.Build
	}
	if m.poll <= 0 {
		m.poll = DefaultSecretPollInterval
	}
	if m.logger.GetSink() == nil {
		m.logger = klog.Background()
	}
	m.logger = m.logger.WithName("backupstorages")
	registerMetrics()

	if _, err := o.BackupStorages.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    m.enqueue,
		UpdateFunc: func(_, obj any) { m.enqueue(obj) },
		DeleteFunc: m.enqueue,
	}); err != nil {
		return nil, fmt.Errorf("watch BackupStorages: %w", err)
	}
	if _, err := o.Namespaces.Informer().AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if ns, ok := obj.(*corev1.Namespace); ok && !initial {
				m.namespaceChanged(nil, ns)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*corev1.Namespace)
			n, ok2 := newObj.(*corev1.Namespace)
			if ok1 && ok2 && !labels.Equals(o.Labels, n.Labels) {
				m.namespaceChanged(o, n)
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("watch Namespaces: %w", err)
	}
	return m, nil
}

// AddTarget adds a store that serves the storages. Call it before Run; the
// storages served at that moment are the store's business (a store reads
// Storages when it starts).
func (m *Manager) AddTarget(t Target) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.targets = append(m.targets, t)
}

// Backend implements the catalog store's Backends.
func (m *Manager) Backend(id string) (backend.Backend, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s, ok := m.served[id]
	if !ok {
		return nil, false
	}
	return s.backend, true
}

// Storages implements the catalog store's Backends: the storages served.
func (m *Manager) Storages() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ids := make([]string, 0, len(m.served))
	for id := range m.served {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Failures returns the storages whose backend can't be built, and why.
func (m *Manager) Failures() map[string]error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[string]error, len(m.failures))
	for id, f := range m.failures {
		out[id] = f.err
	}
	return out
}

// HasSynced reports whether Sync has built every BackupStorage once.
func (m *Manager) HasSynced() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.synced
}

// Allowed says whether the objects of storage may be served in namespace,
// by the BackupStorage's usagePolicy: Same (its own namespace, the
// default), Selector (namespaces whose labels match) or All. An error says
// why not.
func (m *Manager) Allowed(storage, namespace string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(storage)
	if err != nil {
		return fmt.Errorf("storage id %q: %w", storage, err)
	}
	bs, err := m.bsLister.BackupStorages(ns).Get(name)
	if err != nil {
		return fmt.Errorf("BackupStorage %s: %w", storage, err)
	}
	var nsObj *corev1.Namespace
	if storagev1alpha1.AllowedFrom(bs) == storagev1alpha1.NamespacesFromSelector {
		if nsObj, err = m.nsLister.Get(namespace); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("namespace %s: %w", namespace, err)
		}
	}
	return allowed(bs, namespace, nsObj)
}

// Sync waits for the informers and builds the backend of every
// BackupStorage once, so that stores created afterwards start with all of
// them. Storages that fail are reported and retried by Run.
func (m *Manager) Sync(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), m.bsSynced, m.nsSynced) {
		return fmt.Errorf("waiting for the BackupStorage and Namespace informers: %w", ctx.Err())
	}
	list, err := m.bsLister.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list BackupStorages: %w", err)
	}
	for _, bs := range list {
		id := placement.StorageID(bs.Namespace, bs.Name)
		if err := m.sync(ctx, id); err != nil {
			m.logger.Error(err, "Cannot load BackupStorage, will retry", "backupStorage", id)
			m.queue.AddRateLimited(id)
		}
	}
	m.mu.Lock()
	m.synced = true
	m.mu.Unlock()
	m.updateMetrics()
	m.logger.V(1).Info("Loaded the BackupStorages", "served", len(m.Storages()), "failed", len(m.Failures()))
	return nil
}

// Run processes changes until ctx is done, then stops.
func (m *Manager) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrashWithContext(ctx)
	for i := 0; i < workers; i++ {
		go wait.UntilWithContext(ctx, m.worker, time.Second)
	}
	// Secrets are read, never watched (see secret): read them again now
	// and then.
	go wait.UntilWithContext(ctx, m.requeueAll, m.poll)
	<-ctx.Done()
	m.Stop()
}

// Stop ends the workers.
func (m *Manager) Stop() {
	m.queue.ShutDown()
}

// requeueAll queues every BackupStorage, to read its Secret again.
func (m *Manager) requeueAll(context.Context) {
	list, err := m.bsLister.List(labels.Everything())
	if err != nil {
		return
	}
	for _, bs := range list {
		m.queue.Add(placement.StorageID(bs.Namespace, bs.Name))
	}
}

func (m *Manager) worker(ctx context.Context) {
	for {
		id, quit := m.queue.Get()
		if quit {
			return
		}
		err := m.sync(ctx, id)
		if err == nil {
			m.queue.Forget(id)
		} else {
			m.logger.Error(err, "Cannot load BackupStorage, will retry", "backupStorage", id)
			m.queue.AddRateLimited(id)
		}
		m.queue.Done(id)
		m.updateMetrics()
	}
}

func (m *Manager) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	m.queue.Add(key)
}

// namespaceChanged re-reads the storages with a Selector policy whose
// verdict on the namespace changed: files for it that were refused may now
// be served, and served ones may have to go.
func (m *Manager) namespaceChanged(old, cur *corev1.Namespace) {
	list, err := m.bsLister.List(labels.Everything())
	if err != nil {
		return
	}
	for _, bs := range list {
		if storagev1alpha1.AllowedFrom(bs) != storagev1alpha1.NamespacesFromSelector {
			continue
		}
		sel, err := selector(bs)
		if err != nil {
			continue
		}
		was := old != nil && sel.Matches(labels.Set(old.Labels))
		if was == sel.Matches(labels.Set(cur.Labels)) {
			continue
		}
		id := placement.StorageID(bs.Namespace, bs.Name)
		m.mu.Lock()
		m.reload.Insert(id)
		m.mu.Unlock()
		m.queue.Add(id)
	}
}

// sync brings one storage in step with its BackupStorage.
func (m *Manager) sync(ctx context.Context, id string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(id)
	if err != nil {
		return nil // not a key we made; nothing to retry
	}
	bs, err := m.bsLister.BackupStorages(ns).Get(name)
	if apierrors.IsNotFound(err) {
		m.mu.Lock()
		delete(m.failures, id)
		delete(m.reload, id)
		m.mu.Unlock()
		m.stopServing(id, "BackupStorage deleted")
		return nil
	}
	if err != nil {
		return err
	}

	var secret *corev1.Secret
	if sn := storagebackend.SecretName(bs); sn != "" {
		if secret, err = m.secret(ctx, ns, sn); err != nil {
			if why := m.grantNotThere(bs); apierrors.IsForbidden(err) && why != "" {
				// Expected, so not an error to log (and no "forbidden"
				// in the logs): the status update or the next
				// requeueAll brings the storage back here.
				_ = m.secretUnreadable(ctx, id, fmt.Errorf("secret %s/%s may not be read: %s", ns, sn, why))
				return nil
			}
			return m.secretUnreadable(ctx, id, err)
		}
	}
	where, creds, err := fingerprints(bs, secret)
	if err != nil {
		return err
	}

	m.mu.Lock()
	cur := m.served[id]
	fail := m.failures[id]
	reload := m.reload.Has(id)
	m.reload.Delete(id)
	m.mu.Unlock()
	switch {
	case !reload && cur != nil && !cur.placeholder && cur.where == where && cur.creds == creds:
		m.mu.Lock()
		if f := m.failures[id]; f != nil && f.where == "" {
			delete(m.failures, id) // the Secret is readable again
		}
		m.mu.Unlock()
		return nil
	case !reload && fail != nil && fail.where == where && fail.creds == creds:
		return nil // reported already; nothing changed since
	}

	b, err := m.build(bs, secret)
	if err != nil && cur != nil && cur.where == where && !reload {
		// The same place, but its credentials are gone or broken (a
		// deleted Secret): losing the objects from the API would look
		// like lost backups. Serve it as in an outage instead: the stores
		// keep what they have read, and refuse writes naming the cause.
		m.mu.Lock()
		m.failures[id] = &failure{err: err, where: where, creds: creds}
		m.served[id] = &served{backend: backend.Unavailable(strings.TrimSuffix(cur.backend.String(), backend.UnavailableSuffix), err), where: where, creds: creds}
		m.mu.Unlock()
		m.logger.Error(err, "BackupStorage credentials unusable; its catalog is served read-only from memory until they are fixed", "backupStorage", id)
		return nil
	}
	if err != nil {
		m.mu.Lock()
		m.failures[id] = &failure{err: err, where: where, creds: creds}
		m.mu.Unlock()
		m.logger.Error(err, "Cannot serve the catalog of a BackupStorage; the others are not affected", "backupStorage", id)
		// What it served before is not what it says now.
		m.stopServing(id, "backend cannot be built")
		return nil // an event (BackupStorage or Secret) brings the fix
	}

	m.mu.Lock()
	delete(m.failures, id)
	m.served[id] = &served{backend: b, where: where, creds: creds}
	targets := append([]Target(nil), m.targets...)
	m.mu.Unlock()

	if cur != nil && cur.where == where && !reload {
		// New credentials for the same place: the stores pick the new
		// backend up at their next call, the objects stay.
		m.logger.V(1).Info("BackupStorage credentials changed", "backupStorage", id)
		return nil
	}
	m.logger.V(1).Info("Serving the catalog of a BackupStorage", "backupStorage", id, "backend", b.String(), "reload", cur != nil)
	for _, t := range targets {
		if cur != nil {
			// Elsewhere or under another usagePolicy: the objects are
			// others, or admitted differently; read them again.
			t.RemoveStorage(id)
		}
		if err := t.AddStorage(ctx, id); err != nil {
			// The store keeps the storage and retries at every poll;
			// its Status reports the error meanwhile.
			m.logger.Error(err, "Backend of a BackupStorage not readable yet", "backupStorage", id)
		}
	}
	return nil
}

// stopServing removes a storage from the set and from every store.
func (m *Manager) stopServing(id, why string) {
	m.mu.Lock()
	_, ok := m.served[id]
	delete(m.served, id)
	targets := append([]Target(nil), m.targets...)
	m.mu.Unlock()
	if !ok {
		return
	}
	m.logger.V(1).Info("No longer serving the catalog of a BackupStorage", "backupStorage", id, "reason", why)
	for _, t := range targets {
		t.RemoveStorage(id)
	}
}

// secret reads Secret ns/name; nil if it does not exist. It is read with
// a GET, each time: the catalog server is granted get on each storage's
// Secret by name (the controller's Role next to the BackupStorage), and no
// list or watch of Secrets, which the controller could not grant without
// holding it cluster-wide.
func (m *Manager) secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	gctx, cancel := context.WithTimeout(ctx, secretGetTimeout)
	defer cancel()
	s, err := m.client.CoreV1().Secrets(ns).Get(gctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case apierrors.IsForbidden(err):
		return nil, fmt.Errorf("secret %s/%s may not be read yet (the controller grants it to the catalog server): %w", ns, name, err)
	case err != nil:
		return nil, fmt.Errorf("secret %s/%s could not be read: %w", ns, name, err)
	}
	return s, nil
}

// grantNotThere says why the catalog server may be refused bs's Secret
// with nothing wrong: the controller grants it, then first records in
// the status what it found, so the grant is not there yet before that; and
// it goes with a storage or namespace being deleted. Empty: the grant
// should be there.
func (m *Manager) grantNotThere(bs *storagev1alpha1.BackupStorage) string {
	id := placement.StorageID(bs.Namespace, bs.Name)
	switch {
	case bs.DeletionTimestamp != nil:
		return "BackupStorage " + id + " is being deleted"
	case conditions.Get(bs.Status.Conditions, storagev1alpha1.TypeBackendSecretFound) == nil:
		return "not yet, the controller grants it to the catalog server when it first reconciles BackupStorage " + id
	}
	if ns, err := m.nsLister.Get(bs.Namespace); err == nil && ns.Status.Phase == corev1.NamespaceTerminating {
		return "namespace " + bs.Namespace + " is being deleted"
	}
	return ""
}

// secretUnreadable handles a Secret that could not be read (forbidden, or
// the API unavailable), as an outage: a storage served already goes on
// with the credentials it has; one never read is served by a backend that
// refuses every call with the cause, so that writes say why. Either way
// the failure is reported and the storage retried.
func (m *Manager) secretUnreadable(ctx context.Context, id string, err error) error {
	m.mu.Lock()
	cur := m.served[id]
	m.failures[id] = &failure{err: err}
	var targets []Target
	if cur == nil {
		m.served[id] = &served{backend: backend.Unavailable(id, err), placeholder: true}
		targets = append(targets, m.targets...)
	}
	m.mu.Unlock()
	for _, t := range targets {
		if aerr := t.AddStorage(ctx, id); aerr != nil {
			m.logger.V(2).Info("Storage served as unavailable until its Secret can be read", "backupStorage", id, "err", aerr)
		}
	}
	return err
}

// fingerprints identify where a storage is and which credentials reach it.
// They are hashes, so that no Secret value is kept outside the backend.
func fingerprints(bs *storagev1alpha1.BackupStorage, secret *corev1.Secret) (where, creds string, err error) {
	w, err := json.Marshal(struct {
		Storage storagev1alpha1.Backend
		From    storagev1alpha1.FromNamespaces
		Policy  *storagev1alpha1.UsagePolicy
	}{bs.Spec.Storage, storagev1alpha1.AllowedFrom(bs), bs.Spec.UsagePolicy})
	if err != nil {
		return "", "", fmt.Errorf("fingerprint of BackupStorage %s/%s: %w", bs.Namespace, bs.Name, err)
	}
	sum := sha256.Sum256(w)
	where = hex.EncodeToString(sum[:])
	if secret != nil {
		creds = string(secret.UID) + "/" + secret.ResourceVersion
	}
	return where, creds, nil
}

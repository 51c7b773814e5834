package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/klog/v2"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/backend"
	corelisters "kubestash.dev/kubestash/pkg/generated/listers/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/placement"
	"kubestash.dev/kubestash/pkg/store"
)

// Catalog builds the storage of the catalog resources: one catalog store
// per resource, all over the same backends, with the locator, scanner and
// admitter of the resource. It keeps the stores it built, so that the
// server can add storages to them and ask them for readiness.
type Catalog struct {
	// Codec reads and writes the files (layout.NewFileCodec).
	Codec runtime.Codec
	// Backends are the storages served (pkg/storagetracker).
	Backends store.Backends
	// Allowed is the usagePolicy of a storage; nil allows all.
	Allowed func(storage, namespace string) error
	// Discovery finds the repositories of a storage; shared by the scans.
	Discovery *layout.Discovery
	// Template tunes every store (start from store.DefaultConfig()).
	Template store.Config
	// Version is written to metadata.yaml when the server initializes a
	// backend.
	Version string

	mu      sync.Mutex
	stores  map[string]*store.Store
	onStore []func(*store.Store)
	// recorded holds storage + "\x00" + repository dir of the
	// repositories known to be in their metadata.yaml.
	recorded sync.Map
}

// ResourcePrefix is the registry key prefix of a catalog resource.
func ResourcePrefix(resource string) string {
	return "/" + catalog.GroupName + "/" + resource
}

// RESTOptions returns the options of the generic registry of resource:
// instead of etcd, its decorator builds a catalog store whose files are of
// kind k and placed by locator; hook (may be nil) is told of deletes, and
// prepare (may be nil) runs before a new file is first written.
func (c *Catalog) RESTOptions(resource string, k layout.Kind, locator store.Locator, hook store.DeleteHook, prepare store.PrepareFunc) generic.RESTOptionsGetter {
	prefix := ResourcePrefix(resource)
	cfg := c.Template
	cfg.Codec = c.Codec
	cfg.Backends = c.Backends
	cfg.Locator = locator
	cfg.DeleteHook = hook
	cfg.Prepare = prepare
	cfg.Scanner = layout.Scanner{Kind: k, Discovery: c.Discovery}
	// A copy of a Snapshot or RestoreSession outside its Repository's folder
	// never wins over the original (duplicate resolution).
	cfg.Admitter = placement.Admitter{Prefix: prefix, Kind: k, Allowed: c.Allowed, Repos: c.Repositories()}
	cfg.Resource = resource
	gr := catalog.Resource(resource)
	return generic.RESTOptions{
		StorageConfig: &storagebackend.ConfigForResource{
			Config:        storagebackend.Config{Codec: c.Codec, EncodeVersioner: catalogv1alpha1.SchemeGroupVersion},
			GroupResource: gr,
		},
		Decorator:               store.NewStorageDecorator(cfg, func(s *store.Store) { c.add(resource, s) }),
		ResourcePrefix:          prefix,
		DeleteCollectionWorkers: 1,
		// No ownerReferences, so nothing for the garbage collector: no
		// orphan or foreground finalizers either.
		EnableGarbageCollection: false,
	}
}

// OnStore calls f with every store built, now and later.
func (c *Catalog) OnStore(f func(*store.Store)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onStore = append(c.onStore, f)
	for _, s := range c.stores {
		f(s)
	}
}

func (c *Catalog) add(resource string, s *store.Store) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stores == nil {
		c.stores = map[string]*store.Store{}
	}
	c.stores[resource] = s
	for _, f := range c.onStore {
		f(s)
	}
}

// Stores returns the stores built, by resource.
func (c *Catalog) Stores() map[string]*store.Store {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]*store.Store, len(c.stores))
	for r, s := range c.stores {
		out[r] = s
	}
	return out
}

func (c *Catalog) store(resource string) *store.Store {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stores[resource]
}

// lookupTimeout bounds a lookup in the index while placing an object.
const lookupTimeout = 10 * time.Second

// Repositories answers where a Repository lives from the index of the
// repositories store: the placement of Snapshots, BackupSessions and
// RestoreSessions.
//
// The answer is where repository.yaml actually is, not what its
// spec.storageRef says: a cluster that reads a bucket through a
// BackupStorage of another name or namespace than the cluster that wrote
// it must put new Snapshots next to the repository, in the storage it
// reads it from (the storageRef names a BackupStorage of the other cluster,
// which may not exist here, or be another bucket).
func (c *Catalog) Repositories() placement.Repositories { return repoLookup{c} }

type repoLookup struct{ c *Catalog }

func (r repoLookup) Repository(namespace, name string) (string, string, bool) {
	s := r.c.store(catalogv1alpha1.ResourcePluralRepository)
	if s == nil || namespace == "" || name == "" {
		return "", "", false
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	// Until the index is built "not found" would be a guess.
	if err := s.WaitReady(ctx); err != nil {
		return "", "", false
	}
	loc, ok := s.Location(repositoryKey(namespace, name))
	if !ok {
		return "", "", false
	}
	k, dir, _, ok := layout.Parse(loc.Key)
	if !ok || k != layout.KindRepository {
		// The scanner indexes nothing else; be safe all the same.
		return "", "", false
	}
	return loc.Storage, dir, true
}

// SnapshotRepository returns the Repository of Snapshot namespace/name, from
// the index of the snapshots store: a RestoreSession that names a Snapshot
// but not its Repository gets it from there.
func (c *Catalog) SnapshotRepository(namespace, name string) (string, bool) {
	s := c.store(catalogv1alpha1.ResourcePluralSnapshot)
	if s == nil || namespace == "" || name == "" {
		return "", false
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	var snap catalog.Snapshot
	key := ResourcePrefix(catalogv1alpha1.ResourcePluralSnapshot) + "/" + namespace + "/" + name
	if err := s.Get(ctx, key, storage.GetOptions{}, &snap); err != nil {
		return "", false
	}
	return snap.Spec.Repository, snap.Spec.Repository != ""
}

// UsableSnapshotRepository is SnapshotRepository for an object of
// namespace from: a Snapshot of another namespace counts only if the
// storage its Repository is read through lets from use it, so that one
// that exists answers like one that does not.
func (c *Catalog) UsableSnapshotRepository(from, namespace, name string) (string, bool) {
	repo, ok := c.SnapshotRepository(namespace, name)
	if !ok || from == namespace {
		return repo, ok
	}
	storage, _, ok := c.Repositories().Repository(namespace, repo)
	if !ok || (c.Allowed != nil && c.Allowed(storage, from) != nil) {
		return "", false
	}
	return repo, true
}

// repositoryKey is the registry key of a Repository.
func repositoryKey(namespace, name string) string {
	return ResourcePrefix(catalogv1alpha1.ResourcePluralRepository) + "/" + namespace + "/" + name
}

// repositoryIndexed returns where an indexed Repository is. A Repository
// that is indexed stays where its file is, whatever its spec.storageRef
// says (see Repositories): otherwise updating one that is read through a
// storage of another name would look like moving it. storageRef and path
// are immutable, so for a Repository written here both agree anyway.
func (c *Catalog) repositoryIndexed(key string) (store.Location, bool) {
	s := c.store(catalogv1alpha1.ResourcePluralRepository)
	if s == nil {
		return store.Location{}, false
	}
	return s.Location(key)
}

// repositoryRecorder makes sure the backend's metadata.yaml lists a
// Repository before its file is written: discovery reads that list, so a
// repository missing from it would vanish from the catalog at the next
// restart. It is the Repositories' store's Prepare: it runs after the
// checks of checkedLocator (tenancy among them) and the Admitter, on real
// writes of new Repositories only: nothing is written on behalf of a
// namespace the storage does not allow, nor for a dry run.
type repositoryRecorder struct {
	c *Catalog
}

func (l *repositoryRecorder) record(ctx context.Context, loc store.Location, obj runtime.Object) error {
	r, ok := obj.(*catalog.Repository)
	if !ok {
		return fmt.Errorf("want a Repository, got %T", obj)
	}
	dir, err := layout.RepoDir(r.Spec.Path)
	if err != nil {
		return err // placement checked it already
	}
	known := loc.Storage + "\x00" + dir
	if _, ok := l.c.recorded.Load(known); ok {
		return nil
	}
	b, ok := l.c.Backends.Backend(loc.Storage)
	if !ok {
		return nil // the store explains that the storage is not served
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	if _, err := layout.EnsureMeta(ctx, b, l.c.Version); err != nil {
		return backendUnavailable(loc.Storage, "initialize", err)
	}
	info := layout.RepositoryInfo{Name: r.Name, Namespace: r.Namespace, Path: r.Spec.Path}
	if err := layout.AddRepository(ctx, b, info); err != nil {
		return backendUnavailable(loc.Storage, "record the repository in "+layout.MetadataFile+" of", err)
	}
	if l.c.Discovery != nil {
		l.c.Discovery.Invalidate(loc.Storage)
	}
	l.c.recorded.Store(known, true)
	return nil
}

// UnlistRepository drops the repository at repoPath from the metadata.yaml
// of storage (backend b), for a repository whose data is gone: discovery
// then no longer looks for it, and a later Repository at the same path is
// recorded again.
func (c *Catalog) UnlistRepository(ctx context.Context, storage string, b backend.Backend, repoPath string) error {
	dir, err := layout.RepoDir(repoPath)
	if err != nil {
		return err
	}
	c.recorded.Delete(storage + "\x00" + dir)
	if err := layout.RemoveRepository(ctx, b, repoPath); err != nil && !errors.Is(err, backend.ErrNotFound) {
		return fmt.Errorf("remove repository %s from %s of %s: %w", dir, layout.MetadataFile, b, err)
	}
	if c.Discovery != nil {
		c.Discovery.Invalidate(storage)
	}
	return nil
}

// backendUnavailable is a 503 for a failed backend call; the cause goes
// to the log only, since it may name host paths.
func backendUnavailable(storage, what string, err error) error {
	klog.Background().WithName("catalog").Error(err, "Backend call failed", "storage", storage, "op", what)
	return apierrors.NewServiceUnavailable(fmt.Sprintf("cannot %s BackupStorage %s: the backend failed; the catalog server's log has the details", what, storage))
}

// BackupConfigurationSessions finds the repositories of a session in the
// BackupConfigurations of the cluster (an informer's lister).
type BackupConfigurationSessions struct {
	Lister corelisters.BackupConfigurationLister
}

var _ placement.SessionRepositories = BackupConfigurationSessions{}

// FirstRepository returns the first repository of session in the
// BackupConfiguration namespace/name: the one that keeps its
// BackupSessions.
func (s BackupConfigurationSessions) FirstRepository(namespace, name, session string) (string, error) {
	if s.Lister == nil {
		return "", errors.New("BackupConfigurations are not available")
	}
	if name == "" {
		return "", errors.New("spec.invoker.name names no BackupConfiguration")
	}
	bc, err := s.Lister.BackupConfigurations(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return "", fmt.Errorf("BackupConfiguration %s/%s not found", namespace, name)
	}
	if err != nil {
		return "", err
	}
	for _, se := range bc.Spec.Sessions {
		if se.Name != session {
			continue
		}
		if len(se.Repositories) == 0 || se.Repositories[0].Name == "" {
			return "", fmt.Errorf("session %q of BackupConfiguration %s/%s has no repository", session, namespace, name)
		}
		return se.Repositories[0].Name, nil
	}
	return "", fmt.Errorf("BackupConfiguration %s/%s has no session %q", namespace, name, session)
}

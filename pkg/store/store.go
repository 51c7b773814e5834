// Package store implements k8s.io/apiserver's storage.Interface over one or
// more backup backends (S3 buckets, local directories), so that the generic
// registry serves the backup catalog straight from the backend, as it would
// from etcd.
//
// The backend is the source of truth. The store keeps an in-memory index of
// every object of its resource in every storage it serves, built at start and
// kept current by its own writes and by a poll of the backends. Reads are
// served from the index; writes go to the backend first, with conditional
// PUT/DELETE on the file's ETag, and only then to the index. resourceVersions
// are assigned by the store (strictly increasing, near the time in
// microseconds) and never stored in files; a bounded event log serves watches
// and reads at an exact resourceVersion.
package store

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/storage"
)

// Store is a storage.Interface over backends. Create it with New, then Start
// it; requests wait until the first build of the index is done.
type Store struct {
	cfg       Config
	versioner storage.APIObjectVersioner
	objType   reflect.Type
	prefix    string // cfg.ResourcePrefix, ending in "/"

	mu       sync.RWMutex
	idx      index
	files    map[string]map[string]*fileState // storage -> file key -> state
	log      eventLog
	rv       uint64 // the current resourceVersion
	seq      uint64 // counts changes of files, see fileState.seq
	notify   chan struct{}
	storages map[string]*storageState
	gen      uint64 // last storageState.gen handed out
	size     int64  // sum of entry sizes
	sizes    bool   // EnableResourceSizeEstimation was called

	locks   keyedMutex    // one per file: writes, repairs and polls of it
	readSem chan struct{} // bounds backend reads in flight

	startOnce sync.Once
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	ready     chan struct{}
	pollMu    sync.Mutex // one poll at a time
}

// storageState is what the store knows of one storage it serves.
type storageState struct {
	gen      uint64 // tells a re-added storage from its former self
	loaded   bool   // its files were listed and read at least once
	lastErr  error
	lastSync time.Time
}

// StorageStatus reports how a storage's part of the index is doing, for
// readiness details and BackupStorage conditions.
type StorageStatus struct {
	// Loaded is true once the storage was scanned and read completely.
	Loaded bool
	// LastSync is the end of the last complete scan.
	LastSync time.Time
	// LastError is the error of the last scan, if it failed.
	LastError error
}

var _ storage.Interface = (*Store)(nil)

// New returns a store for the config. It does no I/O; Start builds the index.
func New(cfg Config) (*Store, error) {
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	registerMetrics()
	s := &Store{
		cfg:      cfg,
		objType:  reflect.TypeOf(cfg.NewFunc()),
		prefix:   cfg.ResourcePrefix,
		idx:      newIndex(),
		files:    map[string]map[string]*fileState{},
		notify:   make(chan struct{}),
		storages: map[string]*storageState{},
		readSem:  make(chan struct{}, cfg.ReadConcurrency),
		ready:    make(chan struct{}),
	}
	// Start from the clock, so that versions keep growing across restarts
	// (as long as clocks are sane): a client's version from before a restart
	// is older than anything this process can serve, and gets 410 Gone.
	s.rv = uint64(cfg.Clock.Now().UnixMicro())
	s.log = eventLog{horizon: s.rv, max: cfg.EventLogSize, maxBytes: cfg.EventLogBytes}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Start builds the index from every storage of cfg.Backends, in the
// background, then polls them every PollInterval until ctx is done or Stop
// is called. Calling it again does nothing.
func (s *Store) Start(ctx context.Context) {
	s.startOnce.Do(func() {
		s.mu.Lock()
		for _, id := range s.cfg.Backends.Storages() {
			if s.storages[id] == nil {
				s.gen++
				s.storages[id] = &storageState{gen: s.gen}
			}
		}
		s.mu.Unlock()
		stop := context.AfterFunc(ctx, s.cancel)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer stop()
			start := time.Now()
			err := s.Poll(s.ctx)
			n := s.Len()
			if err != nil {
				// The storages that failed are retried at every poll; the
				// others are served meanwhile.
				s.cfg.Logger.Error(err, "Initial build of the catalog index incomplete", "objects", n, "duration", time.Since(start))
			} else {
				s.cfg.Logger.V(2).Info("Built the catalog index", "objects", n, "duration", time.Since(start))
			}
			close(s.ready)
			if s.cfg.PollInterval <= 0 {
				return
			}
			t := time.NewTicker(s.cfg.PollInterval)
			defer t.Stop()
			for {
				select {
				case <-s.ctx.Done():
					return
				case <-t.C:
					if err := s.Poll(s.ctx); err != nil && s.ctx.Err() == nil {
						s.cfg.Logger.V(1).Info("Poll of the backends incomplete", "err", err)
					}
				}
			}
		}()
	})
}

// Stop ends polling and closes every watcher. It does not touch backends.
func (s *Store) Stop() {
	s.cancel()
	s.wg.Wait()
}

// WaitReady blocks until the first build of the index is done, or ctx ends.
func (s *Store) WaitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ready reports whether the first build of the index is done.
func (s *Store) Ready() bool {
	select {
	case <-s.ready:
		return true
	default:
		return false
	}
}

// ReadinessCheck implements storage.Interface: ready once the index was built
// (storages that failed to load are reported by Status, and retried).
func (s *Store) ReadinessCheck() error {
	if !s.Ready() {
		return fmt.Errorf("the catalog index of %s is still being built", s.cfg.Resource)
	}
	return nil
}

// Status reports each storage the store serves.
func (s *Store) Status() map[string]StorageStatus {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]StorageStatus, len(s.storages))
	for id, st := range s.storages {
		out[id] = StorageStatus{Loaded: st.loaded, LastSync: st.lastSync, LastError: st.lastErr}
	}
	return out
}

// Len is the number of indexed objects.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idx.len()
}

// Location returns where the object indexed under the registry key lives:
// its storage and file. Callers place related objects by it rather than by
// what the object says of itself: a Repository read from a bucket that
// another cluster wrote names that cluster's BackupStorage in
// spec.storageRef, while here the same files are served through a storage
// of another name. ok is false when nothing is indexed under key (or the
// index is not built yet; see WaitReady).
func (s *Store) Location(key string) (loc Location, ok bool) {
	key, err := s.prepareKey(key, false)
	if err != nil {
		return Location{}, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.idx.get(key)
	if e == nil {
		return Location{}, false
	}
	return e.loc, true
}

// waitReady holds a request until the index is built, so that nobody sees a
// half-built catalog.
func (s *Store) waitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	default:
	}
	select {
	case <-s.ready:
		return nil
	case <-s.ctx.Done():
		return apierrors.NewServiceUnavailable("the catalog store is shutting down")
	case <-ctx.Done():
		return apierrors.NewTooManyRequests(fmt.Sprintf("the catalog index of %s is still being built", s.cfg.Resource), 1)
	}
}

// Versioner implements storage.Interface.
func (s *Store) Versioner() storage.Versioner { return s.versioner }

// Stats implements storage.Interface.
func (s *Store) Stats(ctx context.Context) (storage.Stats, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := storage.Stats{ObjectCount: int64(s.idx.len())}
	if s.sizes && st.ObjectCount > 0 {
		st.EstimatedAverageObjectSizeBytes = s.size / st.ObjectCount
	}
	return st, nil
}

// EnableResourceSizeEstimation implements storage.Interface. The store knows
// the size of every file it indexes, so it needs no keys function.
func (s *Store) EnableResourceSizeEstimation(getKeys storage.KeysFunc) error {
	if getKeys == nil {
		return fmt.Errorf("KeysFunc cannot be nil")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sizes = true
	return nil
}

// RequestWatchProgress implements storage.Interface. Watchers that allow
// bookmarks get them periodically; there is nothing to request.
func (s *Store) RequestWatchProgress(ctx context.Context) error { return nil }

// GetCurrentResourceVersion implements storage.Interface.
func (s *Store) GetCurrentResourceVersion(ctx context.Context) (uint64, error) {
	if err := s.waitReady(ctx); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rv, nil
}

// CompactRevision implements storage.Interface: the newest resourceVersion
// whose history the bounded event log has dropped (0 until it first did).
// Exact reads and watches older than that get 410 Gone, as after an etcd
// compaction.
func (s *Store) CompactRevision() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return int64(s.log.compacted)
}

// prepareKey checks a registry key like etcd3 does ("lacks resource prefix",
// "invalid key"); recursive keys end in "/".
func (s *Store) prepareKey(key string, recursive bool) (string, error) {
	return storage.PrepareKey(s.prefix, key, recursive)
}

// nextRVLocked returns a new resourceVersion: the time in microseconds, or
// one more than the last if the clock is behind it.
func (s *Store) nextRVLocked() uint64 {
	rv := s.rv + 1
	if now := uint64(s.cfg.Clock.Now().UnixMicro()); now > rv {
		rv = now
	}
	s.rv = rv
	return rv
}

// signalLocked wakes every watcher up: something changed.
func (s *Store) signalLocked() {
	close(s.notify)
	s.notify = make(chan struct{})
}

// putLocked indexes e (fresh, not yet shared) under a new resourceVersion
// and logs the change.
func (s *Store) putLocked(e *entry) *event {
	e.rv = s.nextRVLocked()
	if err := s.versioner.UpdateObject(e.obj, e.rv); err != nil {
		// Only fails for objects without metadata, which New rules out.
		s.cfg.Logger.Error(err, "Cannot set resourceVersion", "key", e.key)
	}
	prev := s.idx.put(e)
	ev := &event{rv: e.rv, typ: watch.Added, key: e.key, cur: e, prev: prev, obj: e.obj, size: e.size}
	if prev != nil {
		ev.typ = watch.Modified
		ev.size += prev.size
		s.size -= prev.size
	}
	s.size += e.size
	s.appendLocked(ev)
	return ev
}

// removeLocked drops key from the index under a new resourceVersion and logs
// the change; nil if the key was not indexed.
func (s *Store) removeLocked(key string) *event {
	prev := s.idx.get(key)
	if prev == nil {
		return nil
	}
	s.idx.remove(key)
	s.size -= prev.size
	rv := s.nextRVLocked()
	obj := prev.obj.DeepCopyObject()
	_ = s.versioner.UpdateObject(obj, rv)
	// The log holds the last state twice: as prev and as the copy.
	ev := &event{rv: rv, typ: watch.Deleted, key: key, prev: prev, obj: obj, size: 2 * prev.size}
	s.appendLocked(ev)
	return ev
}

func (s *Store) appendLocked(ev *event) {
	s.log.append(ev)
	indexObjects.WithLabelValues(s.cfg.Resource).Set(float64(s.idx.len()))
	eventLogBytes.WithLabelValues(s.cfg.Resource).Set(float64(s.log.bytes))
	s.signalLocked()
}

// newObject returns an empty object of the resource's type, or of out's type.
func newLike(out runtime.Object) (runtime.Object, error) {
	v, err := conversion.EnforcePtr(out)
	if err != nil {
		return nil, fmt.Errorf("unable to convert output object to pointer: %w", err)
	}
	return reflect.New(v.Type()).Interface().(runtime.Object), nil
}

// copyInto sets *dst to a deep copy of src; both must be pointers to the
// same type.
func copyInto(dst, src runtime.Object) error {
	dv, err := conversion.EnforcePtr(dst)
	if err != nil {
		return fmt.Errorf("unable to convert output object to pointer: %w", err)
	}
	sv, err := conversion.EnforcePtr(src.DeepCopyObject())
	if err != nil {
		return err
	}
	if dv.Type() != sv.Type() {
		return fmt.Errorf("cannot copy %v into %v", sv.Type(), dv.Type())
	}
	dv.Set(sv)
	return nil
}

func sortedStrings(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
}

package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"

	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/layout"
)

// fileRead is the outcome of reading one file: gone, skipped for a reason,
// or an object to serve under key.
type fileRead struct {
	loc     Location
	missing bool
	etag    string
	size    int64
	skip    string // one of the skip* reasons, or ""
	err     error  // why it is skipped
	key     string
	obj     runtime.Object
	// canonical: see CanonicalAdmitter.
	canonical bool
	// scanSeq, for a file found missing by a listing, is the sequence at
	// which the listing started: changes recorded after it win.
	scanSeq uint64
}

// AddStorage starts serving a storage that cfg.Backends resolves: its files
// are listed and read, and every object found is announced as ADDED. If the
// listing fails the storage stays added, the error is returned and every
// poll tries again. Adding a storage that is served already does nothing.
func (s *Store) AddStorage(ctx context.Context, id string) error {
	s.mu.Lock()
	if s.storages[id] != nil {
		s.mu.Unlock()
		return nil
	}
	s.gen++
	s.storages[id] = &storageState{gen: s.gen}
	s.mu.Unlock()
	return s.syncStorage(ctx, id)
}

// RemoveStorage stops serving a storage: its objects leave the index with
// DELETED events. Nothing in the backend is touched.
func (s *Store) RemoveStorage(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.storages[id] == nil {
		return
	}
	delete(s.storages, id)
	keys := make([]string, 0, len(s.files[id]))
	for _, fs := range s.files[id] {
		if fs.key != "" {
			keys = append(keys, fs.key)
		}
	}
	sort.Strings(keys)
	for _, key := range keys {
		if e := s.idx.get(key); e != nil && e.loc.Storage == id {
			s.removeLocked(key)
		}
	}
	delete(s.files, id)
}

// Poll scans every storage once, reads what changed since the last scan and
// announces the changes. Errors of single storages are returned together
// after all were tried; their part of the index stays as it was.
func (s *Store) Poll(ctx context.Context) error {
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	start := time.Now()
	defer func() { pollDuration.WithLabelValues(s.cfg.Resource).Observe(time.Since(start).Seconds()) }()

	s.mu.RLock()
	ids := make([]string, 0, len(s.storages))
	for id := range s.storages {
		ids = append(ids, id)
	}
	s.mu.RUnlock()
	sort.Strings(ids)

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.syncStorage(ctx, id); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := s.promoteDuplicates(ctx); err != nil {
		errs = append(errs, err)
	}
	return utilerrors.NewAggregate(errs)
}

// promoteDuplicates reads again the files that were skipped because another
// file served their key, if that key is free now (its file is gone, from
// this or another storage), so that one of them is served.
func (s *Store) promoteDuplicates(ctx context.Context) error {
	type dup struct {
		loc Location
		gen uint64
	}
	var dups []dup
	s.mu.RLock()
	for id, files := range s.files {
		if s.storages[id] == nil {
			continue
		}
		for key, fs := range files {
			if fs.dupOf != "" && s.idx.get(fs.dupOf) == nil {
				dups = append(dups, dup{Location{Storage: id, Key: key}, s.storages[id].gen})
			}
		}
	}
	s.mu.RUnlock()
	sort.Slice(dups, func(i, j int) bool { return dups[i].loc.String() < dups[j].loc.String() })
	var errs []error
	for _, d := range dups {
		b, ok := s.cfg.Backends.Backend(d.loc.Storage)
		if !ok {
			continue
		}
		if err := s.syncFile(ctx, b, d.loc, d.gen); err != nil {
			errs = append(errs, err)
		}
	}
	return utilerrors.NewAggregate(errs)
}

// syncStorage brings the index up to date with one storage: list its files,
// read those whose ETag changed (or that are new), and drop those that are
// gone. The first sync of a storage is its build.
func (s *Store) syncStorage(ctx context.Context, id string) error {
	s.mu.RLock()
	st := s.storages[id]
	var gen, scanSeq uint64
	if st != nil {
		gen, scanSeq = st.gen, s.seq
	}
	s.mu.RUnlock()
	if st == nil {
		return fmt.Errorf("storage %s is not served by this store", id)
	}
	b, ok := s.cfg.Backends.Backend(id)
	if !ok {
		err := fmt.Errorf("storage %s has no backend", id)
		s.recordSync(id, gen, false, err)
		return err
	}

	objs, err := s.cfg.Scanner.Scan(ctx, id, b)
	if err != nil {
		backendErrors.WithLabelValues(s.cfg.Resource, "scan").Inc()
		err = fmt.Errorf("scan storage %s: %w", id, err)
		s.recordSync(id, gen, false, err)
		return err
	}

	// Decide under the lock what to read: new files and files whose ETag
	// changed. Those the listing says are over the size limit are skipped
	// unread.
	var toRead, gone []Location
	var tooLarge []backend.Object
	s.mu.RLock()
	files := s.files[id]
	listed := make(map[string]bool, len(objs))
	for _, o := range objs {
		listed[o.Key] = true
		if fs := files[o.Key]; fs != nil && (fs.etag == o.ETag || fs.seq > scanSeq) {
			continue
		}
		if s.cfg.MaxObjectSize > 0 && o.Size > s.cfg.MaxObjectSize {
			tooLarge = append(tooLarge, o)
			continue
		}
		toRead = append(toRead, Location{Storage: id, Key: o.Key})
	}
	for key, fs := range files {
		// A file written after the listing began is newer than the listing.
		if fs.seq <= scanSeq && !listed[key] {
			gone = append(gone, Location{Storage: id, Key: key})
		}
	}
	s.mu.RUnlock()

	for _, loc := range gone {
		unlock := s.locks.lock(loc.String())
		s.mu.Lock()
		s.applyLocked(fileRead{loc: loc, missing: true, scanSeq: scanSeq}, gen)
		s.mu.Unlock()
		unlock()
	}
	for _, o := range tooLarge {
		loc := Location{Storage: id, Key: o.Key}
		unlock := s.locks.lock(loc.String())
		s.mu.Lock()
		s.applyLocked(s.tooLarge(loc, o), gen)
		s.mu.Unlock()
		unlock()
	}

	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		readErrs []error
	)
	for _, loc := range toRead {
		select {
		case s.readSem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			err := fmt.Errorf("sync storage %s: %w", id, ctx.Err())
			s.recordSync(id, gen, false, err)
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-s.readSem }()
			if err := s.syncFile(ctx, b, loc, gen); err != nil {
				errMu.Lock()
				readErrs = append(readErrs, err)
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(readErrs) > 0 {
		// The files that could not be read are tried again next time
		// (their ETags were not recorded); the rest is served.
		err := fmt.Errorf("sync storage %s: %d of %d files unreadable, first: %w", id, len(readErrs), len(toRead), readErrs[0])
		s.recordSync(id, gen, false, err)
		return err
	}
	s.recordSync(id, gen, true, nil)
	return nil
}

// recordSync notes the outcome of a sync in the storage's status.
func (s *Store) recordSync(id string, gen uint64, complete bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.storages[id]
	if st == nil || st.gen != gen {
		return
	}
	st.lastErr = err
	if complete {
		st.loaded = true
		st.lastSync = time.Now()
	}
}

// syncFile reads one file and applies it to the index.
func (s *Store) syncFile(ctx context.Context, b backend.Backend, loc Location, gen uint64) error {
	unlock := s.locks.lock(loc.String())
	defer unlock()
	return s.syncFileLocked(ctx, b, loc, gen)
}

// syncFileLocked is syncFile for a caller that holds the file's lock.
func (s *Store) syncFileLocked(ctx context.Context, b backend.Backend, loc Location, gen uint64) error {
	// Never more than the limit + 1 byte: the listing may be older than
	// the file, or this is a repair after a conflict.
	data, o, err := backend.GetLimit(ctx, b, loc.Key, s.cfg.MaxObjectSize)
	var r fileRead
	switch {
	case errors.Is(err, backend.ErrNotFound):
		r = fileRead{loc: loc, missing: true}
	case errors.Is(err, backend.ErrTooLarge):
		r = s.tooLarge(loc, o)
	case err != nil:
		backendErrors.WithLabelValues(s.cfg.Resource, "get").Inc()
		return fmt.Errorf("read %s: %w", loc, err)
	default:
		r = s.decodeFile(loc, data, o.ETag)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applyLocked(r, gen)
	return nil
}

// decodeFile decodes and admits one file.
func (s *Store) decodeFile(loc Location, data []byte, etag string) fileRead {
	r := fileRead{loc: loc, etag: etag, size: int64(len(data))}
	obj, err := runtime.Decode(s.cfg.Codec, data)
	if err != nil {
		// The decoder's message may quote the file: keep only its kind.
		r.skip, r.err = skipDecode, errors.New(layout.DecodeErrorKind(err))
		return r
	}
	if t := reflect.TypeOf(obj); t != s.objType {
		r.skip, r.err = skipKind, fmt.Errorf("holds a %v, not a %v", t, s.objType)
		return r
	}
	key, err := s.cfg.Admitter.Admit(loc.Storage, loc.Key, obj)
	if err != nil {
		r.skip, r.err = skipAdmit, err
		var se *SkipError
		if errors.As(err, &se) && se.Reason != "" {
			r.skip = se.Reason
		}
		return r
	}
	if _, err := s.prepareKey(key, false); err != nil {
		r.skip, r.err = skipAdmit, fmt.Errorf("admitted under an unusable key: %w", err)
		return r
	}
	r.key, r.obj = key, obj
	r.canonical = s.isCanonical(loc, obj)
	return r
}

// isCanonical asks a CanonicalAdmitter whether the file at loc is where obj
// is written.
func (s *Store) isCanonical(loc Location, obj runtime.Object) bool {
	ca, ok := s.cfg.Admitter.(CanonicalAdmitter)
	return ok && ca.Canonical(loc.Storage, loc.Key, obj)
}

// preferred tells whether file a wins over file b when both claim one key:
// a canonical file over one that is not, then the first by storage id and
// file key. A total order on the files alone, so that which one is served
// never depends on the order of reads (see CanonicalAdmitter).
func preferred(a Location, aCanonical bool, b Location, bCanonical bool) bool {
	if aCanonical != bCanonical {
		return aCanonical
	}
	if a.Storage != b.Storage {
		return a.Storage < b.Storage
	}
	return a.Key < b.Key
}

// tooLarge is the skip of a file over the size limit, from its listing (or
// the stat of a limited read): nothing of it was read.
func (s *Store) tooLarge(loc Location, o backend.Object) fileRead {
	return fileRead{loc: loc, etag: o.ETag, size: o.Size, skip: skipTooLarge,
		err: fmt.Errorf("the file is %d bytes or more, over the limit of %d bytes (--max-object-size)", o.Size, s.cfg.MaxObjectSize)}
}

// applyLocked applies what was read of one file to the index, emitting the
// events a watcher needs. gen is the generation of the storage when the read
// began: results for a storage removed (or re-added) since are dropped.
func (s *Store) applyLocked(r fileRead, gen uint64) {
	st := s.storages[r.loc.Storage]
	if st == nil || st.gen != gen {
		return
	}
	files := s.files[r.loc.Storage]
	if files == nil {
		files = map[string]*fileState{}
		s.files[r.loc.Storage] = files
	}
	old := files[r.loc.Key]
	// dropOld removes what the file served before, if it still serves it.
	dropOld := func() {
		if old == nil || old.key == "" {
			return
		}
		if e := s.idx.get(old.key); e != nil && e.loc == r.loc {
			s.removeLocked(old.key)
		}
	}

	if r.missing {
		if old == nil || (r.scanSeq != 0 && old.seq > r.scanSeq) {
			return
		}
		delete(files, r.loc.Key)
		dropOld()
		return
	}

	s.seq++
	fs := &fileState{etag: r.etag, seq: s.seq}
	if r.skip != "" {
		files[r.loc.Key] = fs
		dropOld()
		var kv []any
		if r.skip == skipTooLarge {
			kv = []any{"size", r.size, "limit", s.cfg.MaxObjectSize}
		}
		s.skipped(r.loc, r.skip, r.err, kv...)
		return
	}
	if e := s.idx.get(r.key); e != nil && e.loc != r.loc {
		if !preferred(r.loc, r.canonical, e.loc, e.canonical) {
			fs.dupOf = r.key
			files[r.loc.Key] = fs
			dropOld()
			s.skipped(r.loc, skipDuplicate, fmt.Errorf("%s is served from %s, which takes precedence", r.key, e.loc))
			return
		}
		// This file takes precedence: the one served so far becomes the
		// duplicate, read again only if the key is free again.
		if lf := s.files[e.loc.Storage][e.loc.Key]; lf != nil && lf.key == r.key {
			lf.key, lf.dupOf = "", r.key
		}
		s.skipped(e.loc, skipDuplicate, fmt.Errorf("%s is served from %s, which takes precedence", r.key, r.loc))
	}
	if old != nil && old.key != r.key {
		dropOld()
	}
	fs.key = r.key
	files[r.loc.Key] = fs
	if e := s.idx.get(r.key); e != nil && e.loc == r.loc && e.etag == r.etag {
		return // unchanged
	}
	s.putLocked(&entry{key: r.key, obj: r.obj, loc: r.loc, etag: r.etag, size: r.size, canonical: r.canonical})
}

// skipped warns about a file that is not served, once per version of it (the
// ETag is recorded, so an unchanged file is not read again).
// Nothing of the file's content is logged (decode errors are reduced to
// their kind by decodeFile).
func (s *Store) skipped(loc Location, reason string, err error, kv ...any) {
	skippedFiles.WithLabelValues(s.cfg.Resource, reason).Inc()
	s.cfg.Logger.Info("Warning: skipping a file in the backend; it is left as it is",
		append([]any{"storage", loc.Storage, "file", loc.Key, "reason", reason, "err", trimErr(err)}, kv...)...)
}

// trimErr keeps decode errors of large files readable in logs.
func trimErr(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return strings.TrimSpace(msg)
}

package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/storage"

	"kubestash.dev/kubestash/pkg/backend"
)

const yamlContentType = "application/yaml"

// Create implements storage.Interface. The file is created only if absent;
// ttl does not apply to backup catalogs and is ignored.
func (s *Store) Create(ctx context.Context, key string, obj, out runtime.Object, ttl uint64) error {
	key, err := s.prepareKey(key, false)
	if err != nil {
		return err
	}
	if rv, err := s.versioner.ObjectResourceVersion(obj); err == nil && rv != 0 {
		return storage.ErrResourceVersionSetOnCreate
	}
	if err := s.versioner.PrepareObjectForStorage(obj); err != nil {
		return fmt.Errorf("PrepareObjectForStorage failed: %w", err)
	}
	if err := s.waitReady(ctx); err != nil {
		return err
	}
	data, stored, err := s.encode(obj)
	if err != nil {
		return err
	}
	if err := s.checkSize(key, data); err != nil {
		return err
	}
	loc, err := s.locate(ctx, key, stored)
	if err != nil {
		return err
	}
	if err := s.checkAdmit(key, loc, stored); err != nil {
		return err
	}
	b, err := s.backendFor(loc)
	if err != nil {
		return err
	}

	unlock := s.locks.lock(loc.String())
	defer unlock()
	if s.lookup(key) != nil {
		return storage.NewKeyExistsError(key, 0)
	}
	if err := s.prepare(ctx, key, loc, stored); err != nil {
		return err
	}
	o, err := b.Put(ctx, loc.Key, data, backend.PutOptions{IfAbsent: true, ContentType: yamlContentType})
	if errors.Is(err, backend.ErrPreconditionFailed) {
		// Another writer made the file: learn what it holds.
		if rerr := s.repairLocked(ctx, b, loc); rerr != nil {
			return s.backendError("read", key, loc, rerr)
		}
		if s.lookup(key) != nil {
			return storage.NewKeyExistsError(key, 0)
		}
		return s.unservedFileError(key, loc)
	}
	if err != nil {
		return s.backendError("create", key, loc, err)
	}
	e := &entry{key: key, obj: stored, loc: loc, etag: o.ETag, size: int64(len(data)), canonical: s.isCanonical(loc, stored)}
	if err := s.commit(key, loc, e); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return copyInto(out, e.obj)
}

// GuaranteedUpdate implements storage.Interface. The current state comes
// from the index; the write replaces the file only if its ETag is still the
// indexed one. A conflict (another writer, in this process or not) makes it
// read the current state and call tryUpdate again. The suggestion
// (cachedExistingObject) is not needed: the index is as cheap to read.
func (s *Store) GuaranteedUpdate(ctx context.Context, key string, destination runtime.Object, ignoreNotFound bool,
	preconditions *storage.Preconditions, tryUpdate storage.UpdateFunc, cachedExistingObject runtime.Object) error {
	key, err := s.prepareKey(key, false)
	if err != nil {
		return err
	}
	if _, err := conversion.EnforcePtr(destination); err != nil {
		return fmt.Errorf("unable to convert output object to pointer: %w", err)
	}
	if err := s.waitReady(ctx); err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return storage.NewTimeoutError(key, fmt.Sprintf("update did not complete: %v", err))
		}
		cur := s.lookup(key)
		var in runtime.Object
		var meta storage.ResponseMeta
		if cur == nil {
			if !ignoreNotFound {
				return storage.NewKeyNotFoundError(key, 0)
			}
			if in, err = newLike(destination); err != nil {
				return err
			}
		} else {
			in = cur.obj.DeepCopyObject()
			meta.ResourceVersion = cur.rv
		}
		if err := preconditions.Check(key, in); err != nil {
			return err
		}
		ret, _, err := tryUpdate(in, meta) // a TTL does not apply: ignored
		if err != nil {
			return err
		}
		if err := s.versioner.PrepareObjectForStorage(ret); err != nil {
			return fmt.Errorf("PrepareObjectForStorage failed: %w", err)
		}
		data, stored, err := s.encode(ret)
		if err != nil {
			return err
		}
		if err := s.checkSize(key, data); err != nil {
			return err
		}
		if cur != nil {
			same, err := s.sameAsStored(cur, data)
			if err != nil {
				return err
			}
			if same {
				return copyInto(destination, cur.obj)
			}
		}

		var loc Location
		if cur != nil {
			// The object stays where it is. A Locator that now places it
			// elsewhere is an error; one that can't place it any more (say
			// its Repository is gone) must not keep it from being updated,
			// or its finalizers could never be removed.
			loc = cur.loc
			if l, lerr := s.cfg.Locator.Locate(ctx, key, stored); lerr == nil && l != loc {
				return apierrors.NewBadRequest(fmt.Sprintf("cannot update %s: it is stored at %s and the update would move it to %s", key, loc, l))
			}
		} else {
			if loc, err = s.locate(ctx, key, stored); err != nil {
				return err
			}
			if err := s.checkAdmit(key, loc, stored); err != nil {
				return err
			}
			if err := s.prepare(ctx, key, loc, stored); err != nil {
				return err
			}
		}
		b, err := s.backendFor(loc)
		if err != nil {
			return err
		}

		done, err := func() (bool, error) {
			unlock := s.locks.lock(loc.String())
			defer unlock()
			if s.lookup(key) != cur {
				return false, nil // changed since read: update the new state
			}
			opts := backend.PutOptions{ContentType: yamlContentType}
			if cur == nil {
				opts.IfAbsent = true
			} else {
				opts.IfMatch = cur.etag
			}
			o, err := b.Put(ctx, loc.Key, data, opts)
			if errors.Is(err, backend.ErrPreconditionFailed) {
				return false, s.afterConflict(ctx, b, key, loc, cur)
			}
			if err != nil {
				return false, s.backendError("update", key, loc, err)
			}
			e := &entry{key: key, obj: stored, loc: loc, etag: o.ETag, size: int64(len(data)), canonical: s.isCanonical(loc, stored)}
			if err := s.commit(key, loc, e); err != nil {
				return false, err
			}
			return true, copyInto(destination, e.obj)
		}()
		if done || err != nil {
			return err
		}
	}
}

// Delete implements storage.Interface. The file is deleted only if its ETag
// is still the indexed one; see GuaranteedUpdate for conflicts.
func (s *Store) Delete(ctx context.Context, key string, out runtime.Object, preconditions *storage.Preconditions,
	validateDeletion storage.ValidateObjectFunc, cachedExistingObject runtime.Object, opts storage.DeleteOptions) error {
	key, err := s.prepareKey(key, false)
	if err != nil {
		return err
	}
	if _, err := conversion.EnforcePtr(out); err != nil {
		return fmt.Errorf("unable to convert output object to pointer: %w", err)
	}
	if err := s.waitReady(ctx); err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return storage.NewTimeoutError(key, fmt.Sprintf("delete did not complete: %v", err))
		}
		cur := s.lookup(key)
		if cur == nil {
			return storage.NewKeyNotFoundError(key, 0)
		}
		if opts.ExpectTransformOrDecodeError {
			// Files that do not decode are never indexed (they are skipped
			// and left alone), so whatever is indexed decodes.
			return storage.NewInvalidObjError(key, "unsafe deletion is not allowed because the object is decodable from storage")
		}
		obj := cur.obj.DeepCopyObject()
		if err := preconditions.Check(key, obj); err != nil {
			return err
		}
		if err := validateDeletion(ctx, obj); err != nil {
			return err
		}
		b, err := s.backendFor(cur.loc)
		if err != nil {
			return err
		}
		done, err := func() (bool, error) {
			unlock := s.locks.lock(cur.loc.String())
			defer unlock()
			if s.lookup(key) != cur {
				return false, nil
			}
			undo, err := s.beforeDelete(ctx, b, key, cur.loc, obj)
			if err != nil {
				return false, err
			}
			err = b.Delete(ctx, cur.loc.Key, backend.DeleteOptions{IfMatch: cur.etag})
			if err != nil {
				undo()
			}
			if errors.Is(err, backend.ErrPreconditionFailed) || errors.Is(err, backend.ErrNotFound) {
				return false, s.afterConflict(ctx, b, key, cur.loc, cur)
			}
			if err != nil {
				return false, s.backendError("delete", key, cur.loc, err)
			}
			s.mu.Lock()
			ev, err := s.commitLocked(key, cur.loc, nil)
			s.mu.Unlock()
			if err != nil {
				return false, err
			}
			if ev == nil { // dropped meanwhile with its storage
				return false, storage.NewKeyNotFoundError(key, 0)
			}
			return true, copyInto(out, ev.obj)
		}()
		if done || err != nil {
			return err
		}
	}
}

// undoTimeout bounds taking back what a DeleteHook did, which happens even
// when the request's context is done.
const undoTimeout = 30 * time.Second

// beforeDelete calls the DeleteHook, if any, and returns what takes back
// its work (never nil).
func (s *Store) beforeDelete(ctx context.Context, b backend.Backend, key string, loc Location, obj runtime.Object) (func(), error) {
	if s.cfg.DeleteHook == nil {
		return func() {}, nil
	}
	undo, err := s.cfg.DeleteHook.BeforeDelete(ctx, b, loc, obj)
	if err != nil {
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			return nil, err
		}
		backendErrors.WithLabelValues(s.cfg.Resource, "before-delete").Inc()
		if errors.Is(err, backend.ErrUnavailable) {
			return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("cannot delete %s: the backend of storage %s is unavailable, nothing was deleted: %v", key, loc.Storage, err))
		}
		return nil, apierrors.NewInternalError(fmt.Errorf("cannot delete %s from %s: %w", key, loc, err))
	}
	if undo == nil {
		return func() {}, nil
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
		defer cancel()
		undo(uctx)
	}, nil
}

// afterConflict handles a failed precondition: the file changed behind the
// index. It reads the file into the index (with the events the change
// deserves) so that the caller's next attempt works on the current state.
func (s *Store) afterConflict(ctx context.Context, b backend.Backend, key string, loc Location, cur *entry) error {
	if err := s.repairLocked(ctx, b, loc); err != nil {
		return s.backendError("read", key, loc, err)
	}
	if s.lookup(key) == cur {
		// The file differs from the index but reads back as the indexed
		// state (or as nothing servable): retrying would not help.
		if cur == nil {
			return s.unservedFileError(key, loc)
		}
		return storage.NewResourceVersionConflictsError(key, 0)
	}
	return nil
}

// repairLocked reads one file into the index; the caller holds its lock.
func (s *Store) repairLocked(ctx context.Context, b backend.Backend, loc Location) error {
	s.mu.RLock()
	st := s.storages[loc.Storage]
	s.mu.RUnlock()
	if st == nil {
		return fmt.Errorf("storage %s is not served", loc.Storage)
	}
	return s.syncFileLocked(ctx, b, loc, st.gen)
}

// commit records a successful write (e nil: a delete) of key at loc.
func (s *Store) commit(key string, loc Location, e *entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.commitLocked(key, loc, e)
	return err
}

func (s *Store) commitLocked(key string, loc Location, e *entry) (*event, error) {
	if s.storages[loc.Storage] == nil {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("storage %s stopped being served while %s was written; the backend may hold the change", loc.Storage, key))
	}
	files := s.files[loc.Storage]
	if files == nil {
		files = map[string]*fileState{}
		s.files[loc.Storage] = files
	}
	s.seq++
	if e == nil {
		delete(files, loc.Key)
		return s.removeLocked(key), nil
	}
	files[loc.Key] = &fileState{etag: e.etag, key: key, seq: s.seq}
	return s.putLocked(e), nil
}

func (s *Store) lookup(key string) *entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idx.get(key)
}

// encode returns the file content of obj (whose resourceVersion is cleared)
// and the object as it will be read back from it, which is what the index
// holds: a restart must find the same.
func (s *Store) encode(obj runtime.Object) ([]byte, runtime.Object, error) {
	data, err := runtime.Encode(s.cfg.Codec, obj)
	if err != nil {
		return nil, nil, err
	}
	stored, err := runtime.Decode(s.cfg.Codec, data)
	if err != nil {
		return nil, nil, storage.NewInternalError(fmt.Errorf("the encoded object does not decode: %w", err))
	}
	if t := reflect.TypeOf(stored); t != s.objType {
		return nil, nil, storage.NewInternalError(fmt.Errorf("the encoded object decodes to a %v, not a %v", t, s.objType))
	}
	return data, stored, nil
}

// checkSize refuses with 413 an object whose file would be over the
// limit: it would be skipped when read back (after a restart, by another
// replica), and every version of it would weigh on the event log.
func (s *Store) checkSize(key string, data []byte) error {
	if max := s.cfg.MaxObjectSize; max > 0 && int64(len(data)) > max {
		return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf(
			"%s would be a file of %d bytes in the backend; the catalog server's limit (--max-object-size) is %d bytes", key, len(data), max))
	}
	return nil
}

// sameAsStored tells whether data is what the store would write for cur, in
// which case an update is a no-op (no write, no new resourceVersion).
func (s *Store) sameAsStored(cur *entry, data []byte) (bool, error) {
	obj := cur.obj.DeepCopyObject()
	if err := s.versioner.PrepareObjectForStorage(obj); err != nil {
		return false, err
	}
	old, err := runtime.Encode(s.cfg.Codec, obj)
	if err != nil {
		return false, err
	}
	return bytes.Equal(old, data), nil
}

// prepare runs Config.Prepare before a new file is first written.
func (s *Store) prepare(ctx context.Context, key string, loc Location, obj runtime.Object) error {
	if s.cfg.Prepare == nil {
		return nil
	}
	if err := s.cfg.Prepare(ctx, loc, obj); err != nil {
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			return err
		}
		return apierrors.NewInternalError(fmt.Errorf("prepare %s for %s: %w", loc, key, err))
	}
	return nil
}

// locate asks the Locator where key goes; its errors are the client's.
func (s *Store) locate(ctx context.Context, key string, obj runtime.Object) (Location, error) {
	loc, err := s.cfg.Locator.Locate(ctx, key, obj)
	if err != nil {
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			return Location{}, err
		}
		return Location{}, apierrors.NewBadRequest(fmt.Sprintf("cannot store %s: %v", key, err))
	}
	if loc.Storage == "" {
		return Location{}, apierrors.NewInternalError(fmt.Errorf("the locator gave no storage for %s", key))
	}
	if _, err := backend.CleanKey(loc.Key); err != nil {
		return Location{}, apierrors.NewInternalError(fmt.Errorf("the locator gave an unusable file for %s: %w", key, err))
	}
	return loc, nil
}

// checkAdmit refuses to create a file that would not be served back under
// the same key (after a restart, or by another replica).
func (s *Store) checkAdmit(key string, loc Location, obj runtime.Object) error {
	got, err := s.cfg.Admitter.Admit(loc.Storage, loc.Key, obj)
	if err != nil {
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			return err
		}
		return apierrors.NewBadRequest(fmt.Sprintf("cannot store %s in %s: %v", key, loc.Storage, err))
	}
	if got != key {
		return apierrors.NewBadRequest(fmt.Sprintf("cannot store %s at %s: it would be read back as %s", key, loc, got))
	}
	return nil
}

// backendFor returns the backend of a storage that this store serves.
func (s *Store) backendFor(loc Location) (backend.Backend, error) {
	s.mu.RLock()
	served := s.storages[loc.Storage] != nil
	s.mu.RUnlock()
	if served {
		if b, ok := s.cfg.Backends.Backend(loc.Storage); ok {
			return b, nil
		}
	}
	return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("storage %s is not available to the catalog (is it Ready?)", loc.Storage))
}

// backendError turns a failed backend call into the error the client gets:
// 503 when the backend is unavailable, so that it is clear nothing was
// changed and a retry may work.
func (s *Store) backendError(op, key string, loc Location, err error) error {
	backendErrors.WithLabelValues(s.cfg.Resource, op).Inc()
	s.cfg.Logger.V(2).Info("Backend call failed", "op", op, "key", key, "location", loc, "err", err)
	switch {
	case errors.Is(err, backend.ErrUnavailable):
		return apierrors.NewServiceUnavailable(fmt.Sprintf("cannot %s %s: the backend of storage %s is unavailable, nothing was changed: %v", op, key, loc.Storage, err))
	case errors.Is(err, backend.ErrForbidden):
		return apierrors.NewInternalError(fmt.Errorf("cannot %s %s: the backend of storage %s denied access: %w", op, key, loc.Storage, err))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return storage.NewTimeoutError(key, fmt.Sprintf("%s in storage %s did not complete: %v", op, loc.Storage, err))
	default:
		return apierrors.NewInternalError(fmt.Errorf("cannot %s %s in storage %s: %w", op, key, loc.Storage, err))
	}
}

// unservedFileError is the conflict with a file that exists but is not
// served (corrupt, foreign or refused): the store never overwrites it.
func (s *Store) unservedFileError(key string, loc Location) error {
	return apierrors.NewConflict(schema.GroupResource{Resource: s.cfg.Resource}, key,
		fmt.Errorf("the file %s exists in the backend but cannot be served (see the store's warnings); fix or remove it", loc))
}

package store

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"

	"kubestash.dev/kubestash/pkg/backend"
)

// Location is where one object lives: a storage (BackupStorage "namespace/name", or any id) and a key in its backend.
type Location struct{ Storage, Key string }

// String is "storage:key", for logs and messages.
func (l Location) String() string { return l.Storage + ":" + l.Key }

// Backends resolves a storage id to its backend; storages come and go at run time.
type Backends interface {
	Backend(storage string) (backend.Backend, bool)
	Storages() []string
}

// Locator maps an object about to be written under a registry key to its file. An error (e.g. the Snapshot's Repository is unknown) rejects the write with a clear message; wrap it so the registry returns a 4xx (apierrors.NewBadRequest / NewInvalid-like; use storage.NewInvalidObjError or apierrors as fits) naming why.
//
// The store returns an error that already is an API status (apierrors.APIStatus)
// unchanged, so a Locator can choose the code itself (e.g. 503 when the storage
// it needs is not ready); any other error becomes a 400 Bad Request naming the
// key and the cause.
//
// Locate has no side effects: what must exist in the backend before a new
// file is written is Config.Prepare's.
type Locator interface {
	Locate(ctx context.Context, key string, obj runtime.Object) (Location, error)
}

// PrepareFunc runs before the first write of a new object's file at loc,
// after Locate and the Admitter: what must be in the backend before the
// file is (a Repository's entry in metadata.yaml). Its error fails the
// create; an API status error is returned unchanged.
type PrepareFunc func(ctx context.Context, loc Location, obj runtime.Object) error

// Scanner enumerates the files of this resource in one storage, cheaply (list calls only, no reads), for the initial build and for every poll.
type Scanner interface {
	Scan(ctx context.Context, storage string, b backend.Backend) ([]backend.Object, error)
}

// Admitter decides if a decoded object read from a backend may be served (e.g. tenancy: namespace allowed by the storage's usagePolicy), and returns the registry key to serve it under. Returning an error skips the file with a warning (counted in a metric); never delete anything.
//
// The store also asks the Admitter about every object it creates, before
// writing it: a file that would not be served back under the same key after a
// restart is refused with a 400 instead of being written.
type Admitter interface {
	Admit(storage string, fileKey string, obj runtime.Object) (registryKey string, err error)
}

// DeleteHook is told of a delete before the store removes the file, with
// the object as it is indexed (the state the delete was checked against),
// its location and backend, while the store holds the file's lock. It is
// for what must be recorded durably before an object goes, such as a
// Snapshot's restic data to forget. An error stops the delete, nothing
// removed: an error that is an API status reaches the client unchanged,
// any other is a 500.
//
// undo, if not nil, is called when the file could not be removed after
// all (it changed meanwhile, the backend failed), so that the hook can take
// back what it did; the store then retries with the current state, calling
// the hook again. Dry runs and deletes that only set a deletionTimestamp
// (finalizers) never reach the hook.
type DeleteHook interface {
	BeforeDelete(ctx context.Context, b backend.Backend, loc Location, obj runtime.Object) (undo func(context.Context), err error)
}

// CanonicalAdmitter is an Admitter that also tells whether a file is where
// the object it holds is written (its canonical location: for example a
// Snapshot's file named after it). When two files claim one registry key,
// a canonical one wins over one that is not, and among equals the first by
// storage id, then by file key. The choice depends only on the files, never
// on the order they were read in, so it is the same after every restart
// and in every replica; the loser is skipped as a duplicate (counted in
// kubestash_catalog_skipped_files_total{reason="duplicate"}).
type CanonicalAdmitter interface {
	Admitter
	Canonical(storage, fileKey string, obj runtime.Object) bool
}

// SkipError is an Admitter's refusal with its own reason label for
// kubestash_catalog_skipped_files_total (instead of "admit").
type SkipError struct {
	Reason string
	Err    error
}

func (e *SkipError) Error() string { return e.Err.Error() }
func (e *SkipError) Unwrap() error { return e.Err }

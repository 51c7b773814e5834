// Package backend reads and writes the catalog's small files (YAML objects)
// in a backup backend: an S3 bucket or a local/NFS directory. Keys are
// relative to the BackupStorage's prefix (or directory) and use "/".
//
// Writes are conditional so that two writers never lose an update: Put can
// require that the key is absent (create) or that its ETag still matches
// (replace). Errors are typed; callers tell them apart with errors.Is.
package backend

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
)

// Errors a Backend returns, wrapped in *Error.
var (
	ErrNotFound           = errors.New("not found")
	ErrPreconditionFailed = errors.New("precondition failed")
	ErrUnavailable        = errors.New("backend unavailable")
	ErrForbidden          = errors.New("access denied")
	ErrInvalidKey         = errors.New("invalid key")
	// ErrTooLarge: the object is larger than the reader accepts (GetLimit).
	ErrTooLarge = errors.New("object too large")
	// ErrNoSuchBucket: the bucket itself does not exist. It is also
	// ErrUnavailable (errors.Is), so that the catalog serves such a storage
	// as it serves one in an outage, while messages can say what is wrong.
	ErrNoSuchBucket = errors.New("bucket does not exist")
)

// Error says which operation on which key failed, and why.
type Error struct {
	Op   string // get, put, delete, list, stat
	Key  string
	Kind error // one of the Err* values above, or nil when unclassified
	Err  error // the cause, as the backend reported it
}

func (e *Error) Error() string {
	switch {
	case e.Kind != nil && e.Err != nil && e.Err != e.Kind:
		return fmt.Sprintf("%s %s: %v: %v", e.Op, e.Key, e.Kind, e.Err)
	case e.Kind != nil:
		return fmt.Sprintf("%s %s: %v", e.Op, e.Key, e.Kind)
	default:
		return fmt.Sprintf("%s %s: %v", e.Op, e.Key, e.Err)
	}
}

// Is makes errors.Is(err, ErrNotFound) and friends work.
func (e *Error) Is(target error) bool {
	return e.Kind != nil && (target == e.Kind || e.Kind == ErrNoSuchBucket && target == ErrUnavailable)
}

func (e *Error) Unwrap() error { return e.Err }

// Object describes one stored object.
type Object struct {
	Key          string
	ETag         string
	Size         int64
	LastModified time.Time
}

// PutOptions are the preconditions of a write. At most one may be set.
type PutOptions struct {
	// IfAbsent creates the object only if the key does not exist.
	IfAbsent bool
	// IfMatch replaces the object only if its current ETag is this one.
	IfMatch string
	// ContentType is recorded with the object where the backend can.
	ContentType string
}

// DeleteOptions are the preconditions of a delete.
type DeleteOptions struct {
	// IfMatch deletes only if the current ETag is this one.
	IfMatch string
}

// ListOptions say what List returns.
type ListOptions struct {
	// Delimiter "/" returns the objects directly under the prefix and the
	// next level of "directories" as CommonPrefixes; empty lists everything
	// under the prefix.
	Delimiter string
}

// ListResult holds the objects and, with a delimiter, the common prefixes.
type ListResult struct {
	Objects        []Object
	CommonPrefixes []string
}

// Backend is object-store access under one BackupStorage's prefix.
type Backend interface {
	// Get returns the object's content and its metadata (with the ETag).
	Get(ctx context.Context, key string) ([]byte, Object, error)
	// Stat returns the object's metadata.
	Stat(ctx context.Context, key string) (Object, error)
	// Put writes the whole object under the preconditions; the write is
	// atomic: a reader sees the old or the new content, never a part.
	Put(ctx context.Context, key string, data []byte, opts PutOptions) (Object, error)
	// Delete removes the object. A missing key is ErrNotFound.
	Delete(ctx context.Context, key string, opts DeleteOptions) error
	// List lists keys under prefix, sorted. A prefix ending in "/" is a
	// directory; keys returned are full keys relative to the backend root.
	List(ctx context.Context, prefix string, opts ListOptions) (ListResult, error)
	// String names the backend for logs and messages, without secrets.
	String() string
}

// BucketMaker is a Backend whose container (an S3 bucket) may be missing
// and can be created. Upstream KubeStash creates the bucket a BackupStorage
// names when it does not exist; the controller does the same through this.
type BucketMaker interface {
	// EnsureBucket creates the bucket unless it exists, and says whether
	// it did. A bucket that is missing and cannot be created is an
	// *Error of kind ErrNoSuchBucket whose cause says why.
	EnsureBucket(ctx context.Context) (created bool, err error)
}

// LimitedGetter is a Backend that reads an object only up to a size: one
// over it is refused with ErrTooLarge having read at most max+1 bytes.
// Anyone who can write into a bucket can plant a huge file; a reader that
// keeps what it reads must not take it whole.
type LimitedGetter interface {
	GetLimit(ctx context.Context, key string, max int64) ([]byte, Object, error)
}

// GetLimit reads key if it holds at most max bytes (max < 0: no limit). A
// larger object is an *Error of kind ErrTooLarge whose Object carries the
// size seen; no more than max+1 bytes of it are read. Backends without
// LimitedGetter are asked for the size first (Stat), then read, and what
// they return is checked again.
func GetLimit(ctx context.Context, b Backend, key string, max int64) ([]byte, Object, error) {
	if max < 0 {
		return b.Get(ctx, key)
	}
	if lg, ok := b.(LimitedGetter); ok {
		return lg.GetLimit(ctx, key, max)
	}
	o, err := b.Stat(ctx, key)
	if err != nil {
		return nil, o, err
	}
	if o.Size > max {
		return nil, o, tooLarge("get", o.Key, o.Size, max)
	}
	data, o, err := b.Get(ctx, key)
	if err == nil && int64(len(data)) > max {
		return nil, o, tooLarge("get", o.Key, int64(len(data)), max)
	}
	return data, o, err
}

func tooLarge(op, key string, size, max int64) error {
	return &Error{Op: op, Key: key, Kind: ErrTooLarge, Err: fmt.Errorf("%d bytes or more, the limit is %d", size, max)}
}

// CleanKey validates a key and returns it in canonical form: relative,
// "/"-separated, no "." or ".." elements, no leading or trailing slash.
func CleanKey(key string) (string, error) {
	k := strings.Trim(key, "/")
	if k == "" {
		return "", &Error{Op: "check", Key: key, Kind: ErrInvalidKey, Err: errors.New("empty key")}
	}
	for _, el := range strings.Split(k, "/") {
		if el == "" || el == "." || el == ".." {
			return "", &Error{Op: "check", Key: key, Kind: ErrInvalidKey, Err: errors.New(`empty, "." or ".." path element`)}
		}
	}
	return path.Clean(k), nil
}

// cleanPrefix is CleanKey for list prefixes: empty is the root, and a
// trailing "/" is kept because it makes the prefix a directory.
func cleanPrefix(prefix string) (string, error) {
	if strings.Trim(prefix, "/") == "" {
		return "", nil
	}
	k, err := CleanKey(prefix)
	if err != nil {
		return "", err
	}
	if strings.HasSuffix(prefix, "/") {
		k += "/"
	}
	return k, nil
}

func checkPutOptions(key string, o PutOptions) error {
	if o.IfAbsent && o.IfMatch != "" {
		return &Error{Op: "put", Key: key, Kind: ErrInvalidKey, Err: errors.New("IfAbsent and IfMatch are exclusive")}
	}
	return nil
}

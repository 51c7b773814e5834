package backend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// tmpPrefix marks files being written; List never shows them.
const tmpPrefix = ".kubestash-tmp-"

// lockName is the file whose flock serialises conditional writes between
// processes sharing the directory (replicas on one NFS export, a person).
const lockName = ".kubestash.lock"

// Local is a Backend over a directory: a hostPath, an NFS mount or a PVC
// mounted into the server's pod.
type Local struct {
	root string

	mu sync.Mutex // serialises writers of this process; flock the others
	// etags caches content hashes by file identity, so that listing ten
	// thousand catalog files does not read them all on every poll.
	etagMu sync.Mutex
	etags  map[string]etagEntry
}

type etagEntry struct {
	size, mtime int64
	ino         uint64
	etag        string
}

// NewLocal returns a Backend rooted at dir, which must exist.
func NewLocal(dir string) (*Local, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, &Error{Op: "open", Key: dir, Kind: classifyFS(err), Err: err}
	}
	if !fi.IsDir() {
		return nil, &Error{Op: "open", Key: dir, Kind: ErrInvalidKey, Err: errors.New("not a directory")}
	}
	return &Local{root: filepath.Clean(dir), etags: map[string]etagEntry{}}, nil
}

func (l *Local) String() string { return "local:" + l.root }

func (l *Local) path(key string) string { return filepath.Join(l.root, filepath.FromSlash(key)) }

func contentETag(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func (l *Local) Get(ctx context.Context, key string) ([]byte, Object, error) {
	k, err := CleanKey(key)
	if err != nil {
		return nil, Object{}, err
	}
	p := l.path(k)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, Object{}, &Error{Op: "get", Key: k, Kind: classifyFS(err), Err: err}
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, Object{}, &Error{Op: "get", Key: k, Kind: classifyFS(err), Err: err}
	}
	return b, Object{Key: k, ETag: contentETag(b), Size: int64(len(b)), LastModified: fi.ModTime()}, nil
}

func (l *Local) Stat(ctx context.Context, key string) (Object, error) {
	k, err := CleanKey(key)
	if err != nil {
		return Object{}, err
	}
	return l.stat("stat", k)
}

func (l *Local) stat(op, k string) (Object, error) {
	p := l.path(k)
	fi, err := os.Stat(p)
	if err != nil {
		return Object{}, &Error{Op: op, Key: k, Kind: classifyFS(err), Err: err}
	}
	if fi.IsDir() {
		return Object{}, &Error{Op: op, Key: k, Kind: ErrNotFound, Err: errors.New("is a directory")}
	}
	etag, err := l.etag(p, fi)
	if err != nil {
		return Object{}, &Error{Op: op, Key: k, Kind: classifyFS(err), Err: err}
	}
	return Object{Key: k, ETag: etag, Size: fi.Size(), LastModified: fi.ModTime()}, nil
}

func (l *Local) etag(p string, fi fs.FileInfo) (string, error) {
	e := etagEntry{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.ino = st.Ino
	}
	l.etagMu.Lock()
	c, ok := l.etags[p]
	l.etagMu.Unlock()
	if ok && c.size == e.size && c.mtime == e.mtime && c.ino == e.ino {
		return c.etag, nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	e.etag = contentETag(b)
	l.etagMu.Lock()
	l.etags[p] = e
	l.etagMu.Unlock()
	return e.etag, nil
}

// lock takes the process mutex and an exclusive flock on the lock file.
func (l *Local) lock() (unlock func(), err error) {
	l.mu.Lock()
	f, err := os.OpenFile(filepath.Join(l.root, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		l.mu.Unlock()
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		l.mu.Unlock()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		l.mu.Unlock()
	}, nil
}

// check compares the current state of k with the preconditions.
func (l *Local) check(op, k string, ifAbsent bool, ifMatch string) error {
	if !ifAbsent && ifMatch == "" {
		return nil
	}
	cur, err := l.stat(op, k)
	switch {
	case errors.Is(err, ErrNotFound):
		if ifMatch != "" {
			return &Error{Op: op, Key: k, Kind: ErrPreconditionFailed, Err: errors.New("object does not exist")}
		}
		return nil
	case err != nil:
		return err
	case ifAbsent:
		return &Error{Op: op, Key: k, Kind: ErrPreconditionFailed, Err: errors.New("object already exists")}
	case ifMatch != cur.ETag:
		return &Error{Op: op, Key: k, Kind: ErrPreconditionFailed, Err: fmt.Errorf("etag is %s, not %s", cur.ETag, ifMatch)}
	}
	return nil
}

func (l *Local) Put(ctx context.Context, key string, data []byte, o PutOptions) (Object, error) {
	k, err := CleanKey(key)
	if err != nil {
		return Object{}, err
	}
	if err := checkPutOptions(k, o); err != nil {
		return Object{}, err
	}
	unlock, err := l.lock()
	if err != nil {
		return Object{}, &Error{Op: "put", Key: k, Kind: classifyFS(err), Err: err}
	}
	defer unlock()
	if err := l.check("put", k, o.IfAbsent, o.IfMatch); err != nil {
		return Object{}, err
	}
	p := l.path(k)
	if err := writeAtomic(p, data); err != nil {
		return Object{}, &Error{Op: "put", Key: k, Kind: classifyFS(err), Err: err}
	}
	return l.stat("put", k)
}

// writeAtomic writes to a temporary file beside p, syncs it and renames it
// over p, then syncs the directory: a crash leaves the old or the new file.
func writeAtomic(p string, data []byte) error {
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (l *Local) Delete(ctx context.Context, key string, o DeleteOptions) error {
	k, err := CleanKey(key)
	if err != nil {
		return err
	}
	unlock, err := l.lock()
	if err != nil {
		return &Error{Op: "delete", Key: k, Kind: classifyFS(err), Err: err}
	}
	defer unlock()
	if _, err := l.stat("delete", k); err != nil {
		return err
	}
	if err := l.check("delete", k, false, o.IfMatch); err != nil {
		return err
	}
	p := l.path(k)
	if err := os.Remove(p); err != nil {
		return &Error{Op: "delete", Key: k, Kind: classifyFS(err), Err: err}
	}
	l.etagMu.Lock()
	delete(l.etags, p)
	l.etagMu.Unlock()
	// An object store has no empty directories; remove the ones this left
	// so that List looks the same on both kinds of backend.
	dir := filepath.Dir(p)
	for ; dir != l.root && strings.HasPrefix(dir, l.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return syncDir(dir)
}

func (l *Local) List(ctx context.Context, prefix string, o ListOptions) (ListResult, error) {
	pre, err := cleanPrefix(prefix)
	if err != nil {
		return ListResult{}, err
	}
	// The directory to read is the prefix up to its last "/"; the rest
	// filters names in it, as an object store's prefix does.
	dirKey := ""
	if i := strings.LastIndexByte(pre, '/'); i >= 0 {
		dirKey = pre[:i]
	}
	dir := l.root
	if dirKey != "" {
		dir = l.path(dirKey)
	}
	var res ListResult
	join := func(name string) string {
		if dirKey == "" {
			return name
		}
		return dirKey + "/" + name
	}
	if o.Delimiter == "/" {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return res, nil
		}
		if err != nil {
			return res, &Error{Op: "list", Key: pre, Kind: classifyFS(err), Err: err}
		}
		for _, e := range entries {
			k := join(e.Name())
			if hidden(e.Name()) || !strings.HasPrefix(k, pre) {
				continue
			}
			if e.IsDir() {
				res.CommonPrefixes = append(res.CommonPrefixes, k+"/")
				continue
			}
			if !e.Type().IsRegular() {
				continue
			}
			obj, err := l.stat("list", k)
			if errors.Is(err, ErrNotFound) {
				continue // removed while we listed
			}
			if err != nil {
				return res, err
			}
			res.Objects = append(res.Objects, obj)
		}
		return res, ctx.Err()
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if p == dir {
			return nil
		}
		if hidden(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(l.root, p)
		if err != nil {
			return err
		}
		k := filepath.ToSlash(rel)
		if d.IsDir() {
			// Skip directories that cannot hold a matching key.
			if !strings.HasPrefix(k+"/", pre) && !strings.HasPrefix(pre, k+"/") {
				return filepath.SkipDir
			}
			return ctx.Err()
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(k, pre) {
			return nil
		}
		obj, err := l.stat("list", k)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		res.Objects = append(res.Objects, obj)
		return nil
	})
	if err != nil {
		var be *Error
		if errors.As(err, &be) {
			return res, err
		}
		return res, &Error{Op: "list", Key: pre, Kind: classifyFS(err), Err: err}
	}
	sort.Slice(res.Objects, func(i, j int) bool { return res.Objects[i].Key < res.Objects[j].Key })
	return res, nil
}

func hidden(name string) bool {
	return name == lockName || strings.HasPrefix(name, tmpPrefix)
}

func classifyFS(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ErrNotFound
	case errors.Is(err, fs.ErrPermission):
		return ErrForbidden
	case errors.Is(err, syscall.EIO), errors.Is(err, syscall.ENOTCONN), errors.Is(err, syscall.ESTALE),
		errors.Is(err, syscall.EHOSTDOWN), errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.ENOSPC):
		return ErrUnavailable
	}
	return nil
}

package backend

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// tmpPrefix marks files being written; List never shows them.
const tmpPrefix = ".kubestash-tmp-"

// lockName is the file whose flock serialises conditional writes between
// processes sharing the directory (replicas on one NFS export, a person).
const lockName = ".kubestash.lock"

// Local is a Backend over a directory: a hostPath, an NFS mount or a PVC
// mounted into the server's pod.
//
// Whoever can write into the directory can plant symbolic links in it. The
// backend never follows one below its root: every path is opened one
// component at a time with O_NOFOLLOW from the root, so a link (to a
// directory or a file) is an error for reads, writes and deletes, and
// listings leave links out. The root itself may be a link: it is the
// administrator's configuration, not a tenant's file.
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

// hashLimit is the size above which a file's ETag is made of its identity
// (inode, size, mtime) instead of a hash of its content: a planted
// multi-gigabyte file must not be read whole by every listing. No catalog
// file comes near it, so conditional writes of catalog files always compare
// content hashes.
const hashLimit = 64 << 20

func identityETag(fi fs.FileInfo) string {
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fmt.Sprintf("i-%x-%x-%x", ino, fi.Size(), fi.ModTime().UnixNano())
}

// splitKey returns the directory (possibly "") and the name of a clean key.
func splitKey(k string) (dir, name string) {
	dir, name = path.Split(k)
	return strings.TrimSuffix(dir, "/"), name
}

// errSymlink says a path element is a symbolic link, which is never
// followed.
var errSymlink = errors.New("a symbolic link below the backend's root is never followed")

// openDir opens directory rel (a clean key, "" for the root) below the root
// one element at a time, refusing symbolic links; with create it makes the
// missing ones. The caller closes the descriptor.
func (l *Local) openDir(rel string, create bool) (int, error) {
	fd, err := unix.Open(l.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: l.root, Err: err}
	}
	if rel == "" {
		return fd, nil
	}
	for _, el := range strings.Split(rel, "/") {
		nfd, err := openDirAt(fd, el)
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(fd, el, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
				nfd, err = openDirAt(fd, el)
			}
		}
		if err != nil {
			err = pathError("open", l.path(rel), fd, el, err)
			unix.Close(fd)
			return -1, err
		}
		unix.Close(fd)
		fd = nfd
	}
	return fd, nil
}

func openDirAt(dirfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return fd, err
	}
}

// pathError turns the errno of opening name in dirfd into an error that
// says when the element is a symbolic link (ELOOP with O_NOFOLLOW, or
// ENOTDIR for a link where a directory is opened).
func pathError(op, p string, dirfd int, name string, err error) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		var st unix.Stat_t
		if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return &os.PathError{Op: op, Path: p, Err: errSymlink}
		}
		if errors.Is(err, unix.ENOTDIR) {
			// A file where a directory is needed: nothing is there.
			return &os.PathError{Op: op, Path: p, Err: fs.ErrNotExist}
		}
	}
	return &os.PathError{Op: op, Path: p, Err: err}
}

// openFile opens the regular file of key k for reading without following
// a symbolic link anywhere below the root. O_NONBLOCK keeps a planted FIFO
// from blocking the open; anything but a regular file is not found.
func (l *Local) openFile(k string) (*os.File, fs.FileInfo, error) {
	dir, name := splitKey(k)
	dfd, err := l.openDir(dir, false)
	if err != nil {
		return nil, nil, err
	}
	defer unix.Close(dfd)
	var fd int
	for {
		fd, err = unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return nil, nil, pathError("open", l.path(k), dfd, name, err)
	}
	f := os.NewFile(uintptr(fd), l.path(k))
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		if fi.IsDir() {
			return nil, nil, &os.PathError{Op: "open", Path: l.path(k), Err: errIsDir}
		}
		return nil, nil, &os.PathError{Op: "open", Path: l.path(k), Err: errNotRegular}
	}
	return f, fi, nil
}

var (
	errIsDir      = errors.New("is a directory")
	errNotRegular = errors.New("not a regular file")
)

func (l *Local) Get(ctx context.Context, key string) ([]byte, Object, error) {
	return l.GetLimit(ctx, key, -1)
}

// GetLimit implements LimitedGetter: a file over max bytes is ErrTooLarge,
// told by its size before anything is read, and at most max+1 bytes are
// read in any case (the file may grow meanwhile).
func (l *Local) GetLimit(ctx context.Context, key string, max int64) ([]byte, Object, error) {
	k, err := CleanKey(key)
	if err != nil {
		return nil, Object{}, err
	}
	f, fi, err := l.openFile(k)
	if err != nil {
		return nil, Object{}, &Error{Op: "get", Key: k, Kind: classifyFS(err), Err: err}
	}
	defer f.Close()
	obj := Object{Key: k, Size: fi.Size(), LastModified: fi.ModTime()}
	var r io.Reader = f
	if max >= 0 {
		if fi.Size() > max {
			return nil, obj, tooLarge("get", k, fi.Size(), max)
		}
		r = io.LimitReader(f, max+1)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, Object{}, &Error{Op: "get", Key: k, Kind: classifyFS(err), Err: err}
	}
	if max >= 0 && int64(len(b)) > max {
		return nil, obj, tooLarge("get", k, int64(len(b)), max)
	}
	obj.ETag, obj.Size = contentETag(b), int64(len(b))
	if fi.Size() > hashLimit {
		obj.ETag = identityETag(fi) // as stat gives it
	}
	return b, obj, nil
}

func (l *Local) Stat(ctx context.Context, key string) (Object, error) {
	k, err := CleanKey(key)
	if err != nil {
		return Object{}, err
	}
	return l.stat("stat", k)
}

func (l *Local) stat(op, k string) (Object, error) {
	f, fi, err := l.openFile(k)
	if err != nil {
		if errors.Is(err, errIsDir) {
			return Object{}, &Error{Op: op, Key: k, Kind: ErrNotFound, Err: errIsDir}
		}
		return Object{}, &Error{Op: op, Key: k, Kind: classifyFS(err), Err: err}
	}
	defer f.Close()
	etag, err := l.etag(l.path(k), f, fi)
	if err != nil {
		return Object{}, &Error{Op: op, Key: k, Kind: classifyFS(err), Err: err}
	}
	return Object{Key: k, ETag: etag, Size: fi.Size(), LastModified: fi.ModTime()}, nil
}

// etag returns the content hash of the open file f, from the cache while
// its identity (inode, size, mtime) is unchanged. It streams the file, so a
// huge file costs reading, never memory.
func (l *Local) etag(p string, f *os.File, fi fs.FileInfo) (string, error) {
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
	if fi.Size() > hashLimit {
		return identityETag(fi), nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	e.etag = hex.EncodeToString(h.Sum(nil)[:16])
	l.etagMu.Lock()
	l.etags[p] = e
	l.etagMu.Unlock()
	return e.etag, nil
}

// lock takes the process mutex and an exclusive flock on the lock file
// (never through a symbolic link planted under its name).
func (l *Local) lock() (unlock func(), err error) {
	l.mu.Lock()
	f, err := os.OpenFile(filepath.Join(l.root, lockName), os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
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
	if err := l.writeAtomic(k, data); err != nil {
		return Object{}, &Error{Op: "put", Key: k, Kind: classifyFS(err), Err: err}
	}
	return l.stat("put", k)
}

// writeAtomic writes to a temporary file beside k's, syncs it and renames
// it over k's, then syncs the directory: a crash leaves the old or the new
// file. The directories are made and opened without following links, and
// rename replaces a link at k itself rather than writing where it points.
func (l *Local) writeAtomic(k string, data []byte) error {
	dir, name := splitKey(k)
	dfd, err := l.openDir(dir, true)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	tmp := tmpPrefix + hex.EncodeToString(rnd[:])
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: l.path(path.Join(dir, tmp)), Err: err}
	}
	f := os.NewFile(uintptr(fd), l.path(path.Join(dir, tmp)))
	renamed := false
	defer func() {
		if !renamed {
			_ = unix.Unlinkat(dfd, tmp, 0)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
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
	if err := unix.Renameat(dfd, tmp, dfd, name); err != nil {
		return &os.PathError{Op: "rename", Path: l.path(k), Err: err}
	}
	renamed = true
	return unix.Fsync(dfd)
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
	dir, name := splitKey(k)
	dfd, err := l.openDir(dir, false)
	if err != nil {
		return &Error{Op: "delete", Key: k, Kind: classifyFS(err), Err: err}
	}
	// unlinkat removes a link itself, never where it points.
	err = unix.Unlinkat(dfd, name, 0)
	if err != nil {
		unix.Close(dfd)
		err = &os.PathError{Op: "remove", Path: l.path(k), Err: err}
		return &Error{Op: "delete", Key: k, Kind: classifyFS(err), Err: err}
	}
	serr := unix.Fsync(dfd)
	unix.Close(dfd)
	l.etagMu.Lock()
	delete(l.etags, l.path(k))
	l.etagMu.Unlock()
	// An object store has no empty directories; remove the ones this left
	// so that List looks the same on both kinds of backend.
	for dir != "" {
		parent, name := splitKey(dir)
		pfd, err := l.openDir(parent, false)
		if err != nil {
			break
		}
		err = unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR)
		if err == nil {
			_ = unix.Fsync(pfd)
		}
		unix.Close(pfd)
		if err != nil {
			break // not empty: the directory stays
		}
		dir = parent
	}
	if serr != nil {
		return &Error{Op: "delete", Key: k, Kind: classifyFS(serr), Err: serr}
	}
	return nil
}

// readDir lists the open directory fd (which it closes), sorted by name.
func readDir(fd int, p string) ([]fs.DirEntry, error) {
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	entries, err := f.ReadDir(-1)
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	return entries, err
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
	var res ListResult
	fd, err := l.openDir(dirKey, false)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errSymlink) {
		// Nothing there, or a link: the listing of a link is empty, as
		// for any file that is not a directory.
		return res, nil
	}
	if err != nil {
		return res, &Error{Op: "list", Key: pre, Kind: classifyFS(err), Err: err}
	}
	join := func(dir, name string) string {
		if dir == "" {
			return name
		}
		return dir + "/" + name
	}
	// add appends the regular file k to the result.
	add := func(k string) error {
		obj, err := l.stat("list", k)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrForbidden) {
			return nil // removed (or replaced by a link) while we listed
		}
		if err != nil {
			return err
		}
		res.Objects = append(res.Objects, obj)
		return nil
	}
	if o.Delimiter == "/" {
		entries, err := readDir(fd, l.path(dirKey))
		if err != nil {
			return res, &Error{Op: "list", Key: pre, Kind: classifyFS(err), Err: err}
		}
		for _, e := range entries {
			k := join(dirKey, e.Name())
			if hidden(e.Name()) || !strings.HasPrefix(k, pre) {
				continue
			}
			switch {
			case e.Type()&fs.ModeSymlink != 0:
				continue // never followed, never listed
			case e.IsDir():
				res.CommonPrefixes = append(res.CommonPrefixes, k+"/")
			case e.Type().IsRegular():
				if err := add(k); err != nil {
					return res, err
				}
			}
		}
		return res, ctx.Err()
	}
	// A walk that opens every directory from its parent's descriptor
	// without following links, unlike filepath.WalkDir on a path.
	var walk func(fd int, dir string) error
	walk = func(fd int, dir string) error {
		entries, err := readDir(fd, l.path(dir))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return &Error{Op: "list", Key: pre, Kind: classifyFS(err), Err: err}
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			k := join(dir, e.Name())
			switch {
			case hidden(e.Name()), e.Type()&fs.ModeSymlink != 0:
				continue
			case e.IsDir():
				// Skip directories that cannot hold a matching key.
				if !strings.HasPrefix(k+"/", pre) && !strings.HasPrefix(pre, k+"/") {
					continue
				}
				sub, err := l.openDir(k, false)
				if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errSymlink) {
					continue
				}
				if err != nil {
					return &Error{Op: "list", Key: pre, Kind: classifyFS(err), Err: err}
				}
				if err := walk(sub, k); err != nil {
					return err
				}
			case e.Type().IsRegular() && strings.HasPrefix(k, pre):
				if err := add(k); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(fd, dirKey); err != nil {
		return res, err
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
	case errors.Is(err, fs.ErrPermission), errors.Is(err, errSymlink):
		return ErrForbidden
	case errors.Is(err, errIsDir), errors.Is(err, errNotRegular):
		return ErrNotFound
	case errors.Is(err, syscall.EIO), errors.Is(err, syscall.ENOTCONN), errors.Is(err, syscall.ESTALE),
		errors.Is(err, syscall.EHOSTDOWN), errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.ENOSPC):
		return ErrUnavailable
	}
	return nil
}

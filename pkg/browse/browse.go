// Package browse shows what a Snapshot holds without restoring it: the
// entries of a directory of its dump component, and the bytes of a file or
// a tar of a directory. It runs the pinned restic (pkg/restic) with the
// Repository's storage credentials and encryption Secret, which it reads
// with a GET each time (the catalog server holds get on exactly those
// Secrets, granted by the controller). The catalog server serves it as
// the subresources snapshots/files and snapshots/download.
package browse

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/klog/v2"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backenddirs"
	storagelisters "kubestash.dev/kubestash/pkg/generated/listers/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/restic"
	"kubestash.dev/kubestash/pkg/secretenv"
	"kubestash.dev/kubestash/pkg/storagebackend"
)

const (
	// Component is the component of a PVC Snapshot that is browsed.
	Component = "dump"
	// DefaultLimit is the most entries of one listing answer.
	DefaultLimit = 10000
	// DefaultMaxConcurrent is how many browse requests run restic at once.
	DefaultMaxConcurrent = 4
)

// Options are what a Browser reads and runs.
type Options struct {
	// Snapshots and Repositories get catalog objects (internal types) in
	// the namespace of the context, as the API serves them.
	Snapshots    rest.Getter
	Repositories rest.Getter
	// BackupStorages are the cluster's, from the catalog server's informer.
	BackupStorages storagelisters.BackupStorageLister
	// Secret reads a Secret with a GET.
	Secret func(ctx context.Context, namespace, name string) (*corev1.Secret, error)
	// LocalDirs says where local backends may be (--local-backend-dirs).
	LocalDirs backenddirs.Policy
	// Restic holds the binary and timeouts; location, password, scratch
	// folder and cache are filled in per request.
	Restic restic.Options
	// ScratchDir holds restic's cache and temporary files; empty:
	// <os temp dir>/kubestash-browse.
	ScratchDir string
	// MaxConcurrent bounds the requests running restic at once; more get
	// 429. 0 means DefaultMaxConcurrent.
	MaxConcurrent int
}

// Browser answers browse requests.
type Browser struct {
	o     Options
	slots chan struct{}
}

// New returns a Browser.
func New(o Options) (*Browser, error) {
	if o.Snapshots == nil || o.Repositories == nil || o.BackupStorages == nil || o.Secret == nil {
		return nil, errors.New("browse: Snapshots, Repositories, BackupStorages and Secret are required")
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	if o.ScratchDir == "" {
		o.ScratchDir = filepath.Join(os.TempDir(), "kubestash-browse")
	}
	return &Browser{o: o, slots: make(chan struct{}, o.MaxConcurrent)}, nil
}

// acquire takes a slot or answers 429: a queue of waiting requests, each
// holding a connection, would only hide the overload.
func (b *Browser) acquire() (release func(), err error) {
	select {
	case b.slots <- struct{}{}:
		return func() { <-b.slots }, nil
	default:
		return nil, apierrors.NewTooManyRequests(fmt.Sprintf("%d browse requests of snapshots are running already; try again", cap(b.slots)), 1)
	}
}

// CleanPath checks a path in a snapshot: absolute ("/" is the volume's
// root; empty means "/"), without "..", and returns it cleaned.
func CleanPath(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path %q must be absolute: it is relative to the backed-up volume's root, which is /", p)
	}
	if strings.ContainsRune(p, 0) {
		return "", errors.New("path must not contain a NUL byte")
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return "", fmt.Errorf("path %q must not contain ..", p)
		}
	}
	return path.Clean(p), nil
}

// target is a Snapshot's restic snapshot, ready to run commands on.
type target struct {
	ns, name string
	repo     *restic.Repo
	// id is restic's snapshot id, folder the folder it stored (the
	// volume's root, /kubestash-data in a Pod).
	id, folder string
}

// at names the snapshot's folder p (below the volume's root) for restic.
func (t *target) at(p string) string {
	return t.id + ":" + path.Join(t.folder, p)
}

// resolve finds what restic needs for Snapshot name of ctx's namespace.
func (b *Browser) resolve(ctx context.Context, name string) (*target, error) {
	obj, err := b.o.Snapshots.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	snap, ok := obj.(*catalog.Snapshot)
	if !ok {
		return nil, fmt.Errorf("browse: got %T, not a Snapshot", obj)
	}
	gr := catalog.Resource(catalogv1alpha1.ResourcePluralSnapshot)
	if snap.Status.Phase != catalog.SnapshotSucceeded {
		phase := string(snap.Status.Phase)
		if phase == "" {
			phase = "without a phase yet"
		}
		return nil, apierrors.NewConflict(gr, name, fmt.Errorf("the Snapshot is %s; only a Succeeded Snapshot can be browsed", phase))
	}
	comp, ok := snap.Status.Components[Component]
	if !ok || comp.Path == "" {
		return nil, apierrors.NewConflict(gr, name, fmt.Errorf("the Snapshot has no component %q with a path", Component))
	}
	var sums []catalog.ResticSummary
	for _, s := range comp.ResticStats {
		if s.Summary != nil && s.Summary.ID != "" {
			sums = append(sums, *s.Summary)
		}
	}
	if len(sums) != 1 {
		return nil, apierrors.NewConflict(gr, name, fmt.Errorf("component %s holds %d restic snapshots; browsing serves a component of one (a single backed-up path)", Component, len(sums)))
	}

	robj, err := b.o.Repositories.Get(ctx, snap.Spec.Repository, &metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, apierrors.NewConflict(gr, name, fmt.Errorf("its Repository %s is not served", snap.Spec.Repository))
	}
	if err != nil {
		return nil, err
	}
	repo, ok := robj.(*catalog.Repository)
	if !ok {
		return nil, fmt.Errorf("browse: got %T, not a Repository", robj)
	}
	loc, err := b.location(ctx, repo)
	if err != nil {
		return nil, err
	}
	loc.Path = path.Join(repo.Spec.Path, comp.Path)
	pw, err := b.password(ctx, repo)
	if err != nil {
		return nil, err
	}
	ro := b.o.Restic
	ro.Location = loc
	ro.Password = pw
	// One scratch folder per restic repository, so that its cache
	// (encrypted index and trees) serves the next browse of it.
	url, err := loc.URL()
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	sum := sha256.Sum256([]byte(url))
	ro.ScratchDir = filepath.Join(b.o.ScratchDir, hex.EncodeToString(sum[:8]))
	ro.EnableCache = true
	r, err := restic.New(ro)
	if err != nil {
		return nil, fmt.Errorf("browse Snapshot %s/%s: %w", snap.Namespace, name, err)
	}
	t := &target{ns: snap.Namespace, name: name, repo: r, id: sums[0].ID, folder: sums[0].HostPath}
	if !path.IsAbs(t.folder) {
		// Not recorded (a Snapshot of another writer): ask restic.
		snaps, err := r.Snapshots(ctx, t.id)
		if err != nil {
			return nil, t.resticError(err, "")
		}
		if len(snaps) != 1 || len(snaps[0].Paths) != 1 {
			return nil, apierrors.NewConflict(gr, name, fmt.Errorf("restic snapshot %s does not hold exactly one folder", t.id))
		}
		t.folder = snaps[0].Paths[0]
	}
	return t, nil
}

// location is where the Repository's storage is, with its credentials.
func (b *Browser) location(ctx context.Context, repo *catalog.Repository) (restic.Location, error) {
	ref := repo.Spec.StorageRef
	if ref.Namespace == "" {
		ref.Namespace = repo.Namespace
	}
	bs, err := b.o.BackupStorages.BackupStorages(ref.Namespace).Get(ref.Name)
	if err != nil {
		return restic.Location{}, apierrors.NewServiceUnavailable(fmt.Sprintf("BackupStorage %s/%s of Repository %s is not available", ref.Namespace, ref.Name, repo.Name))
	}
	st := bs.Spec.Storage
	switch st.Provider {
	case storagev1alpha1.ProviderS3:
		if st.S3 == nil {
			return restic.Location{}, apierrors.NewServiceUnavailable(fmt.Sprintf("BackupStorage %s/%s has no spec.storage.s3", bs.Namespace, bs.Name))
		}
		s3 := &restic.S3{Endpoint: st.S3.Endpoint, Bucket: st.S3.Bucket, Prefix: st.S3.Prefix, Region: st.S3.Region, InsecureTLS: st.S3.InsecureTLS}
		if sn := st.S3.SecretName; sn != "" {
			sec, err := b.secret(ctx, bs.Namespace, sn, "storage Secret")
			if err != nil {
				return restic.Location{}, err
			}
			s3.AccessKeyID, s3.SecretAccessKey = string(sec.Data[storagebackend.KeyAccessKeyID]), string(sec.Data[storagebackend.KeySecretAccessKey])
			if s3.AccessKeyID == "" || s3.SecretAccessKey == "" {
				return restic.Location{}, apierrors.NewServiceUnavailable(fmt.Sprintf("storage Secret %s/%s needs the keys %s and %s", bs.Namespace, sn, storagebackend.KeyAccessKeyID, storagebackend.KeySecretAccessKey))
			}
			s3.CACertPEM = sec.Data[storagebackend.KeyCACertData]
		}
		return restic.Location{Provider: restic.ProviderS3, S3: s3, Connections: st.S3.MaxConnections}, nil
	case storagev1alpha1.ProviderLocal:
		if st.Local == nil {
			return restic.Location{}, apierrors.NewServiceUnavailable(fmt.Sprintf("BackupStorage %s/%s has no spec.storage.local", bs.Namespace, bs.Name))
		}
		// The same rules as the catalog's own backend (storagebackend.Builder):
		// no directory an administrator did not allow.
		dir := storagebackend.LocalDir(st.Local)
		if ferr := b.o.LocalDirs.Check(st.Local); ferr != nil || dir == "" {
			return restic.Location{}, apierrors.NewServiceUnavailable(fmt.Sprintf("BackupStorage %s/%s: its directory is not under --local-backend-dirs", bs.Namespace, bs.Name))
		}
		if err := b.o.LocalDirs.CheckResolved(dir); err != nil {
			return restic.Location{}, apierrors.NewServiceUnavailable(fmt.Sprintf("BackupStorage %s/%s: its directory is not under --local-backend-dirs", bs.Namespace, bs.Name))
		}
		return restic.Location{Provider: restic.ProviderLocal, LocalDir: dir, Connections: st.Local.MaxConnections}, nil
	default:
		return restic.Location{}, apierrors.NewServiceUnavailable(fmt.Sprintf("BackupStorage %s/%s: provider %q cannot be browsed (s3 and local can)", bs.Namespace, bs.Name, st.Provider))
	}
}

// password is the restic password of the Repository's encryption Secret.
func (b *Browser) password(ctx context.Context, repo *catalog.Repository) (string, error) {
	ref := repo.Spec.EncryptionSecret
	if ref == nil || ref.Name == "" {
		return "", apierrors.NewServiceUnavailable(fmt.Sprintf("Repository %s has no encryptionSecret", repo.Name))
	}
	ns := ref.Namespace
	if ns == "" {
		ns = repo.Namespace
	}
	sec, err := b.secret(ctx, ns, ref.Name, "encryption Secret")
	if err != nil {
		return "", err
	}
	pw := string(sec.Data[secretenv.KeyResticPassword])
	if pw == "" {
		return "", apierrors.NewServiceUnavailable(fmt.Sprintf("encryption Secret %s/%s has no key %s", ns, ref.Name, secretenv.KeyResticPassword))
	}
	return pw, nil
}

// secret reads a Secret; errors name it, never its content.
func (b *Browser) secret(ctx context.Context, ns, name, what string) (*corev1.Secret, error) {
	sec, err := b.o.Secret(ctx, ns, name)
	switch {
	case apierrors.IsNotFound(err):
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("%s %s/%s not found", what, ns, name))
	case apierrors.IsForbidden(err):
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("the catalog server may not read the %s %s/%s (the controller grants it)", what, ns, name))
	case err != nil:
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("%s %s/%s could not be read", what, ns, name))
	}
	return sec, nil
}

// resticError turns a failed restic run into an API error: what restic
// said stays in the log; the answer says what is wrong in the user's
// terms. p is the path asked for.
func (t *target) resticError(err error, p string) error {
	var se apierrors.APIStatus
	switch {
	case errors.As(err, &se):
		return err
	case errors.Is(err, restic.ErrPathNotFound):
		return notFound(t.name, p)
	case errors.Is(err, restic.ErrSnapshotNotFound):
		return apierrors.NewConflict(catalog.Resource(catalogv1alpha1.ResourcePluralSnapshot), t.name,
			fmt.Errorf("restic snapshot %s is no longer in the repository", t.id))
	case errors.Is(err, restic.ErrWrongPassword):
		return apierrors.NewServiceUnavailable("the Repository's encryption Secret does not open the restic repository")
	case errors.Is(err, restic.ErrRepositoryNotFound):
		return apierrors.NewServiceUnavailable("the restic repository of the Snapshot is missing from the backend")
	case errors.Is(err, restic.ErrBackendUnreachable):
		return apierrors.NewServiceUnavailable("the backend of the Snapshot's BackupStorage does not answer")
	}
	klog.ErrorS(err, "Browsing a snapshot failed", "snapshot", klog.KRef(t.ns, t.name), "path", p)
	return apierrors.NewInternalError(errors.New("restic failed; the catalog server's log has the details"))
}

// notFound is the 404 of a path missing in a Snapshot.
func notFound(snapshot, p string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusNotFound,
		Reason:  metav1.StatusReasonNotFound,
		Message: fmt.Sprintf("path %s not found in Snapshot %s", p, snapshot),
		Details: &metav1.StatusDetails{Group: catalog.GroupName, Kind: catalogv1alpha1.ResourcePluralSnapshot, Name: snapshot},
	}}
}

// continueToken is the opaque metadata.continue of a listing.
type continueToken struct {
	Path      string `json:"p"`
	Recursive bool   `json:"r,omitempty"`
	Offset    int64  `json:"o"`
}

func (c continueToken) encode() string {
	b, _ := json.Marshal(c) // plain struct: always encodes
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s string) (continueToken, error) {
	var c continueToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.Offset < 0 {
		return c, errors.New("continue is not a token this server gave")
	}
	return c, nil
}

// List answers snapshots/files: one directory of Snapshot name (in ctx's
// namespace), or its subtree. Snapshots are immutable, so a continue
// token is an offset into the same listing.
func (b *Browser) List(ctx context.Context, name string, o *catalog.SnapshotFilesOptions) (*catalog.SnapshotFileList, error) {
	p, err := CleanPath(o.Path)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	limit := o.Limit
	switch {
	case limit < 0:
		return nil, apierrors.NewBadRequest("limit must not be negative")
	case limit == 0 || limit > DefaultLimit:
		limit = DefaultLimit
	}
	var offset int64
	if o.Continue != "" {
		c, err := decodeContinue(o.Continue)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		if c.Path != p || c.Recursive != o.Recursive {
			return nil, apierrors.NewBadRequest("continue is the token of another listing (path or recursive differ)")
		}
		offset = c.Offset
	}
	release, err := b.acquire()
	if err != nil {
		return nil, err
	}
	defer release()
	t, err := b.resolve(ctx, name)
	if err != nil {
		return nil, err
	}
	klog.V(2).InfoS("Listing a snapshot", "snapshot", klog.KRef(t.ns, name), "path", p, "recursive", o.Recursive, "offset", offset)

	list := &catalog.SnapshotFileList{Path: p, Items: []catalog.SnapshotFile{}}
	var seen int64
	more := false
	// collect keeps entries offset..offset+limit and says when one more
	// exists (then a continue token is due).
	collect := func(f catalog.SnapshotFile) error {
		seen++
		if seen <= offset {
			return nil
		}
		if int64(len(list.Items)) == limit {
			more = true
			return restic.ErrStop
		}
		list.Items = append(list.Items, f)
		return nil
	}
	if o.Recursive {
		err = t.listRecursive(ctx, p, collect)
		if err == nil {
			var n int
			n, err = t.fillLinkTargets(ctx, list.Items)
			if n < len(list.Items) {
				list.Items, more = list.Items[:n], true
			}
		}
	} else {
		err = t.listDir(ctx, p, collect)
	}
	if err != nil {
		return nil, err
	}
	if more {
		list.Continue = continueToken{Path: p, Recursive: o.Recursive, Offset: offset + int64(len(list.Items))}.encode()
	}
	return list, nil
}

// MaxLinkDirs is how many folders one page of a recursive listing reads
// link targets from; the page ends before the symlink of one more.
var MaxLinkDirs = 32

// fillLinkTargets sets the link targets of the symlinks among items, which
// restic's recursive ls does not print, from `restic cat tree` of their
// folders, one run a folder. It returns how many items it filled: all, or
// fewer when the next symlink is in a folder beyond MaxLinkDirs (a page
// costs at most that many runs of restic).
func (t *target) fillLinkTargets(ctx context.Context, items []catalog.SnapshotFile) (int, error) {
	dirs := map[string]map[string]string{}
	for i := range items {
		f := &items[i]
		if f.Type != catalogv1alpha1.FileTypeSymlink {
			continue
		}
		dir := path.Dir(f.Path)
		targets, ok := dirs[dir]
		if !ok {
			if len(dirs) >= max(MaxLinkDirs, 1) {
				return i, nil
			}
			targets = map[string]string{}
			err := t.repo.Dir(ctx, t.at(dir), func(n restic.Node) error {
				if n.Type == "symlink" {
					targets[n.Name] = n.Target()
				}
				return nil
			})
			if err != nil {
				return 0, t.resticError(err, dir)
			}
			dirs[dir] = targets
		}
		f.LinkTarget = targets[f.Name]
	}
	return len(items), nil
}

// listDir lists one directory with `restic cat tree`, which has the link
// targets; a path that is a file lists that file.
func (t *target) listDir(ctx context.Context, p string, fn func(catalog.SnapshotFile) error) error {
	err := t.repo.Dir(ctx, t.at(p), func(n restic.Node) error {
		return fn(fileOf(path.Join(p, n.Name), n))
	})
	if errors.Is(err, restic.ErrNotDirectory) {
		n, found, lerr := t.node(ctx, p)
		if lerr != nil {
			return lerr
		}
		if !found {
			return notFound(t.name, p)
		}
		return ignoreStop(fn(fileOf(p, n)))
	}
	if err != nil {
		return t.resticError(err, p)
	}
	return nil
}

// listRecursive lists p's subtree with `restic ls --recursive`.
func (t *target) listRecursive(ctx context.Context, p string, fn func(catalog.SnapshotFile) error) error {
	found := p == "/"
	err := t.repo.Ls(ctx, t.at("/"), p, true, func(n restic.Node) error {
		np := path.Clean("/" + n.Path)
		if np == p {
			found = true
			if n.Type == "dir" {
				return nil // the directory itself is not its own entry
			}
		}
		return fn(fileOf(np, n))
	})
	if err != nil {
		return t.resticError(err, p)
	}
	if !found {
		return notFound(t.name, p)
	}
	return nil
}

func ignoreStop(err error) error {
	if errors.Is(err, restic.ErrStop) {
		return nil
	}
	return err
}

// node finds the entry at p (not "/") with `restic ls`, which prints it
// first and its children after, which are not waited for.
func (t *target) node(ctx context.Context, p string) (restic.Node, bool, error) {
	var out restic.Node
	found := false
	err := t.repo.Ls(ctx, t.at("/"), p, false, func(n restic.Node) error {
		if path.Clean("/"+n.Path) == p {
			out, found = n, true
			return restic.ErrStop
		}
		return nil
	})
	if err != nil {
		return out, false, t.resticError(err, p)
	}
	return out, found, nil
}

// fileOf is the API entry of a restic node at p.
func fileOf(p string, n restic.Node) catalog.SnapshotFile {
	f := catalog.SnapshotFile{
		Name:        path.Base(p),
		Path:        p,
		Type:        fileType(n.Type),
		Mode:        fmt.Sprintf("%04o", unixMode(n.Mode)),
		Permissions: permissions(n.Type, n.Mode),
		UID:         int64(n.UID),
		GID:         int64(n.GID),
	}
	if f.Type == catalogv1alpha1.FileTypeFile {
		f.Size = int64(n.Size)
	}
	if !n.ModTime.IsZero() {
		t := metav1.NewTime(n.ModTime)
		f.Mtime = &t
	}
	if f.Type == catalogv1alpha1.FileTypeSymlink {
		f.LinkTarget = n.Target()
	}
	return f
}

func fileType(t string) string {
	switch t {
	case "file":
		return catalogv1alpha1.FileTypeFile
	case "dir":
		return catalogv1alpha1.FileTypeDir
	case "symlink":
		return catalogv1alpha1.FileTypeSymlink
	}
	return catalogv1alpha1.FileTypeOther
}

// unixMode is the permission bits of m with the set-ID and sticky bits in
// their Unix places (Go keeps them elsewhere).
func unixMode(m os.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// permissions is the mode as ls -l prints it.
func permissions(typ string, m os.FileMode) string {
	b := []byte("----------")
	switch typ {
	case "dir":
		b[0] = 'd'
	case "symlink":
		b[0] = 'l'
	case "chardev":
		b[0] = 'c'
	case "dev":
		b[0] = 'b'
	case "fifo":
		b[0] = 'p'
	case "socket":
		b[0] = 's'
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if m&(1<<uint(8-i)) != 0 {
			b[i+1] = rwx[i]
		}
	}
	special := func(set bool, i int, lower, upper byte) {
		if !set {
			return
		}
		if b[i] == '-' {
			b[i] = upper
		} else {
			b[i] = lower
		}
	}
	special(m&os.ModeSetuid != 0, 3, 's', 'S')
	special(m&os.ModeSetgid != 0, 6, 's', 'S')
	special(m&os.ModeSticky != 0, 9, 't', 'T')
	return string(b)
}

// Download is an open download: what it is, and WriteTo to stream it.
type Download struct {
	// Name is the file name to save it under (a directory's gets .tar).
	Name string
	// ContentType is application/octet-stream or application/x-tar.
	ContentType string
	// Size is a file's length; -1 for a tar, whose length is not known
	// before it is made.
	Size int64

	t       *target
	p       string
	dir     bool
	release func()
}

// Close frees the Download's slot.
func (d *Download) Close() {
	if d.release != nil {
		d.release()
		d.release = nil
	}
}

// WriteTo streams the file or the tar to w. restic runs as long as ctx
// (the request's): a client that goes away stops it.
func (d *Download) WriteTo(ctx context.Context, w io.Writer) error {
	var err error
	if d.dir {
		err = d.t.repo.Dump(ctx, d.t.at(d.p), "/", w)
	} else {
		err = d.t.repo.Dump(ctx, d.t.at(path.Dir(d.p)), path.Base(d.p), w)
	}
	if err != nil {
		return fmt.Errorf("download %s of Snapshot %s/%s: %w", d.p, d.t.ns, d.t.name, err)
	}
	return nil
}

// OpenDownload answers snapshots/download up to the first byte: the path
// is checked and found, or the error is the answer. The caller must Close
// the Download.
func (b *Browser) OpenDownload(ctx context.Context, name string, o *catalog.SnapshotDownloadOptions) (_ *Download, err error) {
	p, err := CleanPath(o.Path)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	release, err := b.acquire()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	t, err := b.resolve(ctx, name)
	if err != nil {
		return nil, err
	}
	d := &Download{t: t, p: p, release: release, Size: -1}
	if p == "/" {
		d.dir, d.Name, d.ContentType = true, name+".tar", "application/x-tar"
		klog.V(2).InfoS("Downloading from a snapshot", "snapshot", klog.KRef(t.ns, name), "path", p, "tar", true)
		return d, nil
	}
	n, found, err := t.node(ctx, p)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound(name, p)
	}
	switch n.Type {
	case "dir":
		d.dir, d.Name, d.ContentType = true, path.Base(p)+".tar", "application/x-tar"
	case "file":
		d.Name, d.ContentType, d.Size = path.Base(p), "application/octet-stream", int64(n.Size)
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("path %s is a %s, not a file or directory: its entry in snapshots/files says what it is", p, n.Type))
	}
	klog.V(2).InfoS("Downloading from a snapshot", "snapshot", klog.KRef(t.ns, name), "path", p, "tar", d.dir)
	return d, nil
}

// Package placement decides where each catalog object lives in the backends
// (the Locators of the catalog store) and which files found there are served,
// under which registry key (its Admitter).
//
// A Repository names its BackupStorage and path; every other catalog object
// lives in a Repository's folder: a Snapshot in the repository it belongs to,
// a RestoreSession in the repository it restores from, a BackupSession in the
// first repository of its session.
package placement

import (
	"context"
	"crypto/sha256"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/store"
)

// StorageID names a BackupStorage as the catalog store's storage id.
func StorageID(namespace, name string) string { return namespace + "/" + name }

// Repositories tells where a Repository lives.
type Repositories interface {
	// Repository returns the storage id and path of namespace/name.
	Repository(namespace, name string) (storage, path string, ok bool)
}

// SessionRepositories tells which repository keeps the BackupSessions of a
// session of a BackupConfiguration: the first one of the session.
type SessionRepositories interface {
	FirstRepository(namespace, backupConfiguration, session string) (string, error)
}

// RepositoryLocator places a Repository by its spec. Recording it in
// metadata.yaml before its file is written is the store's Prepare (the
// registry's), not the Locator's.
type RepositoryLocator struct{}

func (l RepositoryLocator) Locate(_ context.Context, _ string, obj runtime.Object) (store.Location, error) {
	r, ok := obj.(*catalog.Repository)
	if !ok {
		return store.Location{}, fmt.Errorf("want a Repository, got %T", obj)
	}
	var errs field.ErrorList
	if r.Spec.StorageRef.Name == "" {
		errs = append(errs, field.Required(field.NewPath("spec", "storageRef", "name"), "the BackupStorage that holds the repository"))
	}
	key, err := layout.Key(layout.KindRepository, r.Spec.Path, "")
	if err != nil {
		errs = append(errs, field.Invalid(field.NewPath("spec", "path"), r.Spec.Path, err.Error()))
	}
	if len(errs) > 0 {
		return store.Location{}, apierrors.NewInvalid(catalog.Kind("Repository"), r.Name, errs)
	}
	ns := r.Spec.StorageRef.Namespace
	if ns == "" {
		ns = r.Namespace
	}
	return store.Location{Storage: StorageID(ns, r.Spec.StorageRef.Name), Key: key}, nil
}

// in places an object of kind k named name in a repository of namespace.
func in(repos Repositories, k layout.Kind, namespace, repo string, fld *field.Path, kind, name string) (store.Location, error) {
	if repo == "" {
		return store.Location{}, apierrors.NewInvalid(catalog.Kind(kind), name, field.ErrorList{field.Required(fld, "the Repository that keeps it")})
	}
	storage, path, ok := repos.Repository(namespace, repo)
	if !ok {
		return store.Location{}, apierrors.NewInvalid(catalog.Kind(kind), name, field.ErrorList{
			field.NotFound(fld, fmt.Sprintf("%s/%s", namespace, repo)),
		})
	}
	key, err := layout.Key(k, path, name)
	if err != nil {
		return store.Location{}, apierrors.NewInvalid(catalog.Kind(kind), name, field.ErrorList{field.Invalid(field.NewPath("metadata", "name"), name, err.Error())})
	}
	return store.Location{Storage: storage, Key: key}, nil
}

// SnapshotLocator places a Snapshot in its spec.repository.
type SnapshotLocator struct{ Repos Repositories }

func (l SnapshotLocator) Locate(_ context.Context, _ string, obj runtime.Object) (store.Location, error) {
	s, ok := obj.(*catalog.Snapshot)
	if !ok {
		return store.Location{}, fmt.Errorf("want a Snapshot, got %T", obj)
	}
	return in(l.Repos, layout.KindSnapshot, s.Namespace, s.Spec.Repository, field.NewPath("spec", "repository"), "Snapshot", s.Name)
}

// RestoreSessionLocator places a RestoreSession in the repository it
// restores from.
type RestoreSessionLocator struct{ Repos Repositories }

func (l RestoreSessionLocator) Locate(_ context.Context, _ string, obj runtime.Object) (store.Location, error) {
	r, ok := obj.(*catalog.RestoreSession)
	if !ok {
		return store.Location{}, fmt.Errorf("want a RestoreSession, got %T", obj)
	}
	ns := r.Spec.DataSource.Namespace
	if ns == "" {
		ns = r.Namespace
	}
	return in(l.Repos, layout.KindRestoreSession, ns, r.Spec.DataSource.Repository, field.NewPath("spec", "dataSource", "repository"), "RestoreSession", r.Name)
}

// BackupSessionLocator places a BackupSession in the first repository of
// its session.
type BackupSessionLocator struct {
	Repos    Repositories
	Sessions SessionRepositories
}

func (l BackupSessionLocator) Locate(_ context.Context, _ string, obj runtime.Object) (store.Location, error) {
	b, ok := obj.(*catalog.BackupSession)
	if !ok {
		return store.Location{}, fmt.Errorf("want a BackupSession, got %T", obj)
	}
	repo, err := l.Sessions.FirstRepository(b.Namespace, b.Spec.Invoker.Name, b.Spec.Session)
	if err != nil {
		return store.Location{}, apierrors.NewInvalid(catalog.Kind("BackupSession"), b.Name, field.ErrorList{
			field.Invalid(field.NewPath("spec", "session"), b.Spec.Session, err.Error()),
		})
	}
	return in(l.Repos, layout.KindBackupSession, b.Namespace, repo, field.NewPath("spec", "session"), "BackupSession", b.Name)
}

// Admitter serves the catalog files of one resource under
// <Prefix>/<namespace>/<name>, the key the generic registry uses.
type Admitter struct {
	// Prefix is the registry's resource prefix, e.g. "/catalog.kubestash.com/snapshots".
	Prefix string
	Kind   layout.Kind
	// Allowed says whether objects of storage may be served in namespace
	// (the BackupStorage's usagePolicy). Nil allows all.
	Allowed func(storage, namespace string) error
	// Repos, if set, makes Canonical stricter for Snapshots and
	// RestoreSessions: the file must also be in the folder (and storage)
	// of the Repository the object names, so that a copy planted under
	// the right file name in another folder never wins over the original.
	Repos Repositories
}

func (a Admitter) Admit(storage, fileKey string, obj runtime.Object) (string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return "", err
	}
	if k, _, _, ok := layout.Parse(fileKey); !ok || k != a.Kind {
		return "", fmt.Errorf("file %s does not hold a %s", fileKey, a.Kind)
	}
	if m.GetNamespace() == "" || m.GetName() == "" {
		return "", fmt.Errorf("file %s: object has no namespace or name", fileKey)
	}
	if r, ok := obj.(*catalog.Repository); ok {
		if err := checkRepositoryPath(fileKey, r.Spec.Path); err != nil {
			return "", &store.SkipError{Reason: SkipReasonPath, Err: err}
		}
	}
	if a.Allowed != nil {
		if err := a.Allowed(storage, m.GetNamespace()); err != nil {
			return "", err
		}
	}
	// UIDs and owners mean nothing to another cluster, and an owner
	// reference would let the garbage collector delete a backup.
	m.SetOwnerReferences(nil)
	if m.GetUID() == "" {
		m.SetUID(StableUID(storage, fileKey))
	}
	return a.Prefix + "/" + m.GetNamespace() + "/" + m.GetName(), nil
}

// SkipReasonPath labels Repository files refused for their spec.path in
// kubestash_catalog_skipped_files_total.
const SkipReasonPath = "path"

// checkRepositoryPath checks a Repository read from a file as the API
// checks one written through it (layout.RepoDir, which the registry's
// validation uses), and that the path is the folder the file is in. A
// planted repository.yaml whose spec.path says "../other/repo", or names
// another folder of the bucket, would otherwise send restic, which opens
// spec.path, into another tenant's repository.
func checkRepositoryPath(fileKey, specPath string) error {
	dir, err := layout.RepoDir(specPath)
	if err != nil {
		return fmt.Errorf("file %s: spec.path is not a valid repository path: %w", fileKey, err)
	}
	if _, fileDir, _, _ := layout.Parse(fileKey); dir != fileDir {
		return fmt.Errorf("file %s: spec.path %.100q is not the folder of the file (%s)", fileKey, specPath, fileDir)
	}
	return nil
}

// Canonical implements the catalog store's CanonicalAdmitter: a file is
// where the object it holds is written when it is named after the object
// (a Repository's file is always in its spec.path, see Admit) and, with
// Repos set, sits in the folder of the Repository it names. Of two files
// claiming one object the canonical one is served; a copy planted under
// another file name (or, with Repos, in another folder) never wins over
// the original.
func (a Admitter) Canonical(storage, fileKey string, obj runtime.Object) bool {
	k, _, name, ok := layout.Parse(fileKey)
	if !ok {
		return false
	}
	if k == layout.KindRepository {
		return true
	}
	m, err := meta.Accessor(obj)
	if err != nil || m.GetName() != name {
		return false
	}
	if a.Repos == nil {
		return true
	}
	var ns, repo string
	switch o := obj.(type) {
	case *catalog.Snapshot:
		ns, repo = o.Namespace, o.Spec.Repository
	case *catalog.RestoreSession:
		ns, repo = o.Spec.DataSource.Namespace, o.Spec.DataSource.Repository
		if ns == "" {
			ns = o.Namespace
		}
	default:
		return true // a BackupSession names no Repository of its own
	}
	rs, p, ok := a.Repos.Repository(ns, repo)
	if !ok || rs != storage {
		return false
	}
	want, err := layout.Key(k, p, name)
	return err == nil && want == fileKey
}

var _ store.CanonicalAdmitter = Admitter{}

// StableUID derives a UID for a file that carries none (upstream sanitizes
// UIDs away), so that it keeps its identity across restarts and replicas.
func StableUID(storage, fileKey string) types.UID {
	sum := sha256.Sum256([]byte(storage + "\x00" + fileKey))
	b := sum[:16]
	b[6] = (b[6] & 0x0f) | 0x50 // version 5 layout, name based
	b[8] = (b[8] & 0x3f) | 0x80
	return types.UID(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}

package registry

import (
	"context"
	"fmt"
	"path"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/store"
)

// What the backends can store.
const (
	// MaxFileNameBytes is the longest path component a local backend can
	// hold (NAME_MAX of Linux file systems).
	MaxFileNameBytes = 255
	// MaxObjectKeyBytes is the longest object key S3 stores, the
	// storage's prefix included. The local backend is held to it too, so
	// that a catalog can move between the two.
	MaxObjectKeyBytes = 1024
)

// MaxNameLength is the longest name an object of kind k may have: it is
// stored as the file <name>.yaml (layout.Key), which must fit in one path
// component. A Repository's name names no file: the DNS limit.
func MaxNameLength(k layout.Kind) int {
	if k == layout.KindRepository {
		return validation.DNS1123SubdomainMaxLength
	}
	const probe = "n"
	key, err := layout.Key(k, "r", probe)
	if err != nil {
		return validation.DNS1123SubdomainMaxLength
	}
	return min(validation.DNS1123SubdomainMaxLength, MaxFileNameBytes-(len(path.Base(key))-len(probe)))
}

// ValidateNameLength refuses a name whose file the backends cannot store.
func ValidateNameLength(k layout.Kind, name string) field.ErrorList {
	if max := MaxNameLength(k); len(name) > max {
		return field.ErrorList{field.Invalid(field.NewPath("metadata", "name"), name,
			fmt.Sprintf("must be no more than %d characters: the %s is stored as the file <name>.yaml, and backends store file names of at most %d bytes",
				max, k, MaxFileNameBytes))}
	}
	return nil
}

// Reference is what placement follows to put an object somewhere: the
// BackupStorage of a Repository, the Repository of the others.
type Reference struct {
	Field     *field.Path
	Kind      string // BackupStorage or Repository
	Namespace string
	Name      string
}

func (r Reference) String() string { return r.Namespace + "/" + r.Name }

// checkedLocator runs every check a create must pass before its file is
// written: placement (the Locator), tenancy (the storage's usagePolicy
// allows the object's namespace), what the backend can store, and that
// the storage is served. The store calls it on real writes, and REST on
// dry runs (check only), so both answer alike.
//
// A reference to an object of another namespace that cannot be used from
// the object's namespace, whether it is missing or refused, gets one and
// the same answer: otherwise a tenant could learn what exists in
// namespaces it may not read.
type checkedLocator struct {
	c    *Catalog
	kind layout.Kind
	// place is the resource's placement, without side effects.
	place store.Locator
	// ref is the reference place follows.
	ref func(runtime.Object) Reference
	// indexed, if set, returns the location of an object already indexed;
	// such an object stays where it is and is not checked again.
	indexed func(key string) (store.Location, bool)
}

var _ store.Locator = (*checkedLocator)(nil)

// Locate implements store.Locator: the checks, then what a write needs.
func (l *checkedLocator) Locate(ctx context.Context, key string, obj runtime.Object) (store.Location, error) {
	loc, _, err := l.check(ctx, key, obj)
	return loc, err
}

// Check runs the checks alone, for a dry run.
func (l *checkedLocator) Check(ctx context.Context, key string, obj runtime.Object) (store.Location, error) {
	loc, _, err := l.check(ctx, key, obj)
	return loc, err
}

func (l *checkedLocator) check(ctx context.Context, key string, obj runtime.Object) (loc store.Location, fresh bool, err error) {
	if l.indexed != nil {
		if cur, ok := l.indexed(key); ok {
			return cur, false, nil
		}
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return store.Location{}, false, err
	}
	ns, name := m.GetNamespace(), m.GetName()
	ref := l.ref(obj)
	foreign := ref.Namespace != ns
	logger := klog.Background().WithName("catalog").WithValues("kind", l.kind.String(), "object", klog.KRef(ns, name), "reference", ref.String())

	loc, err = l.place.Locate(ctx, key, obj)
	if err != nil {
		if foreign {
			// Missing, or not placeable: the same answer as refused.
			logger.V(2).Info("Refused a reference to another namespace", "err", err)
			return store.Location{}, false, l.unusable(ref, ns)
		}
		return store.Location{}, false, err
	}
	if l.c.Allowed != nil {
		if aerr := l.c.Allowed(loc.Storage, ns); aerr != nil {
			storageNS, _, _ := cache.SplitMetaNamespaceKey(loc.Storage)
			if foreign || storageNS != ns {
				logger.V(2).Info("Refused a storage the namespace may not use", "storage", loc.Storage, "err", aerr)
				return store.Location{}, false, l.unusable(ref, ns)
			}
			// The namespace's own storage: nothing to hide from it.
			return store.Location{}, false, apierrors.NewBadRequest(fmt.Sprintf("%s: %v", ref.Field, aerr))
		}
	}
	b, ok := l.c.Backends.Backend(loc.Storage)
	if !ok {
		return store.Location{}, false, apierrors.NewServiceUnavailable(fmt.Sprintf("storage %s is not available to the catalog (is it Ready?)", loc.Storage))
	}
	if fe := keyFits(l.kind, ref, name, loc.Key, keyPrefixLen(b)); fe != nil {
		return store.Location{}, false, apierrors.NewInvalid(catalog.Kind(l.kind.String()), name, field.ErrorList{fe})
	}
	return loc, true, nil
}

// unusable is the one answer for a reference the namespace may not
// follow: the same whether the object exists or not. It is a 400, as the
// store's refusal of a storage by its usagePolicy always was.
func (l *checkedLocator) unusable(ref Reference, namespace string) error {
	why := "its usagePolicy does not allow this namespace"
	if ref.Kind != "BackupStorage" {
		why = "its BackupStorage's usagePolicy does not allow this namespace"
	}
	return apierrors.NewBadRequest(fmt.Sprintf("%s: no %s %s that namespace %s may use: it does not exist, or %s", ref.Field, ref.Kind, ref, namespace, why))
}

// keyFits checks that the file key (under a storage prefix of prefixLen
// bytes) fits what the backends store: path elements of at most
// MaxFileNameBytes, keys of at most MaxObjectKeyBytes. When the name is
// what does not fit, the error is on metadata.name and says how long it
// may be; otherwise the repository's path is too long.
func keyFits(k layout.Kind, ref Reference, name, key string, prefixLen int) *field.Error {
	total := prefixLen + len(key)
	dir, file := path.Split(key)
	longDir := false
	for _, el := range strings.Split(strings.TrimSuffix(dir, "/"), "/") {
		longDir = longDir || len(el) > MaxFileNameBytes
	}
	if !longDir && len(file) <= MaxFileNameBytes && total <= MaxObjectKeyBytes {
		return nil
	}
	if k != layout.KindRepository && !longDir {
		if max := min(MaxNameLength(k), MaxObjectKeyBytes-(total-len(name))); max >= 1 {
			return field.Invalid(field.NewPath("metadata", "name"), name, fmt.Sprintf(
				"must be no more than %d characters in Repository %s: the file key in the backend would be %d bytes, and backends store keys of at most %d bytes (path elements of at most %d)",
				max, ref, total, MaxObjectKeyBytes, MaxFileNameBytes))
		}
	}
	fld, value, what := ref.Field, ref.String(), "the path of Repository "+ref.String()
	if k == layout.KindRepository {
		fld, value, what = field.NewPath("spec", "path"), strings.TrimSuffix(dir, "/"), "the path"
	}
	return field.Invalid(fld, value, fmt.Sprintf(
		"%s is too long for the backends: the file key would be %d bytes (at most %d) or have a path element over %d bytes",
		what, total, MaxObjectKeyBytes, MaxFileNameBytes))
}

// keyPrefixLen is how many bytes a backend puts before a key: for S3 the
// storage's prefix and a "/". backend.S3 tells it only in its String,
// "s3:<scheme>://<host>/<bucket>[/<prefix>]".
func keyPrefixLen(b backend.Backend) int {
	s := strings.TrimSuffix(b.String(), backend.UnavailableSuffix)
	rest, ok := strings.CutPrefix(s, "s3:")
	if !ok {
		return 0
	}
	if _, after, ok := strings.Cut(rest, "://"); ok {
		rest = after
	}
	parts := strings.SplitN(rest, "/", 3) // host, bucket, prefix
	if len(parts) < 3 || parts[2] == "" {
		return 0
	}
	return len(parts[2]) + 1
}

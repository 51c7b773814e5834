package registry

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/util/dryrun"
	"k8s.io/klog/v2"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	"kubestash.dev/kubestash/pkg/store"
)

// guard holds what REST needs to check a dry run as the store checks a
// real write. The generic registry answers dry runs without calling the
// store's Create (genericregistry.DryRunnableStorage), so without it a
// dry run would skip placement and tenancy and answer differently from a
// real create, for objects of other namespaces too.
type guard struct {
	// check is checkedLocator.Check of the resource.
	check func(ctx context.Context, key string, obj runtime.Object) (store.Location, error)
	// location is where an indexed object is.
	location func(key string) (store.Location, bool)
}

// Create runs, for a dry run, the checks the store runs before it writes;
// they come after the other validations, as in a real create.
func (r *REST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (out runtime.Object, err error) {
	defer func() { err = r.publicError(ctx, err) }()
	if r.guard != nil && options != nil && dryrun.IsDryRun(options.DryRun) {
		next := createValidation
		createValidation = func(ctx context.Context, obj runtime.Object) error {
			if next != nil {
				if err := next(ctx, obj); err != nil {
					return err
				}
			}
			m, err := meta.Accessor(obj)
			if err != nil {
				return err
			}
			key, err := r.KeyFunc(ctx, m.GetName())
			if err != nil {
				return err
			}
			_, err = r.guard.check(ctx, key, obj)
			return err
		}
	}
	if r.owner == nil {
		return r.Store.Create(ctx, obj, createValidation, options)
	}
	if err := r.owner.stamp(ctx, obj); err != nil {
		return nil, err
	}
	out, err = r.Store.Create(ctx, obj, createValidation, options)
	if !apierrors.IsAlreadyExists(err) {
		return out, err
	}
	m, merr := meta.Accessor(obj)
	if merr != nil {
		return nil, err
	}
	if replaced, rerr := r.replaceEarlier(ctx, m.GetName(), dryRunOf(options)); rerr != nil || !replaced {
		return nil, errors.Join(err, rerr)
	}
	return r.Store.Create(ctx, obj, createValidation, options)
}

// Update runs, for a dry run, the store's check that an update does not
// move an object to another file.
func (r *REST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc,
	updateValidation rest.ValidateObjectUpdateFunc, forceAllowCreate bool, options *metav1.UpdateOptions) (out runtime.Object, created bool, err error) {
	defer func() { err = r.publicError(ctx, err) }()
	if r.guard != nil && options != nil && dryrun.IsDryRun(options.DryRun) {
		next := updateValidation
		updateValidation = func(ctx context.Context, obj, old runtime.Object) error {
			if next != nil {
				if err := next(ctx, obj, old); err != nil {
					return err
				}
			}
			key, err := r.KeyFunc(ctx, name)
			if err != nil {
				return err
			}
			cur, ok := r.guard.location(key)
			if !ok {
				return nil
			}
			// As the store: a placement that fails does not block an
			// update, one that differs does.
			if l, err := r.guard.check(ctx, key, obj); err == nil && l != cur {
				return apierrors.NewBadRequest(fmt.Sprintf("cannot update %s: it is stored at %s and the update would move it to %s", key, cur, l))
			}
			return nil
		}
	}
	if r.owner != nil {
		if cur, err := r.Store.Get(ctx, name, &metav1.GetOptions{}); err == nil && !r.owner.current(ctx, cur) {
			if !forceAllowCreate && !r.UpdateStrategy.AllowCreateOnUpdate(ctx) {
				return nil, false, apierrors.NewNotFound(r.DefaultQualifiedResource, name)
			}
			var dry []string
			if options != nil {
				dry = options.DryRun
			}
			if _, err := r.replaceEarlier(ctx, name, dry); err != nil {
				return nil, false, err
			}
		}
		objInfo = stampedInfo{UpdatedObjectInfo: objInfo, owner: r.owner}
	}
	return r.Store.Update(ctx, name, objInfo, createValidation, updateValidation, forceAllowCreate, options)
}

func dryRunOf(o *metav1.CreateOptions) []string {
	if o == nil {
		return nil
	}
	return o.DryRun
}

// Get hides host paths from errors, as every method does.
func (r *REST) Get(ctx context.Context, name string, options *metav1.GetOptions) (out runtime.Object, err error) {
	defer func() { err = r.publicError(ctx, err) }()
	out, err = r.Store.Get(ctx, name, options)
	if err != nil || r.owner == nil {
		return out, err
	}
	current, err := r.owner.check(ctx, out)
	if err != nil {
		return nil, err
	}
	if !current {
		return nil, apierrors.NewNotFound(r.DefaultQualifiedResource, name)
	}
	return out, nil
}

func (r *REST) publicError(ctx context.Context, err error) error {
	return publicError(ctx, r.DefaultQualifiedResource.String(), err)
}

// hostPath matches an absolute file system path in a message; the
// registry keys of the catalog (/catalog.kubestash.com/...) are kept.
var hostPath = regexp.MustCompile(`(^|[\s"'(=\[:])(/[^/\s"'(),:\[\]][^\s"'(),:\[\]]*)`)

// scrubHostPaths replaces the absolute paths in msg with "<path>".
func scrubHostPaths(msg string) string {
	return hostPath.ReplaceAllStringFunc(msg, func(m string) string {
		sub := hostPath.FindStringSubmatch(m)
		if strings.HasPrefix(sub[2], "/"+catalog.GroupName+"/") {
			return m
		}
		return sub[1] + "<path>"
	})
}

// publicError is err as a client may see it. Backend failures carry what
// the backend said, and a local backend's errors name files on the host:
// an internal error (500) becomes a generic message, others of 5xx (an
// unavailable backend, a timeout) lose their host paths but keep their
// cause (such as the Secret a storage lacks). The original goes to the
// log. Errors of the client (4xx) are built by the registry from the
// request and are returned unchanged.
func publicError(ctx context.Context, resource string, err error) error {
	if err == nil {
		return nil
	}
	var status apierrors.APIStatus
	isStatus := errors.As(err, &status)
	if isStatus && status.Status().Code < 500 {
		return err
	}
	if !isStatus || (status.Status().Code == 500 && status.Status().Reason == metav1.StatusReasonInternalError) {
		klog.FromContext(ctx).Error(err, "Catalog request failed", "resource", resource)
		return apierrors.NewInternalError(fmt.Errorf("%s: the catalog failed; the catalog server's log has the details", resource))
	}
	st := status.Status()
	out := *st.DeepCopy()
	out.Message = scrubHostPaths(out.Message)
	if out.Details != nil {
		for i := range out.Details.Causes {
			out.Details.Causes[i].Message = scrubHostPaths(out.Details.Causes[i].Message)
		}
	}
	if out.Message == st.Message && (out.Details == nil || slices.Equal(out.Details.Causes, st.Details.Causes)) {
		return err
	}
	klog.FromContext(ctx).V(2).Info("Catalog request failed; host paths left out of the answer", "resource", resource, "err", err)
	return &apierrors.StatusError{ErrStatus: out}
}

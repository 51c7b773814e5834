package registry

import (
	"context"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage/names"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/layout"
)

// Kind tells the common strategy how to handle one catalog type (a pointer
// to an internal type such as *catalog.Snapshot).
type Kind[T runtime.Object] struct {
	// File is the kind of file the object is stored as; its name is
	// limited to what the backends store (MaxNameLength).
	File layout.Kind
	// Meta returns the object's metadata.
	Meta func(T) *metav1.ObjectMeta
	// Spec returns the spec, to tell whether it changed.
	Spec func(T) any
	// ClearStatus empties the status: a create sets spec only.
	ClearStatus func(T)
	// CopyStatus sets obj's status to old's: an update of the main
	// resource leaves status alone.
	CopyStatus func(obj, old T)
	// CopySpec sets obj's spec to old's: a status update leaves spec alone.
	CopySpec func(obj, old T)
	// Default fills server-side defaults beyond the scheme's; optional.
	Default func(T)
	// ValidateSpec checks the spec (and labels or names the spec implies).
	ValidateSpec func(T) field.ErrorList
	// ValidateSpecUpdate checks what may not change; optional.
	ValidateSpecUpdate func(obj, old T) field.ErrorList
	// ValidateStatus checks the status: allowed phases and such.
	ValidateStatus func(T) field.ErrorList
}

// Strategy is the create, update and delete strategy of a catalog
// resource. Status is kept apart from spec as with a CRD that has a status
// subresource: creates and updates of the resource ignore status, updates
// of /status (StatusStrategy) ignore everything else. metadata.generation
// counts changes of spec.
type Strategy[T runtime.Object] struct {
	runtime.ObjectTyper
	names.NameGenerator
	kind Kind[T]
}

// NewStrategy returns the strategy of a kind.
func NewStrategy[T runtime.Object](typer runtime.ObjectTyper, kind Kind[T]) Strategy[T] {
	return Strategy[T]{ObjectTyper: typer, NameGenerator: names.SimpleNameGenerator, kind: kind}
}

var (
	_ rest.RESTCreateStrategy  = Strategy[runtime.Object]{}
	_ rest.RESTUpdateStrategy  = Strategy[runtime.Object]{}
	_ rest.RESTDeleteStrategy  = Strategy[runtime.Object]{}
	_ rest.ResetFieldsStrategy = Strategy[runtime.Object]{}
)

// apiVersion of the reset fields: the only served version.
var apiVersion = fieldpath.APIVersion(catalogv1alpha1.SchemeGroupVersion.String())

// NamespaceScoped is true: every catalog resource is namespaced.
func (Strategy[T]) NamespaceScoped() bool { return true }

// GetResetFields tells server-side apply that status is not the resource's.
func (Strategy[T]) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return map[fieldpath.APIVersion]*fieldpath.Set{apiVersion: fieldpath.NewSet(fieldpath.MakePathOrDie("status"))}
}

// PrepareForCreate drops status and starts the generation.
func (s Strategy[T]) PrepareForCreate(_ context.Context, obj runtime.Object) {
	o := obj.(T)
	s.kind.ClearStatus(o)
	s.kind.Meta(o).Generation = 1
	if s.kind.Default != nil {
		s.kind.Default(o)
	}
}

// PrepareForUpdate keeps the old status and counts spec changes.
func (s Strategy[T]) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	o, p := obj.(T), old.(T)
	s.kind.CopyStatus(o, p)
	if s.kind.Default != nil {
		s.kind.Default(o)
	}
	gen := s.kind.Meta(p).Generation
	if !apiequality.Semantic.DeepEqual(s.kind.Spec(o), s.kind.Spec(p)) {
		gen++
	}
	s.kind.Meta(o).Generation = gen
}

// Validate checks a new object.
func (s Strategy[T]) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	o := obj.(T)
	errs := ValidateObjectMeta(s.kind.Meta(o))
	errs = append(errs, ValidateNameLength(s.kind.File, s.kind.Meta(o).Name)...)
	errs = append(errs, s.kind.ValidateSpec(o)...)
	return append(errs, s.kind.ValidateStatus(o)...)
}

// ValidateUpdate checks an update of the resource.
func (s Strategy[T]) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	o, p := obj.(T), old.(T)
	errs := ValidateObjectMetaUpdate(s.kind.Meta(o), s.kind.Meta(p))
	errs = append(errs, s.kind.ValidateSpec(o)...)
	if s.kind.ValidateSpecUpdate != nil {
		errs = append(errs, s.kind.ValidateSpecUpdate(o, p)...)
	}
	return errs
}

// WarningsOnCreate returns nothing.
func (Strategy[T]) WarningsOnCreate(context.Context, runtime.Object) []string { return nil }

// WarningsOnUpdate returns nothing.
func (Strategy[T]) WarningsOnUpdate(context.Context, runtime.Object, runtime.Object) []string {
	return nil
}

// AllowCreateOnUpdate is false: a PUT of a missing object is an error, as
// for a custom resource.
func (Strategy[T]) AllowCreateOnUpdate(context.Context) bool { return false }

// AllowUnconditionalUpdate is false: an update must name the
// resourceVersion it replaces (the backend write is conditional anyway).
func (Strategy[T]) AllowUnconditionalUpdate(context.Context) bool { return false }

// Canonicalize does nothing.
func (Strategy[T]) Canonicalize(runtime.Object) {}

// StatusStrategy is the update strategy of /status.
type StatusStrategy[T runtime.Object] struct {
	Strategy[T]
}

// NewStatusStrategy returns the status strategy of s.
func NewStatusStrategy[T runtime.Object](s Strategy[T]) StatusStrategy[T] {
	return StatusStrategy[T]{Strategy: s}
}

// GetResetFields tells server-side apply that spec is not the status's.
func (StatusStrategy[T]) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return map[fieldpath.APIVersion]*fieldpath.Set{apiVersion: fieldpath.NewSet(fieldpath.MakePathOrDie("spec"))}
}

// PrepareForUpdate keeps everything but status (and managedFields).
func (s StatusStrategy[T]) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	o, p := obj.(T), old.(T)
	s.kind.CopySpec(o, p)
	metav1.ResetObjectMetaForStatus(s.kind.Meta(o), s.kind.Meta(p))
}

// ValidateUpdate checks the new status.
func (s StatusStrategy[T]) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	o, p := obj.(T), old.(T)
	errs := ValidateObjectMetaUpdate(s.kind.Meta(o), s.kind.Meta(p))
	return append(errs, s.kind.ValidateStatus(o)...)
}

// WarningsOnUpdate returns nothing.
func (StatusStrategy[T]) WarningsOnUpdate(context.Context, runtime.Object, runtime.Object) []string {
	return nil
}

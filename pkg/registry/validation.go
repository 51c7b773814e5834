package registry

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidateObjectMeta checks the metadata of a catalog object: a DNS-1123
// subdomain name (it becomes a file name in the backend) and no owner
// references. Catalog objects outlive the cluster that made them: a UID
// means nothing to another cluster, and an owner reference would let the
// garbage collector delete a backup.
func ValidateObjectMeta(m *metav1.ObjectMeta) field.ErrorList {
	fld := field.NewPath("metadata")
	errs := validation.ValidateObjectMeta(m, true, validation.NameIsDNSSubdomain, fld)
	if len(m.OwnerReferences) > 0 {
		errs = append(errs, field.Forbidden(fld.Child("ownerReferences"),
			"catalog objects are kept in the backup backend and outlive their owners; they may not have owner references"))
	}
	return errs
}

// ValidateObjectMetaUpdate checks metadata on update.
func ValidateObjectMetaUpdate(m, old *metav1.ObjectMeta) field.ErrorList {
	errs := validation.ValidateObjectMetaUpdate(m, old, field.NewPath("metadata"))
	if len(m.OwnerReferences) > 0 {
		errs = append(errs, field.Forbidden(field.NewPath("metadata", "ownerReferences"),
			"catalog objects are kept in the backup backend and outlive their owners; they may not have owner references"))
	}
	return errs
}

// Enum checks that a string-typed value is one of allowed (or empty when
// optional).
func Enum[T ~string](fld *field.Path, v T, optional bool, allowed ...T) field.ErrorList {
	if v == "" && optional {
		return nil
	}
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	if v == "" {
		return field.ErrorList{field.Required(fld, fmt.Sprintf("one of %v", allowed))}
	}
	s := make([]string, len(allowed))
	for i, a := range allowed {
		s[i] = string(a)
	}
	sort.Strings(s)
	return field.ErrorList{field.NotSupported(fld, v, s)}
}

// Required checks that a string is set.
func Required(fld *field.Path, v, what string) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(fld, what)}
	}
	return nil
}

// Immutable checks that a field did not change.
func Immutable(fld *field.Path, v, old any) field.ErrorList {
	return validation.ValidateImmutableField(v, old, fld)
}

// Package repositoryrest is the REST storage of
// repositories.catalog.kubestash.com: a directory of a BackupStorage that
// holds the backups of one application, described by <path>/repository.yaml.
package repositoryrest

import (
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/registry"
)

// Kind is how the common strategy handles a Repository.
var Kind = registry.Kind[*catalog.Repository]{
	File:           layout.KindRepository,
	Meta:           func(r *catalog.Repository) *metav1.ObjectMeta { return &r.ObjectMeta },
	Spec:           func(r *catalog.Repository) any { return r.Spec },
	ClearStatus:    func(r *catalog.Repository) { r.Status = catalog.RepositoryStatus{} },
	CopyStatus:     func(r, old *catalog.Repository) { r.Status = old.Status },
	CopySpec:       func(r, old *catalog.Repository) { r.Spec = old.Spec },
	Default:        wipeOutFinalizer,
	ValidateSpec:   validateSpec,
	ValidateStatus: validateStatus,
	ValidateSpecUpdate: func(r, old *catalog.Repository) field.ErrorList {
		// Where the repository is: its files and its restic data.
		spec := field.NewPath("spec")
		errs := registry.Immutable(spec.Child("path"), r.Spec.Path, old.Spec.Path)
		return append(errs, registry.Immutable(spec.Child("storageRef"), r.Spec.StorageRef, old.Spec.StorageRef)...)
	},
}

// wipeOutFinalizer keeps catalogv1alpha1.FinalizerWipeOut on a Repository
// exactly while its deletionPolicy is WipeOut. An explicit delete then only
// marks the Repository deleted, in its file, so the intent survives
// restarts and is seen by any cluster over the bucket; the controller
// removes the data and then the finalizer, and the file goes with it.
// Once deletion has begun the finalizers are the controller's to change.
// (A delete in a terminating namespace never gets this far: it leaves the
// backend alone, see registry.REST.)
func wipeOutFinalizer(r *catalog.Repository) {
	if r.DeletionTimestamp != nil {
		return
	}
	has := slices.Contains(r.Finalizers, catalogv1alpha1.FinalizerWipeOut)
	switch want := r.Spec.DeletionPolicy == catalog.DeletionPolicyWipeOut; {
	case want && !has:
		r.Finalizers = append(r.Finalizers, catalogv1alpha1.FinalizerWipeOut)
	case !want && has:
		r.Finalizers = slices.DeleteFunc(r.Finalizers, func(f string) bool { return f == catalogv1alpha1.FinalizerWipeOut })
	}
}

func validateSpec(r *catalog.Repository) field.ErrorList {
	spec := field.NewPath("spec")
	errs := registry.Required(spec.Child("storageRef", "name"), r.Spec.StorageRef.Name, "the BackupStorage that holds the repository")
	if r.Spec.Path == "" {
		errs = append(errs, field.Required(spec.Child("path"), "the directory of the repository in the BackupStorage"))
	} else if _, err := layout.RepoDir(r.Spec.Path); err != nil {
		errs = append(errs, field.Invalid(spec.Child("path"), r.Spec.Path, err.Error()))
	}
	errs = append(errs, registry.Enum(spec.Child("deletionPolicy"), r.Spec.DeletionPolicy, true, catalog.DeletionPolicyDelete, catalog.DeletionPolicyWipeOut)...)
	if r.Spec.Paused {
		// Accepted and never acted upon would be worse than refused.
		errs = append(errs, field.Forbidden(spec.Child("paused"), "not supported yet; remove it (pause the BackupConfiguration instead)"))
	}
	if r.Spec.EncryptionSecret != nil {
		errs = append(errs, registry.Required(spec.Child("encryptionSecret", "name"), r.Spec.EncryptionSecret.Name, "the Secret with the restic password")...)
	}
	return errs
}

func validateStatus(r *catalog.Repository) field.ErrorList {
	st := field.NewPath("status")
	errs := registry.Enum(st.Child("phase"), r.Status.Phase, true, catalog.RepositoryNotReady, catalog.RepositoryReady)
	if r.Status.SnapshotCount != nil && *r.Status.SnapshotCount < 0 {
		errs = append(errs, field.Invalid(st.Child("snapshotCount"), *r.Status.SnapshotCount, "must not be negative"))
	}
	for i, s := range r.Status.RecentSnapshots {
		errs = append(errs, registry.Enum(st.Child("recentSnapshots").Index(i).Child("phase"), s.Phase, true,
			catalog.SnapshotPending, catalog.SnapshotRunning, catalog.SnapshotSucceeded, catalog.SnapshotFailed)...)
	}
	return errs
}

// GetAttrs returns the labels and the selectable fields of a Repository
// (v1alpha1.SelectableFields("Repository")).
func GetAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	r, ok := obj.(*catalog.Repository)
	if !ok {
		return nil, nil, fmt.Errorf("not a Repository: %T", obj)
	}
	return labels.Set(r.Labels), generic.AddObjectMetaFieldsSet(fields.Set{
		"spec.storageRef.name": r.Spec.StorageRef.Name,
		"status.phase":         string(r.Status.Phase),
	}, &r.ObjectMeta, true), nil
}

// Table prints Repositories with upstream's printer columns.
var Table = registry.TableConvertor{
	Resource: catalog.Resource("repositories"),
	Columns: []registry.Column{
		{Name: "Integrity", Type: "boolean", Description: "False when data in the Repository is damaged."},
		{Name: "Snapshot-Count", Type: "integer", Description: "The number of Snapshots in the Repository."},
		{Name: "Size", Type: "string", Description: "The amount of data in the Repository."},
		{Name: "Phase", Type: "string", Description: "Ready once the Repository is initialized."},
		{Name: "Last-Successful-Backup", Type: "date", Description: "When the last successful backup finished."},
	},
	Cells: func(obj runtime.Object) ([]any, error) {
		r, ok := obj.(*catalog.Repository)
		if !ok {
			return nil, fmt.Errorf("not a Repository: %T", obj)
		}
		return []any{registry.Bool(r.Status.Integrity), registry.Int32(r.Status.SnapshotCount), r.Status.Size,
			string(r.Status.Phase), registry.Since(r.Status.LastBackupTime)}, nil
	},
}

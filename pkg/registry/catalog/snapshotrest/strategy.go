// Package snapshotrest is the REST storage of snapshots.catalog.kubestash.com:
// one backup run of an application into a Repository, kept in the backend
// at <repository>/snapshots/<name>.yaml.
package snapshotrest

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/registry"
)

// Kind is how the common strategy handles a Snapshot.
var Kind = registry.Kind[*catalog.Snapshot]{
	File:           layout.KindSnapshot,
	Meta:           func(s *catalog.Snapshot) *metav1.ObjectMeta { return &s.ObjectMeta },
	Spec:           func(s *catalog.Snapshot) any { return s.Spec },
	ClearStatus:    func(s *catalog.Snapshot) { s.Status = catalog.SnapshotStatus{} },
	CopyStatus:     func(s, old *catalog.Snapshot) { s.Status = old.Status },
	CopySpec:       func(s, old *catalog.Snapshot) { s.Spec = old.Spec },
	ValidateSpec:   validateSpec,
	ValidateStatus: validateStatus,
	ValidateSpecUpdate: func(s, old *catalog.Snapshot) field.ErrorList {
		spec := field.NewPath("spec")
		// The repository decides where the file is; the session and ID tie
		// the snapshot to its restic data.
		errs := registry.Immutable(spec.Child("repository"), s.Spec.Repository, old.Spec.Repository)
		errs = append(errs, registry.Immutable(spec.Child("backupSession"), s.Spec.BackupSession, old.Spec.BackupSession)...)
		if old.Spec.SnapshotID != "" {
			// Set once: the agent may fill it in after the backup started.
			errs = append(errs, registry.Immutable(spec.Child("snapshotID"), s.Spec.SnapshotID, old.Spec.SnapshotID)...)
		}
		return errs
	},
}

func validateSpec(s *catalog.Snapshot) field.ErrorList {
	spec := field.NewPath("spec")
	errs := registry.Required(spec.Child("repository"), s.Spec.Repository, "the Repository that stores the Snapshot")
	errs = append(errs, registry.Enum(spec.Child("type"), s.Spec.Type, true, catalog.BackupTypeFull, catalog.BackupTypeIncremental)...)
	errs = append(errs, registry.Enum(spec.Child("deletionPolicy"), s.Spec.DeletionPolicy, true, catalog.DeletionPolicyDelete, catalog.DeletionPolicyWipeOut)...)
	if s.Spec.Paused {
		// Accepted and never acted upon would be worse than refused.
		errs = append(errs, field.Forbidden(spec.Child("paused"), "not supported yet; remove it (pause the BackupConfiguration instead)"))
	}
	return errs
}

func validateStatus(s *catalog.Snapshot) field.ErrorList {
	st := field.NewPath("status")
	errs := registry.Enum(st.Child("phase"), s.Status.Phase, true,
		catalog.SnapshotPending, catalog.SnapshotRunning, catalog.SnapshotSucceeded, catalog.SnapshotFailed)
	errs = append(errs, registry.Enum(st.Child("verificationStatus"), s.Status.VerificationStatus, true,
		catalog.SnapshotVerified, catalog.SnapshotNotVerified, catalog.SnapshotVerificationFailed)...)
	if s.Status.TotalComponents < 0 {
		errs = append(errs, field.Invalid(st.Child("totalComponents"), s.Status.TotalComponents, "must not be negative"))
	}
	for name, c := range s.Status.Components {
		errs = append(errs, registry.Enum(st.Child("components").Key(name).Child("phase"), c.Phase, true,
			catalog.ComponentPhasePending, catalog.ComponentPhaseRunning, catalog.ComponentPhaseSucceeded, catalog.ComponentPhaseFailed)...)
	}
	return errs
}

// GetAttrs returns the labels and the selectable fields of a Snapshot
// (v1alpha1.SelectableFields("Snapshot")).
func GetAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	s, ok := obj.(*catalog.Snapshot)
	if !ok {
		return nil, nil, fmt.Errorf("not a Snapshot: %T", obj)
	}
	return labels.Set(s.Labels), generic.AddObjectMetaFieldsSet(fields.Set{
		"spec.repository":    s.Spec.Repository,
		"spec.session":       s.Spec.Session,
		"spec.backupSession": s.Spec.BackupSession,
		"status.phase":       string(s.Status.Phase),
	}, &s.ObjectMeta, true), nil
}

// Table prints Snapshots with upstream's printer columns.
var Table = registry.TableConvertor{
	Resource: catalog.Resource("snapshots"),
	Columns: []registry.Column{
		{Name: "Repository", Type: "string", Description: "The Repository that stores the Snapshot."},
		{Name: "Session", Type: "string", Description: "The backup session that took the Snapshot."},
		{Name: "Snapshot-Time", Type: "string", Description: "When the Snapshot was taken."},
		{Name: "Deletion-Policy", Type: "string", Description: "What deleting the Snapshot does to its data."},
		{Name: "Phase", Type: "string", Description: "The phase of the backup into the Snapshot."},
	},
	Cells: func(obj runtime.Object) ([]any, error) {
		s, ok := obj.(*catalog.Snapshot)
		if !ok {
			return nil, fmt.Errorf("not a Snapshot: %T", obj)
		}
		return []any{s.Spec.Repository, s.Spec.Session, registry.Timestamp(s.Status.SnapshotTime),
			string(s.Spec.DeletionPolicy), string(s.Status.Phase)}, nil
	},
}

// Package restoresessionrest is the REST storage of
// restoresessions.catalog.kubestash.com: one restore of a Snapshot, kept in
// the folder of the Repository it restores from.
package restoresessionrest

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"

	"kubestash.dev/kubestash/pkg/addon"
	"kubestash.dev/kubestash/pkg/apis/catalog"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/registry"
)

// LatestSnapshot is the dataSource.snapshot that picks the newest one.
const LatestSnapshot = "latest"

// Kind is how the common strategy handles a RestoreSession.
var Kind = registry.Kind[*catalog.RestoreSession]{
	File:        layout.KindRestoreSession,
	Meta:        func(r *catalog.RestoreSession) *metav1.ObjectMeta { return &r.ObjectMeta },
	Spec:        func(r *catalog.RestoreSession) any { return r.Spec },
	ClearStatus: func(r *catalog.RestoreSession) { r.Status = catalog.RestoreSessionStatus{} },
	CopyStatus:  func(r, old *catalog.RestoreSession) { r.Status = old.Status },
	CopySpec:    func(r, old *catalog.RestoreSession) { r.Spec = old.Spec },
	Default: func(r *catalog.RestoreSession) {
		// The Repository and Snapshot are in the RestoreSession's own
		// namespace unless it says otherwise.
		if r.Spec.DataSource.Namespace == "" {
			r.Spec.DataSource.Namespace = r.Namespace
		}
	},
	ValidateSpec:   validateSpec,
	ValidateStatus: validateStatus,
	ValidateSpecUpdate: func(r, old *catalog.RestoreSession) field.ErrorList {
		// The repository decides where the file is kept.
		ds := field.NewPath("spec", "dataSource")
		errs := registry.Immutable(ds.Child("namespace"), r.Spec.DataSource.Namespace, old.Spec.DataSource.Namespace)
		return append(errs, registry.Immutable(ds.Child("repository"), r.Spec.DataSource.Repository, old.Spec.DataSource.Repository)...)
	},
}

func validateSpec(r *catalog.RestoreSession) field.ErrorList {
	ds := field.NewPath("spec", "dataSource")
	d := r.Spec.DataSource
	// A Snapshot's name alone is enough: NewREST fills the repository in
	// from it. The RestoreSession is kept in its repository's folder, so
	// without one (latest, pitr, or a Snapshot that does not exist) it
	// cannot be placed.
	var errs field.ErrorList
	if d.Repository == "" {
		msg := "the Repository to restore from"
		if d.PITR == nil && d.Snapshot != "" && d.Snapshot != LatestSnapshot {
			msg = fmt.Sprintf("the Repository to restore from: Snapshot %s/%s was not found to take it from", d.Namespace, d.Snapshot)
		}
		errs = append(errs, field.Required(ds.Child("repository"), msg))
	}
	switch {
	case d.PITR != nil:
		if d.PITR.TargetTime == nil {
			errs = append(errs, field.Required(ds.Child("pitr", "targetTime"), "the point in time to restore"))
		}
	case d.Snapshot == "":
		errs = append(errs, field.Required(ds.Child("snapshot"), `a Snapshot name or "latest", unless pitr is set`))
	}
	if d.EncryptionSecret != nil {
		errs = append(errs, registry.Required(ds.Child("encryptionSecret", "name"), d.EncryptionSecret.Name, "the Secret with the restic password")...)
	}
	if r.Spec.Target != nil {
		errs = append(errs, registry.Required(field.NewPath("spec", "target", "name"), r.Spec.Target.Name, "the object to restore into")...)
	}
	// A RestoreSession is written by whoever may edit its namespace: its
	// addonVolumes may not put a hostPath (or any source outside that
	// namespace) into the restore Job, which runs as root. The
	// BackupConfiguration CRD has the same rule in CEL; a RestoreSession is
	// not a CRD, so it is here.
	if a := r.Spec.Addon; a != nil {
		tasks := field.NewPath("spec", "addon", "tasks")
		for i, t := range a.Tasks {
			errs = append(errs, addon.ValidateAddonVolumes(tasks.Index(i).Child("addonVolumes"), t.AddonVolumes)...)
			// include/exclude select what is restored: paths in the
			// snapshot, never a way out of the target volume.
			errs = append(errs, addon.ValidateRestorePaths(tasks.Index(i), &a.Tasks[i])...)
		}
		if rs := a.ContainerRuntimeSettings; rs != nil {
			crs := field.NewPath("spec", "addon", "containerRuntimeSettings")
			if rs.Nice != nil {
				errs = append(errs, field.Forbidden(crs.Child("nice"), "not supported yet; remove it"))
			}
			if rs.Ionice != nil {
				errs = append(errs, field.Forbidden(crs.Child("ionice"), "not supported yet; remove it"))
			}
		}
	}
	// Accepted and never run would be worse than refused.
	if r.Spec.Hooks != nil {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "hooks"), "hooks are not supported yet (no HookTemplate kind exists); remove them"))
	}
	return errs
}

func validateStatus(r *catalog.RestoreSession) field.ErrorList {
	st := field.NewPath("status")
	phases := []catalog.RestorePhase{catalog.RestorePending, catalog.RestoreRunning, catalog.RestoreFailed,
		catalog.RestoreSucceeded, catalog.RestoreInvalid, catalog.RestorePhaseUnknown}
	errs := registry.Enum(st.Child("phase"), r.Status.Phase, true, phases...)
	for name, c := range r.Status.Components {
		errs = append(errs, registry.Enum(st.Child("components").Key(name).Child("phase"), c.Phase, true, phases...)...)
	}
	for name, hooks := range map[string][]catalog.HookExecutionStatus{"preHooks": r.Status.Hooks.PreHooks, "postHooks": r.Status.Hooks.PostHooks} {
		for i, h := range hooks {
			errs = append(errs, registry.Enum(st.Child("hooks", name).Index(i).Child("phase"), h.Phase, true,
				catalog.HookExecutionPending, catalog.HookExecutionSucceeded, catalog.HookExecutionFailed)...)
		}
	}
	return errs
}

// GetAttrs returns the labels and the selectable fields of a RestoreSession
// (v1alpha1.SelectableFields("RestoreSession")).
func GetAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	r, ok := obj.(*catalog.RestoreSession)
	if !ok {
		return nil, nil, fmt.Errorf("not a RestoreSession: %T", obj)
	}
	return labels.Set(r.Labels), generic.AddObjectMetaFieldsSet(fields.Set{
		"spec.dataSource.repository": r.Spec.DataSource.Repository,
		"status.phase":               string(r.Status.Phase),
	}, &r.ObjectMeta, true), nil
}

// Table prints RestoreSessions with upstream's printer columns.
var Table = registry.TableConvertor{
	Resource: catalog.Resource("restoresessions"),
	Columns: []registry.Column{
		{Name: "Repository", Type: "string", Description: "The Repository restored from."},
		{Name: "Phase", Type: "string", Description: "The phase of the restore."},
		{Name: "Duration", Type: "string", Description: "How long the restore took."},
	},
	Cells: func(obj runtime.Object) ([]any, error) {
		r, ok := obj.(*catalog.RestoreSession)
		if !ok {
			return nil, fmt.Errorf("not a RestoreSession: %T", obj)
		}
		return []any{r.Spec.DataSource.Repository, string(r.Status.Phase), r.Status.Duration}, nil
	},
}

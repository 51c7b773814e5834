// Package backupsessionrest is the REST storage of
// backupsessions.catalog.kubestash.com: one backup run of a session of a
// BackupConfiguration, kept in the first repository of that session.
package backupsessionrest

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/registry"
)

// Kind is how the common strategy handles a BackupSession.
var Kind = registry.Kind[*catalog.BackupSession]{
	File:           layout.KindBackupSession,
	Meta:           func(b *catalog.BackupSession) *metav1.ObjectMeta { return &b.ObjectMeta },
	Spec:           func(b *catalog.BackupSession) any { return b.Spec },
	ClearStatus:    func(b *catalog.BackupSession) { b.Status = catalog.BackupSessionStatus{} },
	CopyStatus:     func(b, old *catalog.BackupSession) { b.Status = old.Status },
	CopySpec:       func(b, old *catalog.BackupSession) { b.Spec = old.Spec },
	ValidateSpec:   validateSpec,
	ValidateStatus: validateStatus,
	ValidateSpecUpdate: func(b, old *catalog.BackupSession) field.ErrorList {
		// A session's spec is what triggered it; upstream's webhook makes
		// it immutable too.
		return registry.Immutable(field.NewPath("spec"), b.Spec, old.Spec)
	},
}

func validateSpec(b *catalog.BackupSession) field.ErrorList {
	inv := field.NewPath("spec", "invoker")
	errs := registry.Required(inv.Child("name"), b.Spec.Invoker.Name, "the BackupConfiguration this backup belongs to")
	if b.Spec.Invoker.Kind != "" && b.Spec.Invoker.Kind != corev1alpha1.ResourceKindBackupConfiguration {
		errs = append(errs, field.NotSupported(inv.Child("kind"), b.Spec.Invoker.Kind, []string{corev1alpha1.ResourceKindBackupConfiguration}))
	}
	if g := b.Spec.Invoker.APIGroup; g != nil && *g != "" && *g != corev1alpha1.SchemeGroupVersion.Group {
		errs = append(errs, field.NotSupported(inv.Child("apiGroup"), *g, []string{corev1alpha1.SchemeGroupVersion.Group}))
	}
	errs = append(errs, registry.Required(field.NewPath("spec", "session"), b.Spec.Session, "the session of the BackupConfiguration")...)
	if b.Spec.RetryLeft < 0 {
		errs = append(errs, field.Invalid(field.NewPath("spec", "retryLeft"), b.Spec.RetryLeft, "must not be negative"))
	}
	return errs
}

func validateStatus(b *catalog.BackupSession) field.ErrorList {
	st := field.NewPath("status")
	errs := registry.Enum(st.Child("phase"), b.Status.Phase, true, catalog.BackupSessionPending, catalog.BackupSessionRunning,
		catalog.BackupSessionSucceeded, catalog.BackupSessionFailed, catalog.BackupSessionSkipped)
	for i, s := range b.Status.Snapshots {
		errs = append(errs, registry.Enum(st.Child("snapshots").Index(i).Child("phase"), s.Phase, true,
			catalog.SnapshotPending, catalog.SnapshotRunning, catalog.SnapshotSucceeded, catalog.SnapshotFailed)...)
	}
	for i, r := range b.Status.RetentionPolicies {
		errs = append(errs, registry.Enum(st.Child("retentionPolicy").Index(i).Child("phase"), r.Phase, true,
			catalog.RetentionPolicyPending, catalog.RetentionPolicyApplied, catalog.RetentionPolicyFailedToApply)...)
	}
	for name, hooks := range map[string][]catalog.HookExecutionStatus{"preHooks": b.Status.Hooks.PreHooks, "postHooks": b.Status.Hooks.PostHooks} {
		for i, h := range hooks {
			errs = append(errs, registry.Enum(st.Child("hooks", name).Index(i).Child("phase"), h.Phase, true,
				catalog.HookExecutionPending, catalog.HookExecutionSucceeded, catalog.HookExecutionFailed)...)
		}
	}
	return errs
}

// GetAttrs returns the labels and the selectable fields of a BackupSession
// (v1alpha1.SelectableFields("BackupSession")).
func GetAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	b, ok := obj.(*catalog.BackupSession)
	if !ok {
		return nil, nil, fmt.Errorf("not a BackupSession: %T", obj)
	}
	return labels.Set(b.Labels), generic.AddObjectMetaFieldsSet(fields.Set{
		"spec.invoker.name": b.Spec.Invoker.Name,
		"spec.invoker.kind": b.Spec.Invoker.Kind,
		"spec.session":      b.Spec.Session,
		"status.phase":      string(b.Status.Phase),
	}, &b.ObjectMeta, true), nil
}

// Table prints BackupSessions with upstream's printer columns.
var Table = registry.TableConvertor{
	Resource: catalog.Resource("backupsessions"),
	Columns: []registry.Column{
		{Name: "Invoker-Type", Type: "string", Description: "The kind of the object that invoked the backup."},
		{Name: "Invoker-Name", Type: "string", Description: "The name of the object that invoked the backup."},
		{Name: "Phase", Type: "string", Description: "The phase of the backup."},
		{Name: "Duration", Type: "string", Description: "How long the backup took."},
	},
	Cells: func(obj runtime.Object) ([]any, error) {
		b, ok := obj.(*catalog.BackupSession)
		if !ok {
			return nil, fmt.Errorf("not a BackupSession: %T", obj)
		}
		return []any{b.Spec.Invoker.Kind, b.Spec.Invoker.Name, string(b.Status.Phase), b.Status.Duration}, nil
	},
}

package v1alpha1_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TestUnsupportedFieldRules: fields that would be accepted and never acted
// upon are refused by the CRDs' CEL rules, naming the field; their
// supported values pass.
func TestUnsupportedFieldRules(t *testing.T) {
	for _, c := range []struct {
		name    string
		crd     string
		path    []string
		fld     *field.Path
		obj     map[string]any
		wantErr string // empty: accepted
	}{
		{name: "BackupStorage runtimeSettings", crd: "storage.kubestash.com_backupstorages.yaml", path: []string{"spec"}, fld: field.NewPath("spec"),
			obj:     map[string]any{"storage": map[string]any{"provider": "local", "local": map[string]any{"mountPath": "/b", "hostPath": map[string]any{"path": "/b"}}}, "runtimeSettings": map[string]any{"pod": map[string]any{"podLabels": map[string]any{"a": "b"}}}},
			wantErr: "spec.runtimeSettings: Invalid value: runtimeSettings is not supported yet"},
		{name: "BackupStorage empty runtimeSettings", crd: "storage.kubestash.com_backupstorages.yaml", path: []string{"spec"}, fld: field.NewPath("spec"),
			obj: map[string]any{"storage": map[string]any{"provider": "local", "local": map[string]any{"mountPath": "/b", "hostPath": map[string]any{"path": "/b"}}}, "runtimeSettings": map[string]any{}}},
		{name: "task targetVolumes", crd: "core.kubestash.com_backupconfigurations.yaml", path: []string{"spec", "sessions", "[]", "addon", "tasks", "[]"},
			fld:     field.NewPath("spec", "sessions").Index(0).Child("addon", "tasks").Index(0),
			obj:     map[string]any{"name": "logical-backup", "targetVolumes": map[string]any{}},
			wantErr: "spec.sessions[0].addon.tasks[0].targetVolumes: Invalid value: targetVolumes is not supported yet; remove it"},
		{name: "task without targetVolumes", crd: "core.kubestash.com_backupconfigurations.yaml", path: []string{"spec", "sessions", "[]", "addon", "tasks", "[]"},
			fld: field.NewPath("spec", "sessions").Index(0).Child("addon", "tasks").Index(0), obj: map[string]any{"name": "logical-backup"}},
		{name: "Addon driver", crd: "addons.kubestash.com_addons.yaml", path: []string{"spec", "backupTasks", "[]"}, fld: field.NewPath("spec", "backupTasks").Index(0),
			obj:     map[string]any{"name": "t", "driver": "WalG", "executor": "Job"},
			wantErr: "spec.backupTasks[0].driver: Invalid value: only driver Restic is supported yet"},
		{name: "Addon executor", crd: "addons.kubestash.com_addons.yaml", path: []string{"spec", "restoreTasks", "[]"}, fld: field.NewPath("spec", "restoreTasks").Index(0),
			obj:     map[string]any{"name": "t", "driver": "Restic", "executor": "Sidecar"},
			wantErr: "spec.restoreTasks[0].executor: Invalid value: only executor Job is supported yet"},
		{name: "pvc-addon's task", crd: "addons.kubestash.com_addons.yaml", path: []string{"spec", "backupTasks", "[]"}, fld: field.NewPath("spec", "backupTasks").Index(0),
			obj: map[string]any{"name": "logical-backup", "driver": "Restic", "executor": "Job", "singleton": true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := crdSchema(t, c.crd, c.path...)
			errs := celErrors(t, s, false, c.fld, c.obj)
			if c.wantErr == "" {
				assert.Empty(t, errs)
				return
			}
			require.Len(t, errs, 1)
			assert.Contains(t, errs[0].Error(), c.wantErr)
		})
	}
}

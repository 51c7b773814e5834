package v1alpha1_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

// crdSchema reads a CRD from artifacts/crds and returns the structural
// schema at path (property names from the root).
func crdSchema(t *testing.T, file string, path ...string) *schema.Structural {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "artifacts", "crds", file))
	require.NoError(t, err)
	var crd apiextensionsv1.CustomResourceDefinition
	require.NoError(t, yaml.Unmarshal(b, &crd))
	v1 := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	for _, p := range path {
		if p == "[]" {
			v1 = v1.Items.Schema
			continue
		}
		next, ok := v1.Properties[p]
		require.True(t, ok, "no property %s", p)
		v1 = &next
	}
	var internal apiextensions.JSONSchemaProps
	require.NoError(t, apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v1, &internal, nil))
	s, err := schema.NewStructural(&internal)
	require.NoError(t, err)
	return s
}

func celErrors(t *testing.T, s *schema.Structural, root bool, fld *field.Path, obj any) field.ErrorList {
	t.Helper()
	errs, _ := cel.NewValidator(s, root, celconfig.PerCallLimit).Validate(context.Background(), fld, s, obj, nil, celconfig.RuntimeCELCostBudget)
	return errs
}

// TestScheduleRule: the CRD's CEL rule on a session's schedule accepts what
// the CronJob controller accepts and refuses the rest naming the value.
func TestScheduleRule(t *testing.T) {
	s := crdSchema(t, "core.kubestash.com_backupconfigurations.yaml", "spec", "sessions", "[]", "scheduler", "schedule")
	fld := field.NewPath("spec", "sessions").Index(0).Child("scheduler", "schedule")
	cases := []struct {
		schedule string
		valid    bool
	}{
		{"*/5 * * * *", true},
		{"0 0 1 1 *", true},
		{"@daily", true},
		{"@every 1h30m", true},
		{"CRON_TZ=Europe/Paris 0 */6 * * MON-FRI", true},
		{"every five minutes", false},
		{"* * * *", false},
		{"", false},
	}
	for _, c := range cases {
		t.Run(c.schedule, func(t *testing.T) {
			errs := celErrors(t, s, false, fld, c.schedule)
			if c.valid {
				assert.Empty(t, errs)
				return
			}
			require.Len(t, errs, 1)
			assert.Equal(t, `spec.sessions[0].scheduler.schedule: Invalid value: "`+c.schedule+`": not a valid cron expression: five fields (minute hour day-of-month month day-of-week), `+
				`@hourly, @daily, @weekly, @monthly, @yearly or @every <duration>, optionally after CRON_TZ=<zone>`, errs[0].Error())
		})
	}
}

// TestUpstreamRestoreSessionRefused: any core.kubestash.com RestoreSession
// is refused with the apiVersion to use instead.
func TestUpstreamRestoreSessionRefused(t *testing.T) {
	s := crdSchema(t, "core.kubestash.com_upstreamrestoresessions.yaml")
	errs := celErrors(t, s, true, nil, map[string]any{
		"apiVersion": "core.kubestash.com/v1alpha1", "kind": "RestoreSession",
		"metadata": map[string]any{"name": "pvc-restore"}, "spec": map[string]any{},
	})
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Error(), "change the manifest's apiVersion from core.kubestash.com/v1alpha1 to catalog.kubestash.com/v1alpha1")
}

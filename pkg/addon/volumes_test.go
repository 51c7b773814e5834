package addon

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"

	addonsv1alpha1 "kubestash.dev/kubestash/pkg/apis/addons/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
)

// refusedVolumeSources are the members of addonsv1alpha1.VolumeSource a
// user may not set. With UserVolumeSources they must name every member.
var refusedVolumeSources = []string{"hostPath", "nfs"}

// userVolumeCase is one addonVolumes source, judged alike by the Go rule
// (ValidateAddonVolumes, used by the catalog server and the Job builder)
// and by the BackupConfiguration CRD's CEL rule.
type userVolumeCase struct {
	name   string
	source *addonsv1alpha1.VolumeSource
	// refused is the member refused by name (empty: allowed).
	refused string
}

func vs(s storagev1alpha1.VolumeSource) *addonsv1alpha1.VolumeSource {
	return &addonsv1alpha1.VolumeSource{VolumeSource: s}
}

var userVolumeCases = []userVolumeCase{
	{name: "persistentVolumeClaim", source: vs(storagev1alpha1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "scratch"}})},
	{name: "emptyDir", source: vs(storagev1alpha1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}})},
	{name: "configMap", source: vs(storagev1alpha1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}})},
	{name: "secret", source: vs(storagev1alpha1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}})},
	{name: "volumeClaimTemplate", source: &addonsv1alpha1.VolumeSource{VolumeClaimTemplate: &storagev1alpha1.PersistentVolumeClaimTemplate{}}},
	{name: "hostPath", source: vs(storagev1alpha1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc"}}), refused: "hostPath"},
	{name: "nfs", source: vs(storagev1alpha1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "10.0.0.1", Path: "/exports"}}), refused: "nfs"},
}

func TestValidateAddonVolumes(t *testing.T) {
	fld := field.NewPath("spec", "addon", "tasks").Index(0).Child("addonVolumes")
	for _, c := range userVolumeCases {
		t.Run(c.name, func(t *testing.T) {
			errs := ValidateAddonVolumes(fld, []corev1alpha1.AddonVolumeInfo{{Name: "kubestash-tmp-volume", Source: c.source}})
			if c.refused == "" {
				assert.Empty(t, errs)
				return
			}
			require.Len(t, errs, 1)
			assert.Equal(t, field.ErrorTypeForbidden, errs[0].Type)
			assert.Equal(t, "spec.addon.tasks[0].addonVolumes[0].source."+c.refused, errs[0].Field)
			assert.Equal(t, UserVolumeSourceMessage, errs[0].Detail)
		})
	}
	t.Run("no source overrides nothing", func(t *testing.T) {
		assert.Empty(t, ValidateAddonVolumes(fld, []corev1alpha1.AddonVolumeInfo{{Name: "v"}}))
	})
	t.Run("an empty source", func(t *testing.T) {
		errs := ValidateAddonVolumes(fld, []corev1alpha1.AddonVolumeInfo{{Name: "v", Source: &addonsv1alpha1.VolumeSource{}}})
		require.Len(t, errs, 1)
		assert.Equal(t, field.ErrorTypeRequired, errs[0].Type)
		assert.Equal(t, "spec.addon.tasks[0].addonVolumes[0].source", errs[0].Field)
	})
	t.Run("a hostPath beside an allowed source", func(t *testing.T) {
		errs := ValidateAddonVolumes(fld, []corev1alpha1.AddonVolumeInfo{{Name: "ok", Source: userVolumeCases[0].source}, {Name: "v", Source: vs(storagev1alpha1.VolumeSource{
			EmptyDir: &corev1.EmptyDirVolumeSource{}, HostPath: &corev1.HostPathVolumeSource{Path: "/"}})}})
		var got []string
		for _, e := range errs {
			got = append(got, string(e.Type)+" "+e.Field)
		}
		assert.ElementsMatch(t, []string{"FieldValueInvalid spec.addon.tasks[0].addonVolumes[1].source", "FieldValueForbidden spec.addon.tasks[0].addonVolumes[1].source.hostPath"}, got)
	})
}

// TestUserVolumeSourcesCoverTheType fails when a member is added to
// addonsv1alpha1.VolumeSource without deciding whether a user may set it:
// the Go rule would refuse it (it allows by name) but the CEL rule, which
// must name members, would not know it.
func TestUserVolumeSourcesCoverTheType(t *testing.T) {
	var members []string
	var walk func(reflect.Type)
	walk = func(rt reflect.Type) {
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.Anonymous && name == "" {
				walk(f.Type)
				continue
			}
			members = append(members, name)
		}
	}
	walk(reflect.TypeOf(addonsv1alpha1.VolumeSource{}))

	rule := ""
	for _, v := range addonVolumesSchema(t).Items.Schema.XValidations {
		if strings.Contains(v.Rule, "hostPath") {
			rule = v.Rule
		}
	}
	require.NotEmpty(t, rule, "the addonVolumes items have the CEL rule")
	for _, m := range members {
		allowed, refused := allowedForUser(m), contains(refusedVolumeSources, m)
		assert.True(t, allowed != refused, "member %s must be either allowed or refused", m)
		assert.Contains(t, rule, "has(self.source."+m+")", "the CEL rule names member %s", m)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// addonVolumesSchema returns the schema of the addonVolumes field of a
// BackupConfiguration session's task, from the generated CRD.
func addonVolumesSchema(t *testing.T) apiextensionsv1.JSONSchemaProps {
	crd := backupConfigurationCRD(t)
	s := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["sessions"].Items.Schema.
		Properties["addon"].Properties["tasks"].Items.Schema.Properties["addonVolumes"]
	require.NotNil(t, s.Items)
	return s
}

func backupConfigurationCRD(t *testing.T) *apiextensionsv1.CustomResourceDefinition {
	b, err := os.ReadFile(filepath.Join("..", "..", "artifacts", "crds", "core.kubestash.com_backupconfigurations.yaml"))
	require.NoError(t, err)
	var crd apiextensionsv1.CustomResourceDefinition
	require.NoError(t, yaml.Unmarshal(b, &crd))
	return &crd
}

// TestCRDRefusesUserVolumeSources runs the BackupConfiguration CRD's CEL
// rules, as kube-apiserver does, on a configuration whose session task
// sets each addonVolumes source: the same ones as the Go rule are refused,
// on the same field.
func TestCRDRefusesUserVolumeSources(t *testing.T) {
	crd := backupConfigurationCRD(t)
	var internal apiextensionsinternal.JSONSchemaProps
	require.NoError(t, apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(crd.Spec.Versions[0].Schema.OpenAPIV3Schema, &internal, nil))
	s, err := structuralschema.NewStructural(&internal)
	require.NoError(t, err)
	validator := cel.NewValidator(s, true, celconfig.PerCallLimit)
	require.NotNil(t, validator)

	for _, c := range userVolumeCases {
		t.Run(c.name, func(t *testing.T) {
			bc := &corev1alpha1.BackupConfiguration{}
			bc.APIVersion, bc.Kind = corev1alpha1.SchemeGroupVersion.String(), "BackupConfiguration"
			bc.Name, bc.Namespace = "bc", "demo"
			bc.Spec.Sessions = []corev1alpha1.Session{{
				SessionConfig: corev1alpha1.SessionConfig{Name: "daily"},
				Addon: &corev1alpha1.AddonInfo{Name: "pvc-addon", Tasks: []corev1alpha1.TaskReference{{
					Name: "logical-backup", AddonVolumes: []corev1alpha1.AddonVolumeInfo{{Name: "kubestash-tmp-volume", Source: c.source}},
				}}},
			}}
			obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(bc)
			require.NoError(t, err)
			// Through JSON, as the API server sees it (int64, no nil maps).
			raw, err := json.Marshal(obj)
			require.NoError(t, err)
			var u map[string]any
			require.NoError(t, json.Unmarshal(raw, &u))

			errs, _ := validator.Validate(context.Background(), nil, s, u, nil, celconfig.RuntimeCELCostBudget)
			var mine field.ErrorList
			for _, e := range errs {
				if strings.Contains(e.Field, "addonVolumes") {
					mine = append(mine, e)
				}
			}
			if c.refused == "" {
				assert.Empty(t, mine)
				return
			}
			require.Len(t, mine, 1, "%v", errs)
			assert.Equal(t, "spec.sessions[0].addon.tasks[0].addonVolumes[0].source", mine[0].Field)
			assert.Equal(t, UserVolumeSourceMessage, mine[0].Detail)
		})
	}
}

// TestPodSpecRefusesUserVolumeSources builds the backup Job's pod of the
// shipped pvc-addon with each addonVolumes override: an object stored
// before the admission rules still never becomes a Job with a hostPath.
func TestPodSpecRefusesUserVolumeSources(t *testing.T) {
	a := load[addonsv1alpha1.Addon](t, "pvc-addon.yaml")
	fn := load[addonsv1alpha1.Function](t, "pvc-backup-function.yaml")
	task, err := FindTask(a, "logical-backup", true)
	require.NoError(t, err)
	for _, c := range userVolumeCases {
		if c.source.VolumeClaimTemplate != nil {
			continue // allowed, but the builder does not make claims yet
		}
		t.Run(c.name, func(t *testing.T) {
			ref := &corev1alpha1.TaskReference{Name: "logical-backup", AddonVolumes: []corev1alpha1.AddonVolumeInfo{{Name: "kubestash-tmp-volume", Source: c.source}}}
			params, err := Params(task, ref, map[string]string{InputNamespace: "demo", InputBackupSession: "bc-s-1", InputPVCName: "target-pvc"})
			require.NoError(t, err)
			spec, err := PodSpec(Input{Task: task, Function: fn, Ref: ref, Field: field.NewPath("spec", "addon", "tasks").Index(0), Params: params})
			if c.refused == "" {
				require.NoError(t, err)
				require.Len(t, spec.Volumes, 2)
				assert.Equal(t, c.source.VolumeSource.ToCore(), spec.Volumes[1].VolumeSource)
				return
			}
			require.Error(t, err)
			assert.Equal(t, "task logical-backup: spec.addon.tasks[0].addonVolumes[0].source."+c.refused+": Forbidden: "+UserVolumeSourceMessage, err.Error())
			assert.Empty(t, spec.Volumes)
		})
	}
	t.Run("the Addon's own volumeTemplate may use any source", func(t *testing.T) {
		admin := task.DeepCopy()
		admin.VolumeTemplate[1].Source = vs(storagev1alpha1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/cache/kubestash"}})
		spec, err := PodSpec(Input{Task: admin, Function: fn, Ref: &corev1alpha1.TaskReference{Name: "logical-backup"}, Params: map[string]string{InputPVCName: "target-pvc"}})
		require.NoError(t, err)
		assert.Equal(t, "/var/cache/kubestash", spec.Volumes[1].HostPath.Path)
	})
}

// TestParamsCannotChangeTheSourceKind: a parameter is substituted into
// the volume source's JSON, so a value with quotes and braces must stay a
// string, not turn a persistentVolumeClaim into a hostPath.
func TestParamsCannotChangeTheSourceKind(t *testing.T) {
	a := load[addonsv1alpha1.Addon](t, "pvc-addon.yaml")
	fn := load[addonsv1alpha1.Function](t, "pvc-backup-function.yaml")
	task, err := FindTask(a, "logical-backup", true)
	require.NoError(t, err)
	inject := `x"},"persistentVolumeClaim":null,"hostPath":{"path":"/etc"},"z":{"a":"`
	for _, c := range []struct {
		name string
		ref  *corev1alpha1.TaskReference
		pvc  string // a target name that is not a name
		vol  int    // the volume the value goes into
	}{
		{name: "a user's param in an allowed override", ref: &corev1alpha1.TaskReference{Name: "logical-backup",
			Params: &runtime.RawExtension{Raw: mustJSON(t, map[string]any{"exclude": inject})},
			AddonVolumes: []corev1alpha1.AddonVolumeInfo{{Name: "kubestash-tmp-volume",
				Source: vs(storagev1alpha1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "${exclude}"}})}}},
			vol: 1,
		},
		{name: "a built-in input in the Addon's template", ref: &corev1alpha1.TaskReference{Name: "logical-backup"}, pvc: inject},
	} {
		t.Run(c.name, func(t *testing.T) {
			pvc := "target-pvc"
			if c.pvc != "" {
				pvc = c.pvc
			}
			params, err := Params(task, c.ref, map[string]string{InputNamespace: "demo", InputBackupSession: "bc-s-1", InputPVCName: pvc})
			require.NoError(t, err)
			spec, err := PodSpec(Input{Task: task, Function: fn, Ref: c.ref, Params: params})
			require.NoError(t, err)
			for _, v := range spec.Volumes {
				assert.Nil(t, v.HostPath, "volume %s", v.Name)
			}
			require.NotNil(t, spec.Volumes[c.vol].PersistentVolumeClaim)
			assert.Equal(t, inject, spec.Volumes[c.vol].PersistentVolumeClaim.ClaimName,
				"the value stays the claim's name (which the API server then refuses)")
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestCheckBuiltSource(t *testing.T) {
	fld := field.NewPath("spec", "addon", "tasks").Index(0).Child("addonVolumes").Index(0).Child("source")
	pvc := corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "x"}}
	host := corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}
	csi := corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "d"}}
	for _, c := range []struct {
		name         string
		tmpl, built  corev1.VolumeSource
		byUser       bool
		wantInErrMsg string
	}{
		{name: "unchanged", tmpl: pvc, built: pvc, byUser: true},
		{name: "changed kind", tmpl: pvc, built: host, byUser: false, wantInErrMsg: "parameters changed the volume source from persistentVolumeClaim"},
		{name: "admin hostPath", tmpl: host, built: host},
		{name: "user hostPath", tmpl: host, built: host, byUser: true, wantInErrMsg: "source.hostPath: Forbidden"},
		{name: "user csi: not on the allow-list", tmpl: csi, built: csi, byUser: true, wantInErrMsg: "source.csi: Forbidden"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkBuiltSource(fld, c.tmpl, c.built, c.byUser)
			if c.wantInErrMsg == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, c.wantInErrMsg)
		})
	}
}

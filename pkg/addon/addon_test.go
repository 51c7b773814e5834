package addon

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	addonsv1alpha1 "kubestash.dev/kubestash/pkg/apis/addons/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"namespace": "demo", "empty": ""}
	cases := map[string]string{
		"--namespace=${namespace:=default}": "--namespace=demo",
		"--x=${missing:=fallback}":          "--x=fallback",
		"--x=${missing:=}":                  "--x=",
		"--x=${empty:=d}":                   "--x=d",
		"${namespace}/${missing}":           "demo/",
		"no placeholders":                   "no placeholders",
	}
	for in, want := range cases {
		assert.Equal(t, want, Expand(in, vars), in)
	}
}

// load reads the shipped artifacts/addons manifests.
func load[T any](t *testing.T, name string) *T {
	b, err := os.ReadFile(filepath.Join("..", "..", "artifacts", "addons", name))
	require.NoError(t, err)
	var v T
	require.NoError(t, yaml.UnmarshalStrict(b, &v))
	return &v
}

func TestPodSpecForPVCBackup(t *testing.T) {
	a := load[addonsv1alpha1.Addon](t, "pvc-addon.yaml")
	fn := load[addonsv1alpha1.Function](t, "pvc-backup-function.yaml")
	task, err := FindTask(a, "logical-backup", true)
	require.NoError(t, err)
	ref := &corev1alpha1.TaskReference{Name: "logical-backup", Params: &runtime.RawExtension{Raw: []byte(`{"exclude":["*.tmp","cache"]}`)}}
	params, err := Params(task, ref, map[string]string{InputNamespace: "demo", InputBackupSession: "bc-s-1", InputPVCName: "target-pvc"})
	require.NoError(t, err)
	spec, err := PodSpec(Input{Task: task, Function: fn, Ref: ref, Params: params,
		Env: []corev1.EnvVar{{Name: "RESTIC_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "encrypt-secret"}, Key: "RESTIC_PASSWORD"}}}}})
	require.NoError(t, err)
	c := spec.Containers[0]
	assert.Equal(t, []string{"backup", "--namespace=demo", "--backupsession=bc-s-1", "--enable-cache=true",
		"--scratch-dir=/kubestash-tmp", "--exclude=*.tmp,cache", "--paths=/kubestash-data"}, c.Args)
	require.Len(t, spec.Volumes, 2)
	assert.Equal(t, "target-pvc", spec.Volumes[0].PersistentVolumeClaim.ClaimName)
	assert.NotNil(t, spec.Volumes[1].EmptyDir)
	assert.Equal(t, []string{"/kubestash-data", "/kubestash-tmp"}, []string{c.VolumeMounts[0].MountPath, c.VolumeMounts[1].MountPath})
	assert.Equal(t, "encrypt-secret", c.Env[0].ValueFrom.SecretKeyRef.Name, "secrets only by reference")
	assert.Empty(t, c.Env[0].Value)
	assert.Equal(t, corev1.RestartPolicyNever, spec.RestartPolicy)

	_, err = FindTask(a, "nope", true)
	assert.ErrorContains(t, err, `no backup task "nope"`)
}

func TestParamsRequired(t *testing.T) {
	task := &addonsv1alpha1.Task{Name: "t", Parameters: []addonsv1alpha1.ParameterDefinition{{Name: "paths", Required: true}, {Name: "x", Default: "1"}}}
	_, err := Params(task, nil, nil)
	assert.ErrorContains(t, err, "required params not set: paths")
	p, err := Params(task, &corev1alpha1.TaskReference{Params: &runtime.RawExtension{Raw: []byte(`{"paths":"/a","x":2,"flag":true}`)}}, nil)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"paths": "/a", "x": "2", "flag": "true"}, p)
	_, err = Params(task, &corev1alpha1.TaskReference{Params: &runtime.RawExtension{Raw: []byte(`{"paths":{"a":1}}`)}}, nil)
	assert.ErrorContains(t, err, "param paths")
}

// TestVariablesMayNotShadowTheControllers: a task variable named as one the
// controller sets would be overridden (the later entry wins), that is,
// accepted and ignored; it is refused naming it.
func TestVariablesMayNotShadowTheControllers(t *testing.T) {
	a := load[addonsv1alpha1.Addon](t, "pvc-addon.yaml")
	fn := load[addonsv1alpha1.Function](t, "pvc-backup-function.yaml")
	task, err := FindTask(a, "logical-backup", true)
	require.NoError(t, err)
	secret := corev1.EnvVar{Name: "RESTIC_PASSWORD_repo", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "encrypt-secret"}, Key: "RESTIC_PASSWORD"}}}
	for _, tc := range []struct {
		name    string
		vars    []corev1.EnvVar
		wantErr string
	}{
		{name: "a variable of its own name is passed", vars: []corev1.EnvVar{{Name: "TZ", Value: "UTC"}}},
		{name: "a variable named as a Secret's is refused", vars: []corev1.EnvVar{{Name: "TZ", Value: "UTC"}, {Name: "RESTIC_PASSWORD_repo", Value: "guess"}},
			wantErr: `spec.sessions[daily].addon.tasks[0].variables[1].name: Invalid value: "RESTIC_PASSWORD_repo": is set by the controller`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := &corev1alpha1.TaskReference{Name: "logical-backup", Variables: tc.vars}
			params, err := Params(task, ref, map[string]string{InputNamespace: "demo", InputBackupSession: "s", InputPVCName: "pvc"})
			require.NoError(t, err)
			spec, err := PodSpec(Input{Task: task, Function: fn, Ref: ref, Params: params, Env: []corev1.EnvVar{secret},
				Field: field.NewPath("spec", "sessions").Key("daily").Child("addon", "tasks").Index(0)})
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, append(append([]corev1.EnvVar(nil), tc.vars...), secret), spec.Containers[0].Env)
		})
	}
}

package executor

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
)

func TestApplyRuntimeSettings(t *testing.T) {
	fld := field.NewPath("spec", "addon", "containerRuntimeSettings")
	limits := &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}}
	for _, c := range []struct {
		name    string
		rs      *storagev1alpha1.ContainerRuntimeSettings
		wantErr string
		check   func(t *testing.T, c corev1.Container)
	}{
		{name: "none", check: func(t *testing.T, c corev1.Container) {
			assert.Equal(t, []corev1.EnvVar{{Name: "RESTIC_PASSWORD_r", Value: "ours"}}, c.Env)
		}},
		{name: "resources, security context and env applied", rs: &storagev1alpha1.ContainerRuntimeSettings{
			Resources:       limits,
			SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To(int64(0)), Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"DAC_OVERRIDE"}}},
			Env:             []corev1.EnvVar{{Name: "GOMAXPROCS", Value: "1"}},
		}, check: func(t *testing.T, c corev1.Container) {
			assert.Equal(t, *limits, c.Resources)
			assert.Equal(t, ptr.To(int64(0)), c.SecurityContext.RunAsUser)
			assert.Equal(t, []corev1.EnvVar{{Name: "GOMAXPROCS", Value: "1"}, {Name: "RESTIC_PASSWORD_r", Value: "ours"}}, c.Env, "the controller's variables come last and win")
		}},
		{name: "a variable of the agent's", rs: &storagev1alpha1.ContainerRuntimeSettings{Env: []corev1.EnvVar{{Name: "AWS_ACCESS_KEY_ID_r", Value: "x"}}},
			wantErr: "spec.addon.containerRuntimeSettings.env[0].name: Forbidden: variables starting with AWS_ are the agent's"},
		{name: "envFrom", rs: &storagev1alpha1.ContainerRuntimeSettings{EnvFrom: []corev1.EnvFromSource{{Prefix: "X_"}}},
			wantErr: "spec.addon.containerRuntimeSettings.envFrom: Forbidden"},
		{name: "nice", rs: &storagev1alpha1.ContainerRuntimeSettings{Nice: &storagev1alpha1.NiceSettings{Adjustment: ptr.To(int32(5))}},
			wantErr: "spec.addon.containerRuntimeSettings.nice: Forbidden: not supported yet"},
		{name: "privileged", rs: &storagev1alpha1.ContainerRuntimeSettings{SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}},
			wantErr: "spec.addon.containerRuntimeSettings.securityContext.privileged: Forbidden"},
	} {
		t.Run(c.name, func(t *testing.T) {
			job := &batchv1.Job{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "agent", Env: []corev1.EnvVar{{Name: "RESTIC_PASSWORD_r", Value: "ours"}}}}}}}}
			err := ApplyRuntimeSettings(job, c.rs, fld)
			if c.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.wantErr)
				return
			}
			require.NoError(t, err)
			c.check(t, job.Spec.Template.Spec.Containers[0])
		})
	}
}

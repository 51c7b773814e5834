package backupconfiguration

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
)

// TestSchedulerJobTemplate: every field of a session's
// scheduler.jobTemplate reaches the trigger CronJob, but the pod template,
// which is refused naming it.
func TestSchedulerJobTemplate(t *testing.T) {
	for _, c := range []struct {
		name    string
		jt      corev1alpha1.JobTemplate
		check   func(t *testing.T, js batchv1.JobSpec)
		invalid string
	}{
		{
			name: "applied",
			jt: corev1alpha1.JobTemplate{Parallelism: ptr.To(int32(1)), Completions: ptr.To(int32(1)),
				CompletionMode: ptr.To(batchv1.NonIndexedCompletion), Suspend: ptr.To(true), BackoffLimit: ptr.To(int32(3))},
			check: func(t *testing.T, js batchv1.JobSpec) {
				assert.Equal(t, ptr.To(int32(1)), js.Parallelism)
				assert.Equal(t, ptr.To(int32(1)), js.Completions)
				assert.Equal(t, ptr.To(batchv1.NonIndexedCompletion), js.CompletionMode)
				assert.Equal(t, ptr.To(true), js.Suspend)
				assert.Equal(t, ptr.To(int32(3)), js.BackoffLimit)
			},
		},
		{
			name:    "pod template refused",
			jt:      corev1alpha1.JobTemplate{Template: storagev1alpha1.PodTemplateSpec{Spec: storagev1alpha1.PodSpec{NodeSelector: map[string]string{"a": "b"}}}},
			invalid: "spec.sessions[daily].scheduler.jobTemplate.template: Forbidden: not supported yet",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := corev1alpha1.Session{SessionConfig: corev1alpha1.SessionConfig{Name: "daily",
				Scheduler: &corev1alpha1.SchedulerSpec{Schedule: "@daily", JobTemplate: c.jt}}}
			errs := checkScheduler(&s)
			if c.invalid != "" {
				require.Len(t, errs, 1)
				assert.Contains(t, errs[0], c.invalid)
				return
			}
			assert.Empty(t, errs)
			bc := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "bc"}}
			c.check(t, (&Reconciler{}).cronJob(bc, s).Spec.JobTemplate.Spec)
		})
	}
}

package backupconfiguration

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"
)

// drain returns the readiness events recorded so far.
func drain(r record.EventRecorder) []string {
	var out []string
	for {
		select {
		case e := <-r.(*record.FakeRecorder).Events:
			if strings.HasPrefix(e, "Warning NotReady ") || strings.HasPrefix(e, "Warning Invalid ") || strings.HasPrefix(e, "Normal Ready ") {
				out = append(out, e)
			}
		default:
			return out
		}
	}
}

func withoutSecret(name string) func(kube, _ *[]runtime.Object) {
	return func(kube, _ *[]runtime.Object) {
		var keep []runtime.Object
		for _, o := range *kube {
			if s, ok := o.(*corev1.Secret); ok && s.Name == name {
				continue
			}
			keep = append(keep, o)
		}
		*kube = keep
	}
}

// TestNotReadyEventOnChange: the NotReady Warning is recorded when the
// reason first appears or changes, not on every requeue; a recovery is
// recorded so the last event is never a stale reason.
func TestNotReadyEventOnChange(t *testing.T) {
	type step struct {
		before func(t *testing.T, e *env)
		want   []string // prefixes of the events this pass records
	}
	deletePVC := func(t *testing.T, e *env) {
		require.NoError(t, e.kube.CoreV1().PersistentVolumeClaims("demo").Delete(context.Background(), "target-pvc", metav1.DeleteOptions{}))
	}
	addSecret := func(t *testing.T, e *env) {
		_, err := e.kube.CoreV1().Secrets("demo").Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "encrypt-secret"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte("x")}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{
			name: "same reason five times: one Warning",
			steps: []step{
				{want: []string{"Warning NotReady"}}, {}, {}, {}, {},
			},
		},
		{
			name: "reason changes: a new Warning, then quiet",
			steps: []step{
				{want: []string{"Warning NotReady"}},
				{},
				{before: deletePVC, want: []string{"Warning NotReady"}},
				{},
			},
		},
		{
			name: "becomes invalid: an Invalid Warning replaces the NotReady one, once",
			steps: []step{
				{want: []string{"Warning NotReady"}},
				{before: func(t *testing.T, e *env) {
					bc := e.bc(t)
					bc.Spec.Target.Namespace = "other"
					_, err := e.ks.CoreV1alpha1().BackupConfigurations("demo").Update(context.Background(), bc, metav1.UpdateOptions{})
					require.NoError(t, err)
				}, want: []string{"Warning Invalid"}},
				{},
			},
		},
		{
			name: "dependency appears: a Normal Ready replaces the Warning",
			steps: []step{
				{want: []string{"Warning NotReady"}},
				{before: addSecret, want: []string{"Normal Ready"}},
				{},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, withoutSecret("encrypt-secret"))
			for i, s := range c.steps {
				if s.before != nil {
					s.before(t, e)
				}
				_, _ = e.reconcile(t)
				got := drain(e.r.Recorder)
				require.Len(t, got, len(s.want), "pass %d: %v", i, got)
				for j, w := range s.want {
					assert.True(t, strings.HasPrefix(got[j], w), "pass %d event %d: %q, want %q", i, j, got[j], w)
				}
			}
		})
	}
}

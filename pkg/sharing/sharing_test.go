package sharing

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestCheck(t *testing.T) {
	ns := func(name, shared string) *corev1.Namespace {
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if shared != "" {
			n.Annotations = map[string]string{Annotation: shared}
		}
		return n
	}
	for _, c := range []struct {
		name     string
		from, of string
		objects  []runtime.Object
		allowed  bool
	}{
		{name: "own namespace", from: "a", of: "a", allowed: true},
		{name: "listed", from: "a", of: "b", objects: []runtime.Object{ns("b", "c, a")}, allowed: true},
		{name: "not listed", from: "a", of: "b", objects: []runtime.Object{ns("b", "c")}},
		{name: "a prefix is not a name", from: "a", of: "b", objects: []runtime.Object{ns("b", "ab,a-b")}},
		{name: "no annotation", from: "a", of: "b", objects: []runtime.Object{ns("b", "")}},
		{name: "missing namespace", from: "a", of: "b"},
	} {
		t.Run(c.name, func(t *testing.T) {
			refused, err := Check(context.Background(), kubefake.NewClientset(c.objects...), c.from, c.of)
			require.NoError(t, err)
			if c.allowed {
				assert.NoError(t, refused)
				return
			}
			require.Error(t, refused)
			assert.Contains(t, refused.Error(), Annotation)
		})
	}
}

// TestCheckTellsNothing: a refusal reads the same for a namespace that
// exists and one that does not.
func TestCheckTellsNothing(t *testing.T) {
	ctx := context.Background()
	kube := kubefake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "b"}})
	existing, err := Check(ctx, kube, "a", "b")
	require.NoError(t, err)
	kube = kubefake.NewClientset()
	missing, err := Check(ctx, kube, "a", "b")
	require.NoError(t, err)
	assert.Equal(t, existing.Error(), missing.Error())
}

// TestCheckFailureIsNotARefusal: a failed lookup is retried, not taken as
// "not shared".
func TestCheckFailureIsNotARefusal(t *testing.T) {
	kube := kubefake.NewClientset()
	kube.PrependReactor("get", "namespaces", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	refused, err := Check(context.Background(), kube, "a", "b")
	assert.NoError(t, refused)
	assert.ErrorContains(t, err, "connection refused")
}

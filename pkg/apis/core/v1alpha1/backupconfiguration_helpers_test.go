package v1alpha1

import (
	"testing"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kubestash.dev/kubestash/pkg/apis/kmapi"
)

func TestBackendOf(t *testing.T) {
	bc := &BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo"},
		Spec: BackupConfigurationSpec{Backends: []BackendReference{
			{Name: "a", StorageRef: &kmapi.ObjectReference{Name: "st-a"}, RetentionPolicy: &kmapi.ObjectReference{Namespace: "shared", Name: "keep"}},
			{Name: "b", StorageRef: &kmapi.ObjectReference{Namespace: "other", Name: "st-b"}},
		}},
	}
	st, ok := bc.StorageOf(RepositoryInfo{})
	assert.True(t, ok)
	assert.Equal(t, kmapi.ObjectReference{Namespace: "demo", Name: "st-a"}, st, "no backend named: the first, in the configuration's namespace")
	st, ok = bc.StorageOf(RepositoryInfo{Backend: "b"})
	assert.True(t, ok)
	assert.Equal(t, kmapi.ObjectReference{Namespace: "other", Name: "st-b"}, st)
	rp, ok := bc.RetentionPolicyOf(RepositoryInfo{Backend: "a"})
	assert.True(t, ok)
	assert.Equal(t, kmapi.ObjectReference{Namespace: "shared", Name: "keep"}, rp)
	_, ok = bc.RetentionPolicyOf(RepositoryInfo{Backend: "b"})
	assert.False(t, ok, "backend b has no policy")
	assert.Nil(t, bc.BackendOf(RepositoryInfo{Backend: "nope"}))
}

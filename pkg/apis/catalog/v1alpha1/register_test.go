/*
Copyright The KubeStash Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package v1alpha1

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
)

func newScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	scheme := runtime.NewScheme()
	require.NoError(t, AddToScheme(scheme))
	return scheme
}

func TestFieldLabelConversion(t *testing.T) {
	scheme := newScheme(t)
	supported := map[string][]string{
		ResourceKindRepository:     {"metadata.name", "metadata.namespace", "spec.storageRef.name", "status.phase"},
		ResourceKindSnapshot:       {"metadata.name", "metadata.namespace", "spec.repository", "spec.session", "spec.backupSession", "status.phase"},
		ResourceKindBackupSession:  {"metadata.name", "metadata.namespace", "spec.invoker.name", "spec.invoker.kind", "spec.session", "status.phase"},
		ResourceKindRestoreSession: {"metadata.name", "metadata.namespace", "spec.dataSource.repository", "status.phase"},
	}
	for kind, labels := range supported {
		gvk := SchemeGroupVersion.WithKind(kind)
		assert.ElementsMatch(t, labels, SelectableFields(kind), kind)
		for _, label := range labels {
			l, v, err := scheme.ConvertFieldLabel(gvk, label, "x")
			if assert.NoError(t, err, "%s %s", kind, label) {
				assert.Equal(t, label, l)
				assert.Equal(t, "x", v)
			}
		}
		_, _, err := scheme.ConvertFieldLabel(gvk, "spec.nope", "x")
		assert.Error(t, err, kind)
	}
	// A field of one kind is not selectable on another.
	_, _, err := scheme.ConvertFieldLabel(SchemeGroupVersion.WithKind(ResourceKindRepository), "spec.repository", "x")
	assert.Error(t, err)
	assert.Nil(t, SelectableFields("Unknown"))
}

func TestDefaults(t *testing.T) {
	scheme := newScheme(t)

	repo := &Repository{}
	scheme.Default(repo)
	assert.Equal(t, DeletionPolicyDelete, repo.Spec.DeletionPolicy)

	repo = &Repository{Spec: RepositorySpec{DeletionPolicy: DeletionPolicyWipeOut}}
	scheme.Default(repo)
	assert.Equal(t, DeletionPolicyWipeOut, repo.Spec.DeletionPolicy)

	snap := &Snapshot{}
	scheme.Default(snap)
	assert.Equal(t, DeletionPolicyDelete, snap.Spec.DeletionPolicy)
	assert.Equal(t, "v1", snap.Spec.Version)

	list := &SnapshotList{Items: []Snapshot{{Spec: SnapshotSpec{Version: "v2", DeletionPolicy: DeletionPolicyWipeOut}}, {}}}
	scheme.Default(list)
	assert.Equal(t, "v2", list.Items[0].Spec.Version)
	assert.Equal(t, DeletionPolicyWipeOut, list.Items[0].Spec.DeletionPolicy)
	assert.Equal(t, "v1", list.Items[1].Spec.Version)

	// The namespace of a RestoreSession's data source is left to the server.
	rs := &RestoreSession{}
	scheme.Default(rs)
	assert.Empty(t, rs.Spec.DataSource.Namespace)
}

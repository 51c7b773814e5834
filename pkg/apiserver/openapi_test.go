package apiserver

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/kube-openapi/pkg/builder3"
	"k8s.io/kube-openapi/pkg/util"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
)

// TestOpenAPIModels builds the models as the server does for server-side
// apply, and converts every kind with them.
func TestOpenAPIModels(t *testing.T) {
	objs := []runtime.Object{
		&catalogv1alpha1.Repository{}, &catalogv1alpha1.Snapshot{},
		&catalogv1alpha1.BackupSession{}, &catalogv1alpha1.RestoreSession{},
	}
	var names []string
	for _, o := range objs {
		names = append(names, util.GetCanonicalTypeName(o))
	}
	models, err := builder3.BuildOpenAPIDefinitionsForResources(OpenAPIV3Config(), names...)
	require.NoError(t, err)

	snap := models["dev.kubestash.kubestash.pkg.apis.catalog.v1alpha1.Snapshot"]
	require.NotNil(t, snap, "definitions are named by model name")
	assert.Contains(t, snap.Extensions, "x-kubernetes-group-version-kind")
	for name := range models {
		assert.NotContains(t, name, "/", "no Go package paths in names")
	}

	tc, err := managedfields.NewTypeConverter(models, false)
	require.NoError(t, err)
	for kind, o := range map[string]runtime.Object{
		"Repository":     &catalogv1alpha1.Repository{Spec: catalogv1alpha1.RepositorySpec{Path: "/p"}},
		"Snapshot":       &catalogv1alpha1.Snapshot{Spec: catalogv1alpha1.SnapshotSpec{Repository: "r"}},
		"BackupSession":  &catalogv1alpha1.BackupSession{Spec: catalogv1alpha1.BackupSessionSpec{Session: "s"}},
		"RestoreSession": &catalogv1alpha1.RestoreSession{Spec: catalogv1alpha1.RestoreSessionSpec{DataSource: catalogv1alpha1.RestoreDataSource{Repository: "r"}}},
	} {
		t.Run(kind, func(t *testing.T) {
			o.(metav1.Object).SetName("x")
			o.GetObjectKind().SetGroupVersionKind(catalogv1alpha1.SchemeGroupVersion.WithKind(kind))
			_, err := tc.ObjectToTyped(o)
			assert.NoError(t, err)
		})
	}
}

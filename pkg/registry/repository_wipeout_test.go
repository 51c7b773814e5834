package registry_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/registry/rest"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/registry"
	"kubestash.dev/kubestash/pkg/registry/catalog/repositoryrest"
	"kubestash.dev/kubestash/pkg/store"
)

// TestDeleteRepositoryWipeOut: a Repository with deletionPolicy WipeOut
// carries the WipeOut finalizer, so an explicit delete only marks it
// deleted (its file stays, for the controller to remove the data); once
// the finalizer goes, the file goes and so does its entry in metadata.yaml.
// With Delete, the delete is immediate and metadata.yaml keeps the entry,
// as before. In a terminating namespace nothing is touched.
func TestDeleteRepositoryWipeOut(t *testing.T) {
	for _, c := range []struct {
		name        string
		policy      catalog.DeletionPolicy
		terminating bool
		// wantFinalizer: the object carries it and the delete waits.
		wantFinalizer bool
		wantListed    bool // metadata.yaml lists it after the delete
		wantFile      bool // repository.yaml is there after the delete
	}{
		{name: "WipeOut", policy: catalog.DeletionPolicyWipeOut, wantFinalizer: true},
		{name: "Delete", policy: catalog.DeletionPolicyDelete, wantListed: true},
		{name: "WipeOut in a terminating namespace", policy: catalog.DeletionPolicyWipeOut, terminating: true, wantFinalizer: true, wantListed: true, wantFile: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			local, err := backend.NewLocal(dir)
			require.NoError(t, err)
			scheme := newScheme()
			tmpl := store.DefaultConfig()
			tmpl.PollInterval = 0
			cat := &registry.Catalog{Codec: layout.NewFileCodec(scheme), Backends: staticBackends{"demo/local": local},
				Discovery: layout.NewDiscovery(0), Template: tmpl, Version: "test"}
			namespaces := &fakeNamespaces{}
			repos, _, err := repositoryrest.NewREST(scheme, cat, namespaces)
			require.NoError(t, err)
			t.Cleanup(repos.Destroy)
			ctx := nsContext("demo")
			for _, s := range cat.Stores() {
				require.NoError(t, s.WaitReady(ctx))
			}
			obj, err := repos.Create(ctx, &catalog.Repository{
				ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: "demo"},
				Spec:       catalog.RepositorySpec{StorageRef: kmapi.ObjectReference{Name: "local"}, Path: "/team/repo", DeletionPolicy: c.policy},
			}, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
			require.NoError(t, err)
			assert.Equal(t, c.wantFinalizer, slices.Contains(obj.(*catalog.Repository).Finalizers, catalogv1alpha1.FinalizerWipeOut), "finalizer on create")

			if c.terminating {
				namespaces.set("demo", true)
			}
			_, done, err := repos.Delete(ctx, "repo", rest.ValidateAllObjectFunc, &metav1.DeleteOptions{})
			require.NoError(t, err)
			file := filepath.Join(dir, "team", "repo", "repository.yaml")
			if c.wantFinalizer && !c.terminating {
				assert.False(t, done, "the delete waits for the controller")
				_, err := os.Stat(file)
				require.NoError(t, err, "the file stays until the data is gone")
				cur, err := repos.Get(ctx, "repo", &metav1.GetOptions{})
				require.NoError(t, err)
				r := cur.(*catalog.Repository).DeepCopy()
				require.NotNil(t, r.DeletionTimestamp)
				r.Finalizers = nil // the controller, once the data is gone
				_, _, err = repos.Update(ctx, "repo", rest.DefaultUpdatedObjectInfo(r), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
				require.NoError(t, err)
			}
			_, err = os.Stat(file)
			assert.Equal(t, c.wantFile, err == nil, "repository.yaml there: %v", err)
			m, _, err := layout.ReadMeta(ctx, local)
			require.NoError(t, err)
			listed := false
			for _, r := range m.Repositories {
				listed = listed || r.Path == "/team/repo"
			}
			assert.Equal(t, c.wantListed, listed, "listed in metadata.yaml")
		})
	}
}

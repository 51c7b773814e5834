package registry_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/registry/rest"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/registry"
	"kubestash.dev/kubestash/pkg/registry/catalog/repositoryrest"
	"kubestash.dev/kubestash/pkg/registry/catalog/restoresessionrest"
	"kubestash.dev/kubestash/pkg/registry/catalog/snapshotrest"
	"kubestash.dev/kubestash/pkg/store"
)

// TestPlacementFollowsTheRepositoryFile: a bucket written by another
// cluster, whose repository.yaml names that cluster's BackupStorage
// (there/s3-storage), is read here through a BackupStorage of another name
// (here/imported). New Snapshots go next to repository.yaml, in the storage
// it is read from, even though a storage named like the storageRef is
// served too; updates of the Repository and its Snapshots stay in place.
func TestPlacementFollowsTheRepositoryFile(t *testing.T) {
	ctx := context.Background()
	scheme := newScheme()
	codec := layout.NewFileCodec(scheme)
	importedDir, otherDir := t.TempDir(), t.TempDir()
	imported, err := backend.NewLocal(importedDir)
	require.NoError(t, err)
	other, err := backend.NewLocal(otherDir)
	require.NoError(t, err)

	// What the other cluster left: metadata.yaml listing the repository
	// and its repository.yaml.
	_, err = layout.EnsureMeta(ctx, imported, "other-cluster")
	require.NoError(t, err)
	require.NoError(t, layout.AddRepository(ctx, imported, layout.RepositoryInfo{Name: "repo-x", Namespace: "demo", Path: "/team/repo-x"}))
	var buf bytes.Buffer
	require.NoError(t, codec.Encode(&catalog.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "repo-x", Namespace: "demo"},
		Spec: catalog.RepositorySpec{
			StorageRef:     kmapi.ObjectReference{Name: "s3-storage", Namespace: "there"},
			Path:           "/team/repo-x",
			DeletionPolicy: catalog.DeletionPolicyDelete,
		},
	}, &buf))
	_, err = imported.Put(ctx, "team/repo-x/repository.yaml", buf.Bytes(), backend.PutOptions{})
	require.NoError(t, err)

	tmpl := store.DefaultConfig()
	tmpl.PollInterval = 0
	cat := &registry.Catalog{
		Codec:     codec,
		Backends:  staticBackends{"here/imported": imported, "there/s3-storage": other},
		Discovery: layout.NewDiscovery(0),
		Template:  tmpl,
		Version:   "test",
	}
	namespaces := &fakeNamespaces{}
	repos, repoStatus, err := repositoryrest.NewREST(scheme, cat, namespaces)
	require.NoError(t, err)
	t.Cleanup(repos.Destroy)
	snaps, snapStatus, err := snapshotrest.NewREST(scheme, cat, namespaces)
	require.NoError(t, err)
	t.Cleanup(snaps.Destroy)
	rctx := nsContext("demo")
	for _, s := range cat.Stores() {
		require.NoError(t, s.WaitReady(rctx))
	}

	loc, ok := cat.Stores()["repositories"].Location(registry.ResourcePrefix("repositories") + "/demo/repo-x")
	require.True(t, ok, "the repository is indexed")
	assert.Equal(t, store.Location{Storage: "here/imported", Key: "team/repo-x/repository.yaml"}, loc)

	_, err = snaps.Create(rctx, &catalog.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "snap-1", Namespace: "demo"},
		Spec:       catalog.SnapshotSpec{Repository: "repo-x", Session: "daily"},
	}, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(importedDir, "team", "repo-x", "snapshots", "snap-1.yaml"), "next to repository.yaml")
	entries, err := os.ReadDir(otherDir)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing is written to the storage that only shares the storageRef's name")

	cur, err := snaps.Get(rctx, "snap-1", &metav1.GetOptions{})
	require.NoError(t, err)
	upd := cur.(*catalog.Snapshot).DeepCopy()
	upd.Status.Phase = catalog.SnapshotSucceeded
	_, _, err = snapStatus.Update(rctx, "snap-1", rest.DefaultUpdatedObjectInfo(upd), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
	require.NoError(t, err, "a Snapshot of an imported repository can be updated")

	cur, err = repos.Get(rctx, "repo-x", &metav1.GetOptions{})
	require.NoError(t, err)
	r := cur.(*catalog.Repository).DeepCopy()
	r.Status.Phase = catalog.RepositoryReady
	_, _, err = repoStatus.Update(rctx, "repo-x", rest.DefaultUpdatedObjectInfo(r), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
	require.NoError(t, err, "an imported Repository stays where its file is when updated")
	data, err := os.ReadFile(filepath.Join(importedDir, "team", "repo-x", "repository.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(data), "phase: Ready")
	assert.Contains(t, string(data), "namespace: there", "the storageRef is kept as the other cluster wrote it")

	// A RestoreSession naming the Snapshot alone, as upstream allows, gets
	// its Repository from it, and its file goes next to it.
	restores, _, err := restoresessionrest.NewREST(scheme, cat, namespaces)
	require.NoError(t, err)
	t.Cleanup(restores.Destroy)
	out, err := restores.Create(rctx, &catalog.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: "restore-1", Namespace: "demo"},
		Spec:       catalog.RestoreSessionSpec{DataSource: catalog.RestoreDataSource{Snapshot: "snap-1"}},
	}, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
	require.NoError(t, err)
	assert.Equal(t, "repo-x", out.(*catalog.RestoreSession).Spec.DataSource.Repository)
	assert.FileExists(t, filepath.Join(importedDir, "team", "repo-x", "restoresessions", "restore-1.yaml"))
	_, err = restores.Create(rctx, &catalog.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: "restore-2", Namespace: "demo"},
		Spec:       catalog.RestoreSessionSpec{DataSource: catalog.RestoreDataSource{Snapshot: "no-such-snapshot"}},
	}, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
	require.True(t, apierrors.IsInvalid(err), "%v", err)
	assert.Contains(t, err.Error(), "spec.dataSource.repository")
	assert.Contains(t, err.Error(), "Snapshot demo/no-such-snapshot was not found")
	_, err = restores.Create(rctx, &catalog.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: "restore-3", Namespace: "demo"},
		Spec:       catalog.RestoreSessionSpec{DataSource: catalog.RestoreDataSource{Snapshot: "latest"}},
	}, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
	require.True(t, apierrors.IsInvalid(err), "latest needs the Repository: %v", err)
}

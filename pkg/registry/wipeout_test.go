package registry_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/registry/rest"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/registry/catalog/repositoryrest"
	"kubestash.dev/kubestash/pkg/registry/catalog/snapshotrest"
)

// TestDeleteSnapshotWipeOut: deleting a Snapshot removes its file; with
// deletionPolicy WipeOut it first leaves a forget mark in its repository
// naming the restic snapshots of its components, and never touches restic
// data. Delete, dry runs, pending finalizers and terminating namespaces
// write no mark.
func TestDeleteSnapshotWipeOut(t *testing.T) {
	dir, cat, scheme := localCatalog(t)
	namespaces := &fakeNamespaces{}
	repos, _, err := repositoryrest.NewREST(scheme, cat, namespaces)
	require.NoError(t, err)
	t.Cleanup(repos.Destroy)
	snaps, snapStatus, err := snapshotrest.NewREST(scheme, cat, namespaces)
	require.NoError(t, err)
	t.Cleanup(snaps.Destroy)
	ctx := nsContext("demo")
	for _, s := range cat.Stores() {
		require.NoError(t, s.WaitReady(ctx))
	}
	_, err = repos.Create(ctx, &catalog.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: "demo"},
		Spec:       catalog.RepositorySpec{StorageRef: kmapi.ObjectReference{Name: "local"}, Path: "/demo/repo"},
	}, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
	require.NoError(t, err)
	// Restic data, which this code must never touch.
	resticFile := filepath.Join(dir, "demo", "repo", "repository", "v1", "daily", "dump", "config")
	require.NoError(t, os.MkdirAll(filepath.Dir(resticFile), 0o755))
	require.NoError(t, os.WriteFile(resticFile, []byte("restic"), 0o600))

	// newSnapshot makes a Snapshot whose one component has two restic
	// snapshots.
	newSnapshot := func(t *testing.T, name string, policy catalog.DeletionPolicy, finalizers ...string) *catalog.Snapshot {
		t.Helper()
		obj, err := snaps.Create(ctx, &catalog.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo", Finalizers: finalizers},
			Spec:       catalog.SnapshotSpec{Repository: "repo", Session: "daily", SnapshotID: "01HK6Z2Q7V3N4K5P6R7S8T9V0W", DeletionPolicy: policy},
		}, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
		require.NoError(t, err)
		s := obj.(*catalog.Snapshot).DeepCopy()
		s.Status.Phase = catalog.SnapshotSucceeded
		s.Status.Components = map[string]catalog.Component{"dump": {
			Path: "repository/v1/daily/dump", Phase: catalog.ComponentPhaseSucceeded, Driver: catalog.DriverRestic,
			ResticStats: []catalog.ResticStats{
				{Summary: &catalog.ResticSummary{ID: "f28441a36b2167d6", HostPath: "/kubestash-data"}},
				{Summary: &catalog.ResticSummary{ID: "0a1b2c3d4e5f6789", HostPath: "/other"}},
				{Progress: &catalog.ResticProgress{PercentDone: "100.00%"}},
			},
		}}
		obj, _, err = snapStatus.Update(ctx, name, rest.DefaultUpdatedObjectInfo(s), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
		require.NoError(t, err)
		return obj.(*catalog.Snapshot)
	}
	snapFile := func(name string) string { return filepath.Join(dir, "demo", "repo", "snapshots", name+".yaml") }
	markFile := func(name string) string { return filepath.Join(dir, "demo", "repo", layout.ForgetDir, name+".yaml") }
	readMark := func(t *testing.T, name string) *layout.ForgetMark {
		t.Helper()
		local, err := backend.NewLocal(dir)
		require.NoError(t, err)
		m, _, err := layout.ReadForgetMark(context.Background(), local, "demo/repo/"+layout.ForgetDir+"/"+name+".yaml")
		require.NoError(t, err)
		return m
	}

	t.Run("WipeOut leaves a forget mark with the restic snapshot ids", func(t *testing.T) {
		s := newSnapshot(t, "wiped", catalog.DeletionPolicyWipeOut)
		_, _, err := snaps.Delete(ctx, "wiped", rest.ValidateAllObjectFunc, &metav1.DeleteOptions{})
		require.NoError(t, err)
		assert.NoFileExists(t, snapFile("wiped"))
		m := readMark(t, "wiped")
		require.Len(t, m.Snapshots, 1)
		got := m.Snapshots[0]
		assert.Equal(t, "wiped", got.Name)
		assert.Equal(t, "demo", got.Namespace)
		assert.Equal(t, string(s.UID), got.UID)
		assert.Equal(t, "repo", got.Repository)
		assert.Equal(t, "01HK6Z2Q7V3N4K5P6R7S8T9V0W", got.SnapshotID)
		assert.False(t, got.DeletedAt.IsZero())
		assert.Equal(t, []layout.ForgetComponent{{Name: "dump", Path: "repository/v1/daily/dump",
			ResticSnapshots: []string{"f28441a36b2167d6", "0a1b2c3d4e5f6789"}}}, got.Components)
		assert.FileExists(t, resticFile, "restic data is the controller's to forget")

		// The mark is no catalog object: a restart serves the same.
		require.NoError(t, cat.Stores()["snapshots"].Poll(ctx))
		_, err = snaps.Get(ctx, "wiped", &metav1.GetOptions{})
		assert.Error(t, err)
	})

	t.Run("Delete leaves the data and writes nothing", func(t *testing.T) {
		newSnapshot(t, "kept", catalog.DeletionPolicyDelete)
		_, _, err := snaps.Delete(ctx, "kept", rest.ValidateAllObjectFunc, &metav1.DeleteOptions{})
		require.NoError(t, err)
		assert.NoFileExists(t, snapFile("kept"))
		assert.NoFileExists(t, markFile("kept"))
	})

	t.Run("a dry run writes nothing", func(t *testing.T) {
		newSnapshot(t, "dry", catalog.DeletionPolicyWipeOut)
		_, _, err := snaps.Delete(ctx, "dry", rest.ValidateAllObjectFunc, &metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		require.NoError(t, err)
		assert.FileExists(t, snapFile("dry"))
		assert.NoFileExists(t, markFile("dry"))
	})

	t.Run("the mark is written when the last finalizer goes", func(t *testing.T) {
		newSnapshot(t, "finalized", catalog.DeletionPolicyWipeOut, "example.com/hold")
		_, deleted, err := snaps.Delete(ctx, "finalized", rest.ValidateAllObjectFunc, &metav1.DeleteOptions{})
		require.NoError(t, err)
		assert.False(t, deleted, "held by a finalizer")
		assert.FileExists(t, snapFile("finalized"))
		assert.NoFileExists(t, markFile("finalized"), "nothing is deleted yet")

		cur, err := snaps.Get(ctx, "finalized", &metav1.GetOptions{})
		require.NoError(t, err)
		s := cur.(*catalog.Snapshot).DeepCopy()
		s.Finalizers = nil
		_, _, err = snaps.Update(ctx, "finalized", rest.DefaultUpdatedObjectInfo(s), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
		require.NoError(t, err)
		assert.NoFileExists(t, snapFile("finalized"))
		assert.Len(t, readMark(t, "finalized").Snapshots, 1)
	})

	t.Run("a terminating namespace keeps the snapshot and writes nothing", func(t *testing.T) {
		newSnapshot(t, "terminating", catalog.DeletionPolicyWipeOut)
		namespaces.set("demo", true)
		defer namespaces.set("demo", false)
		_, _, err := snaps.Delete(ctx, "terminating", rest.ValidateAllObjectFunc, &metav1.DeleteOptions{})
		require.NoError(t, err)
		assert.FileExists(t, snapFile("terminating"))
		assert.NoFileExists(t, markFile("terminating"))
	})
}

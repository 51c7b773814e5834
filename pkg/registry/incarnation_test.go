package registry_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/registry/rest"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/registry"
	"kubestash.dev/kubestash/pkg/registry/catalog/repositoryrest"
	"kubestash.dev/kubestash/pkg/registry/catalog/restoresessionrest"
)

// TestSessionsOfAnEarlierIncarnation: after a namespace is deleted and
// created again, its old RestoreSessions stay in the bucket as history and
// are not served; a new one of the same name is a new restore.
func TestSessionsOfAnEarlierIncarnation(t *testing.T) {
	dir, cat, scheme := localCatalog(t)
	namespaces := &fakeNamespaces{}
	namespaces.recreate("demo", "uid-1", time.Now().Add(-time.Hour))
	repos, _, err := repositoryrest.NewREST(scheme, cat, namespaces)
	require.NoError(t, err)
	t.Cleanup(repos.Destroy)
	restores, restoreStatus, err := restoresessionrest.NewREST(scheme, cat, namespaces)
	require.NoError(t, err)
	t.Cleanup(restores.Destroy)
	ctx := nsContext("demo")
	for _, s := range cat.Stores() {
		require.NoError(t, s.WaitReady(ctx))
	}
	_, err = repos.Create(ctx, &catalog.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: "demo"},
		Spec:       catalog.RepositorySpec{StorageRef: kmapi.ObjectReference{Name: "local", Namespace: "demo"}, Path: "/repo"},
	}, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
	require.NoError(t, err)

	newRestore := func() *catalog.RestoreSession {
		return &catalog.RestoreSession{
			ObjectMeta: metav1.ObjectMeta{Name: "pvc-restore", Namespace: "demo"},
			Spec:       catalog.RestoreSessionSpec{DataSource: catalog.RestoreDataSource{Repository: "repo", Snapshot: "latest"}},
		}
	}
	out, err := restores.Create(ctx, newRestore(), rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
	require.NoError(t, err)
	first := out.(*catalog.RestoreSession)
	assert.Equal(t, "uid-1", first.Annotations[catalogv1alpha1.AnnotationNamespaceUID], "stamped with the namespace's UID")
	done := first.DeepCopy()
	done.Status.Phase = catalog.RestoreSucceeded
	_, _, err = restoreStatus.Update(ctx, "pvc-restore", rest.DefaultUpdatedObjectInfo(done), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
	require.NoError(t, err)

	t.Run("the stamp is the server's", func(t *testing.T) {
		cur, err := restores.Get(ctx, "pvc-restore", &metav1.GetOptions{})
		require.NoError(t, err)
		upd := cur.(*catalog.RestoreSession).DeepCopy()
		upd.Annotations[catalogv1alpha1.AnnotationNamespaceUID] = "forged"
		out, _, err := restores.Update(ctx, "pvc-restore", rest.DefaultUpdatedObjectInfo(upd), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
		require.NoError(t, err)
		assert.Equal(t, "uid-1", out.(*catalog.RestoreSession).Annotations[catalogv1alpha1.AnnotationNamespaceUID])
	})

	// The namespace is deleted and created again.
	namespaces.recreate("demo", "uid-2", time.Now())

	t.Run("history is not served", func(t *testing.T) {
		_, err := restores.Get(ctx, "pvc-restore", &metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "%v", err)
		list, err := restores.List(ctx, &metainternalversion.ListOptions{})
		require.NoError(t, err)
		assert.Empty(t, list.(*catalog.RestoreSessionList).Items)
		_, _, err = restores.Delete(ctx, "pvc-restore", nil, &metav1.DeleteOptions{})
		assert.True(t, apierrors.IsNotFound(err), "history cannot be deleted through the API: %v", err)
	})

	t.Run("a plain update of a name only history has is a 404", func(t *testing.T) {
		upd := first.DeepCopy()
		upd.ResourceVersion = ""
		_, _, err := restores.Update(ctx, "pvc-restore", rest.DefaultUpdatedObjectInfo(upd), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
		assert.True(t, apierrors.IsNotFound(err), "%v", err)
	})

	t.Run("the same manifest applied again is a new restore; the old one is kept", func(t *testing.T) {
		out, err := restores.Create(ctx, newRestore(), rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
		require.NoError(t, err)
		second := out.(*catalog.RestoreSession)
		assert.Equal(t, "uid-2", second.Annotations[catalogv1alpha1.AnnotationNamespaceUID])
		assert.Empty(t, second.Status.Phase, "a new session, not the old Succeeded")
		assert.NotEqual(t, first.UID, second.UID)

		history, err := filepath.Glob(filepath.Join(dir, "repo", "restoresessions", layout.HistoryDir, "pvc-restore-*.yaml"))
		require.NoError(t, err)
		require.Len(t, history, 1, "the earlier session is kept in the history folder")
		data, err := os.ReadFile(history[0])
		require.NoError(t, err)
		assert.Contains(t, string(data), "phase: Succeeded")
		assert.Contains(t, string(data), string(first.UID))
		data, err = os.ReadFile(filepath.Join(dir, "repo", "restoresessions", "pvc-restore.yaml"))
		require.NoError(t, err)
		assert.Contains(t, string(data), string(second.UID))

		list, err := restores.List(ctx, &metainternalversion.ListOptions{})
		require.NoError(t, err)
		require.Len(t, list.(*catalog.RestoreSessionList).Items, 1)
	})

	t.Run("a session of a namespace that does not exist is not served", func(t *testing.T) {
		namespaces.mu.Lock()
		namespaces.incarnations["demo"] = nil
		namespaces.mu.Unlock()
		_, err := restores.Get(ctx, "pvc-restore", &metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "%v", err)
		_, err = restores.Create(ctx, &catalog.RestoreSession{
			ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "demo"},
			Spec:       catalog.RestoreSessionSpec{DataSource: catalog.RestoreDataSource{Repository: "repo", Snapshot: "latest"}},
		}, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
		assert.True(t, apierrors.IsNotFound(err), "%v", err)
		assert.Contains(t, err.Error(), "namespaces")
	})
}

// TestIncarnationOwns covers sessions written before the stamp existed:
// they belong to the incarnation alive when they were created.
func TestIncarnationOwns(t *testing.T) {
	created := metav1.NewTime(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	inc := registry.Incarnation{UID: "now", Created: created}
	for _, tc := range []struct {
		name string
		meta metav1.ObjectMeta
		want bool
	}{
		{"stamped with this UID", metav1.ObjectMeta{Annotations: map[string]string{catalogv1alpha1.AnnotationNamespaceUID: "now"}}, true},
		{"stamped with another UID", metav1.ObjectMeta{Annotations: map[string]string{catalogv1alpha1.AnnotationNamespaceUID: "before"}, CreationTimestamp: metav1.NewTime(created.Add(time.Hour))}, false},
		{"unstamped, created after the namespace", metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created.Add(time.Second))}, true},
		{"unstamped, created with the namespace", metav1.ObjectMeta{CreationTimestamp: created}, true},
		{"unstamped, created before the namespace", metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created.Add(-time.Second))}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, inc.Owns(&tc.meta))
		})
	}
}

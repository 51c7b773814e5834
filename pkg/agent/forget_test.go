package agent

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/restic"
)

// TestForget: of three backups, the one whose Snapshot was deleted is
// forgotten in restic and its mark dropped; the one whose mark names a
// Snapshot that still exists (the deletion did not happen) is left, mark
// and data; a second run changes nothing.
func TestForget(t *testing.T) {
	skipShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := newFixture(t)
	a := f.agent(f.data)

	var snaps []string
	for i, unix := range []int64{1704281100, 1704281400, 1704281700} {
		require.NoError(t, writeFile(filepath.Join(f.data, "file"), "version "+string(rune('a'+i))))
		bs, snap := f.newSession(unix, 0)
		require.NoError(t, a.Backup(ctx, f.backupOpts(bs)))
		snaps = append(snaps, snap)
	}
	b, err := backend.NewLocal(f.backend)
	require.NoError(t, err)
	mark := func(name, uid string) string {
		s := f.snapshot(name)
		c := s.Status.Components[ComponentDump]
		key, err := layout.AddForgetMark(ctx, b, "/pvc-backup-demo", layout.ForgetSnapshot{
			Name: name, Namespace: ns, UID: uid, Repository: repoName, DeletedAt: metav1.Now(),
			Components: []layout.ForgetComponent{{Name: ComponentDump, Path: c.Path, ResticSnapshots: []string{c.ResticStats[0].Summary.ID}}},
		})
		require.NoError(t, err)
		return key
	}
	idOf := func(name string) string {
		return f.snapshot(name).Status.Components[ComponentDump].ResticStats[0].Summary.ID
	}
	deletedID, keptID := idOf(snaps[0]), idOf(snaps[1])

	// snaps[0] is deleted; snaps[1] is still there with the mark's UID.
	deletedKey := mark(snaps[0], "uid-0")
	require.NoError(t, f.client.CatalogV1alpha1().Snapshots(ns).Delete(ctx, snaps[0], metav1.DeleteOptions{}))
	s1 := f.snapshot(snaps[1])
	keptKey := mark(snaps[1], string(s1.UID))

	opts := ForgetOptions{Namespace: ns, Repositories: []string{repoName}, ScratchDir: DefaultScratchDir}
	require.NoError(t, a.Forget(ctx, opts))

	r, err := a.newRestic(&access{location: mustLocation(t, a, f), password: password, base: "/pvc-backup-demo"}, "repository/v1/"+session+"/dump", DefaultScratchDir, false)
	require.NoError(t, err)
	ids := func() []string { return snapshotIDs(ctx, t, r) }
	got := ids()
	assert.Len(t, got, 2)
	assert.NotContains(t, got, deletedID, "the deleted Snapshot's data is forgotten")
	assert.Contains(t, got, keptID, "a Snapshot that still exists keeps its data")
	_, _, err = layout.ReadForgetMark(ctx, b, deletedKey)
	assert.ErrorIs(t, err, backend.ErrNotFound, "the mark acted upon is dropped")
	_, _, err = layout.ReadForgetMark(ctx, b, keptKey)
	assert.NoError(t, err, "the mark of an existing Snapshot stays")

	// Idempotent.
	require.NoError(t, a.Forget(ctx, opts))
	assert.ElementsMatch(t, got, ids())
}

func mustLocation(t *testing.T, a *Agent, f *fixture) (loc restic.Location) {
	bs, err := f.client.StorageV1alpha1().BackupStorages(ns).Get(context.Background(), "local-storage", metav1.GetOptions{})
	require.NoError(t, err)
	loc, err = a.location(context.Background(), bs, repoName)
	require.NoError(t, err)
	return loc
}

// snapshotIDs lists the ids of the restic snapshots in r.
func snapshotIDs(ctx context.Context, t *testing.T, r *restic.Repo) []string {
	t.Helper()
	have, err := r.Snapshots(ctx)
	require.NoError(t, err)
	var out []string
	for _, s := range have {
		out = append(out, s.ID)
	}
	return out
}

package backupsession

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
)

// TestRefreshRepositoryAfterDelete: the status follows the Snapshots that
// are left: count, recent list, size (blank when no successful one is left).
func TestRefreshRepositoryAfterDelete(t *testing.T) {
	snap := func(name string, phase catalogv1alpha1.SnapshotPhase, age time.Duration, size string) *catalogv1alpha1.Snapshot {
		return &catalogv1alpha1.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: name, Labels: map[string]string{catalogv1alpha1.LabelRepoName: "repo"}},
			Spec:       catalogv1alpha1.SnapshotSpec{Repository: "repo"},
			Status:     catalogv1alpha1.SnapshotStatus{Phase: phase, Size: size, SnapshotTime: ptr.To(metav1.NewTime(now.Add(-age)))},
		}
	}
	cases := []struct {
		name      string
		delete    []string
		wantCount int32
		wantSize  string
		wantNames []string
	}{
		{name: "nothing deleted", wantCount: 4, wantSize: "3 KiB", wantNames: []string{"repo-failed", "repo-new", "repo-mid", "repo-old"}},
		{name: "the failed one", delete: []string{"repo-failed"}, wantCount: 3, wantSize: "3 KiB", wantNames: []string{"repo-new", "repo-mid", "repo-old"}},
		{name: "the newest successful one", delete: []string{"repo-new"}, wantCount: 3, wantSize: "2 KiB", wantNames: []string{"repo-failed", "repo-mid", "repo-old"}},
		{name: "every successful one", delete: []string{"repo-new", "repo-mid", "repo-old"}, wantCount: 1, wantSize: "", wantNames: []string{"repo-failed"}},
		{name: "all", delete: []string{"repo-failed", "repo-new", "repo-mid", "repo-old"}, wantCount: 0, wantSize: ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, "")
			snaps := e.ks.CatalogV1alpha1().Snapshots("demo")
			require.NoError(t, snaps.Delete(ctx, "repo-old", metav1.DeleteOptions{}))
			for _, s := range []*catalogv1alpha1.Snapshot{
				snap("repo-old", catalogv1alpha1.SnapshotSucceeded, 3*time.Hour, "1 KiB"),
				snap("repo-mid", catalogv1alpha1.SnapshotSucceeded, 2*time.Hour, "2 KiB"),
				snap("repo-new", catalogv1alpha1.SnapshotSucceeded, time.Hour, "3 KiB"),
				snap("repo-failed", catalogv1alpha1.SnapshotFailed, time.Minute, ""),
			} {
				_, err := snaps.Create(ctx, s, metav1.CreateOptions{})
				require.NoError(t, err)
			}
			require.NoError(t, e.r.RefreshRepository(ctx, "demo", "repo"))
			for _, n := range c.delete {
				require.NoError(t, snaps.Delete(ctx, n, metav1.DeleteOptions{}))
			}
			require.NoError(t, e.r.RefreshRepository(ctx, "demo", "repo"))

			repo, err := e.ks.CatalogV1alpha1().Repositories("demo").Get(ctx, "repo", metav1.GetOptions{})
			require.NoError(t, err)
			assert.Equal(t, c.wantCount, ptr.Deref(repo.Status.SnapshotCount, -1))
			assert.Equal(t, c.wantSize, repo.Status.Size)
			var names []string
			for _, s := range repo.Status.RecentSnapshots {
				names = append(names, s.Name)
			}
			assert.Equal(t, c.wantNames, names)
		})
	}
	t.Run("repository gone", func(t *testing.T) {
		e := newEnv(t, "")
		require.NoError(t, e.ks.CatalogV1alpha1().Repositories("demo").Delete(context.Background(), "repo", metav1.DeleteOptions{}))
		assert.NoError(t, e.r.RefreshRepository(context.Background(), "demo", "repo"))
	})
}

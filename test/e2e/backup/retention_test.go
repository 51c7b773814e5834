package backup

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/restic"
)

// TestRetentionInCatalogAndRestic: after several sessions under
// successfulSnapshots.last 2, exactly the two newest Snapshots are left in
// the catalog, and their restic snapshots are exactly what restic itself
// has; a WipeOut Snapshot a user deletes is forgotten in restic by the
// next session's retention Job. No forget mark is left behind.
func TestRetentionInCatalogAndRestic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	e := newFailEnv(ctx, t, failOptions{NS: "retention-e2e", BC: "pvc-backup", Directory: "/retention", KeepLast: 2, HistoryLimit: 2})
	client, ns, prefix, password, m := e.client, e.o.NS, e.o.NS, e.o.Password, env.MinIO

	// Each session backs up a change, so every restic snapshot differs.
	backup := func(i int) *catalogv1alpha1.BackupSession {
		require.NoError(t, os.WriteFile(filepath.Join(e.data, fmt.Sprintf("file-%d", i)), []byte(fmt.Sprintf("content %d\n", i)), 0o644))
		e.backupNow(e.sessionName(i))
		require.Equal(t, catalogv1alpha1.BackupSessionSucceeded, e.waitSession(e.sessionName(i)))
		bs, err := client.CatalogV1alpha1().BackupSessions(ns).Get(ctx, e.sessionName(i), metav1.GetOptions{})
		require.NoError(t, err)
		return bs
	}
	var last *catalogv1alpha1.BackupSession
	for i := 2; i <= 4; i++ {
		last = backup(i)
	}
	require.Len(t, last.Status.RetentionPolicies, 1)
	assert.Equal(t, catalogv1alpha1.RetentionPolicyApplied, last.Status.RetentionPolicies[0].Phase)

	repo, err := client.CatalogV1alpha1().Repositories(ns).Get(ctx, "s3-repo", metav1.GetOptions{})
	require.NoError(t, err)
	r, err := restic.New(restic.Options{
		Binary:   filepath.Join(binDir, "restic"),
		Location: restic.Location{Provider: restic.ProviderS3, Path: path.Join(repo.Spec.Path, "repository/v1/manual/dump"), S3: &restic.S3{Endpoint: m.Endpoint, Bucket: m.Bucket, Prefix: prefix, Region: "us-east-1", AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey}},
		Password: password, ScratchDir: t.TempDir(),
	})
	require.NoError(t, err)

	// In the catalog: the two newest. In restic: exactly their data.
	assertKept := func(want ...string) {
		t.Helper()
		l, err := client.CatalogV1alpha1().Snapshots(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		var names, ids []string
		for _, s := range l.Items {
			names = append(names, s.Name)
			for _, st := range s.Status.Components["dump"].ResticStats {
				ids = append(ids, st.Summary.ID)
			}
		}
		sort.Strings(names)
		assert.Equal(t, want, names, "the catalog keeps what the policy says")
		have, err := r.Snapshots(ctx)
		require.NoError(t, err)
		var got []string
		for _, s := range have {
			got = append(got, s.ID)
		}
		assert.ElementsMatch(t, ids, got, "restic keeps exactly the catalog's snapshots")
		assert.Empty(t, forgetMarks(ctx, t, prefix), "every forget mark was acted upon")
	}
	assertKept("s3-repo-pvc-backup-manual-3", "s3-repo-pvc-backup-manual-4")

	// A user deletes a Snapshot with deletionPolicy WipeOut: its data goes
	// soon after (a clean-up Job, --wipeout-delay after the deletion),
	// without waiting for another session.
	gone := "s3-repo-pvc-backup-manual-3"
	s, err := client.CatalogV1alpha1().Snapshots(ns).Get(ctx, gone, metav1.GetOptions{})
	require.NoError(t, err)
	goneID := s.Status.Components["dump"].ResticStats[0].Summary.ID
	_, err = client.CatalogV1alpha1().Snapshots(ns).Patch(ctx, gone, types.MergePatchType, []byte(`{"spec":{"deletionPolicy":"WipeOut"}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	require.NoError(t, client.CatalogV1alpha1().Snapshots(ns).Delete(ctx, gone, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(s.UID))}))
	assert.NotEmpty(t, forgetMarks(ctx, t, prefix), "the deletion left a forget mark")
	require.Eventually(t, func() bool {
		have, err := r.Snapshots(ctx)
		if err != nil {
			return false
		}
		for _, s := range have {
			if s.ID == goneID {
				return false
			}
		}
		return len(forgetMarks(ctx, t, prefix)) == 0
	}, 3*time.Minute, 2*time.Second, "restic forgets the deleted WipeOut Snapshot without another session")
	assertKept("s3-repo-pvc-backup-manual-4")
	wipeJobs, err := env.KubeClient.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=kubestash-wipeout"})
	require.NoError(t, err)
	// One clean-up Job: the retention marks of the sessions were their
	// retention Jobs' (a mark younger than --wipeout-delay is left to the
	// Job its session is creating), and the user's deletion got one.
	require.Len(t, wipeJobs.Items, 1, "one clean-up Job, for the user's deletion")

	last = backup(5)
	assert.Equal(t, catalogv1alpha1.RetentionPolicyApplied, last.Status.RetentionPolicies[0].Phase)
	assertKept("s3-repo-pvc-backup-manual-4", "s3-repo-pvc-backup-manual-5")

	// The retention Jobs of the kept sessions are there; older ones went
	// with their sessions (sessionHistoryLimit 2).
	jobs, err := env.KubeClient.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var names []string
	for _, j := range jobs.Items {
		names = append(names, j.Name)
	}
	assert.Contains(t, names, "retentionpolicy-pvc-backup-manual-4")
	assert.NotContains(t, names, "retentionpolicy-pvc-backup-manual-3")
	assert.NotContains(t, names, "retentionpolicy-pvc-backup-manual-5", "session 5 removed nothing and found no mark: no Job")
}

// forgetMarks lists the forget marks under prefix in the test bucket.
func forgetMarks(ctx context.Context, t *testing.T, prefix string) []string {
	t.Helper()
	mc, err := env.MinIO.Client()
	require.NoError(t, err)
	var out []string
	for o := range mc.ListObjects(ctx, env.MinIO.Bucket, minio.ListObjectsOptions{Prefix: prefix + "/", Recursive: true}) {
		require.NoError(t, o.Err)
		if filepath.Base(filepath.Dir(o.Key)) == "forget" {
			out = append(out, o.Key)
		}
	}
	return out
}

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/layout"
)

// rssBytes is the resident memory of process pid.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// restartCatalogServer stops srv (unregistered first, so that discovery
// never sees an unavailable group) and starts a new one on the same
// backends: what the index holds then comes from the files alone.
func restartCatalogServer(t *testing.T, srv *catalogServer) *catalogServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, srv.Unregister(ctx))
	require.NoError(t, srv.Stop(10*time.Second))
	return startCatalogServer(t, catalogServerOptions{})
}

// hugeSnapshotFile is a Snapshot file of about size bytes: a label map of
// hundreds of thousands of keys, as in the probe.
func hugeSnapshotFile(ns string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "apiVersion: catalog.kubestash.com/v1alpha1\nkind: Snapshot\nmetadata:\n  name: huge\n  namespace: %s\n  labels:\n", ns)
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "    k%07d: v\n", i)
	}
	b.WriteString("spec:\n  repository: repo\n")
	return b.Bytes()
}

// TestCatalogTenantIsolationLimits re-runs the probes of issue 11 against
// the catalog server: files planted in the bucket (a 50 MB one, a
// repository.yaml whose spec.path leaves its folder, a copy of a Snapshot
// under another name, a corrupt metadata.yaml) and objects through the API
// (over the size limit, a bogus resourceVersion).
func TestCatalogTenantIsolationLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	const (
		ns        = "limits-e2e"
		storageNS = "limits-e2e-storage"
		storage   = "limits-s3"
	)
	prefix := fmt.Sprintf("limits-e2e-%d", time.Now().UnixNano())
	createNamespaces(ctx, t, ns, storageNS)
	mc, err := env.MinIO.Client()
	require.NoError(t, err)
	bucket := env.MinIO.Bucket
	cs, err := versioned.NewForConfig(env.Config)
	require.NoError(t, err)

	ref := kmapi.ObjectReference{Name: storage, Namespace: storageNS}
	repo := bucketRepo{Name: "repo", Namespace: ns, Path: "/" + ns + "/repo", StorageRef: ref, Snapshots: seq("snap", 3)}
	// A repository whose folder metadata.yaml lists, but whose file says
	// its path is another tenant's.
	evil := bucketRepo{Name: "evil-repo", Namespace: ns, Path: "/" + ns + "/evil", StorageRef: ref}
	files := catalogFiles(t, prefix, repo, evil)
	var buf bytes.Buffer
	require.NoError(t, fileCodec.Encode(&catalogv1alpha1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: evil.Name, Namespace: ns},
		Spec:       catalogv1alpha1.RepositorySpec{StorageRef: ref, Path: "../other-tenant/repo", DeletionPolicy: catalogv1alpha1.DeletionPolicyDelete},
	}, &buf))
	evilKey, err := layout.Key(layout.KindRepository, evil.Path, "")
	require.NoError(t, err)
	files[prefix+"/"+evilKey] = buf.Bytes()
	// A copy of snap-000 under a file name that sorts first, marked.
	planted := snapshotObject(repo, 0, "snap-000")
	planted.Labels["planted"] = "yes"
	buf.Reset()
	require.NoError(t, fileCodec.Encode(planted, &buf))
	copyKey, err := layout.Key(layout.KindSnapshot, repo.Path, "aaa-copy-of-snap-000")
	require.NoError(t, err)
	files[prefix+"/"+copyKey] = buf.Bytes()
	putFiles(ctx, t, mc, bucket, files)
	applyBackupStorage(ctx, t, env, storageNS, storage, prefix, "All")

	srv := startCatalogServer(t, catalogServerOptions{})
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.ElementsMatch(c, repo.Snapshots, kubectlNames(ctx, c, env, "snapshots", "-n", ns))
	}, time.Minute, time.Second, "the storage is served")
	rssBefore := rssBytes(t, srv.Pid())

	t.Run("a planted 50 MB file is skipped unread and the Snapshot watch keeps working", func(t *testing.T) {
		w, err := cs.CatalogV1alpha1().Snapshots(ns).Watch(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		defer w.Stop()
		hugeKey, err := layout.Key(layout.KindSnapshot, repo.Path, "huge")
		require.NoError(t, err)
		putFiles(ctx, t, mc, bucket, map[string][]byte{prefix + "/" + hugeKey: hugeSnapshotFile(ns, 50<<20)})
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			assert.Contains(c, srv.LogTail(400), `reason="too-large"`)
		}, time.Minute, time.Second, "the server logs the skip")
		log := srv.LogTail(400)
		assert.Contains(t, log, hugeKey)
		assert.Contains(t, log, "limit=1048576")
		assert.NotContains(t, log, "k0000001", "the log never quotes the file")
		assert.ElementsMatch(t, repo.Snapshots, kubectlNames(ctx, t, env, "snapshots", "-n", ns))
		rss := rssBytes(t, srv.Pid())
		t.Logf("catalog server RSS %d MiB before the planted file, %d MiB after", rssBefore>>20, rss>>20)
		assert.Less(t, rss-rssBefore, int64(64<<20), "the file is not read into memory")

		s := snapshotObject(repo, 9, "after-huge")
		s.ResourceVersion = ""
		_, err = cs.CatalogV1alpha1().Snapshots(ns).Create(ctx, s, metav1.CreateOptions{})
		require.NoError(t, err)
		deadline := time.After(30 * time.Second)
		for {
			select {
			case ev, ok := <-w.ResultChan():
				require.True(t, ok, "the watch ended")
				require.NotEqual(t, watch.Error, ev.Type, "%v", ev.Object)
				if sn, ok := ev.Object.(*catalogv1alpha1.Snapshot); ok && ev.Type == watch.Added && sn.Name == "after-huge" {
					return
				}
			case <-deadline:
				t.Fatal("the watch did not see the new Snapshot")
			}
		}
	})

	t.Run("an object over the limit through the API is 413", func(t *testing.T) {
		for _, size := range []int{(1 << 20) + 1, 2900 << 10} {
			s := snapshotObject(repo, 10, fmt.Sprintf("too-big-%d", size))
			// Labels, since metadata validation bounds annotations at 256 KiB
			// (a 422 before the store could say 413).
			s.Labels = bulkLabels(size, "x")
			_, err := cs.CatalogV1alpha1().Snapshots(ns).Create(ctx, s, metav1.CreateOptions{})
			require.Error(t, err)
			assert.True(t, apierrors.IsRequestEntityTooLargeError(err), "size %d: %v", size, err)
			assert.Contains(t, err.Error(), "1048576", "names the limit")
		}
		// Growing one over the limit by updates is refused as well.
		cur, err := cs.CatalogV1alpha1().Snapshots(ns).Get(ctx, "snap-001", metav1.GetOptions{})
		require.NoError(t, err)
		cur.Labels = bulkLabels(1100<<10, "y")
		_, err = cs.CatalogV1alpha1().Snapshots(ns).Update(ctx, cur, metav1.UpdateOptions{})
		assert.True(t, apierrors.IsRequestEntityTooLargeError(err), "%v", err)
	})

	t.Run("a bogus resourceVersion is 400", func(t *testing.T) {
		_, err := cs.CatalogV1alpha1().Snapshots(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: "bogus"})
		assert.True(t, apierrors.IsBadRequest(err), "watch: %v", err)
		_, err = cs.CatalogV1alpha1().Snapshots(ns).List(ctx, metav1.ListOptions{ResourceVersion: "bogus"})
		assert.True(t, apierrors.IsBadRequest(err), "list: %v", err)
	})

	t.Run("a planted repository.yaml whose spec.path leaves its folder is not served", func(t *testing.T) {
		assert.Equal(t, []string{repo.Name}, kubectlNames(ctx, t, env, "repositories", "-n", ns))
		_, err := cs.CatalogV1alpha1().Repositories(ns).Get(ctx, evil.Name, metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "%v", err)
		assert.Contains(t, srv.LogTail(1000), `reason="path"`)
	})

	t.Run("duplicates resolve the same way across restarts", func(t *testing.T) {
		for i := range 3 {
			got, err := cs.CatalogV1alpha1().Snapshots(ns).Get(ctx, "snap-000", metav1.GetOptions{})
			require.NoError(t, err)
			assert.NotContains(t, got.Labels, "planted", "run %d: the file named after the Snapshot wins over the copy", i)
			if i < 2 {
				srv = restartCatalogServer(t, srv)
			}
		}
	})

	t.Run("a corrupt metadata.yaml still lists the repositories after a restart", func(t *testing.T) {
		putFiles(ctx, t, mc, bucket, map[string][]byte{prefix + "/" + layout.MetadataFile: []byte("\x00not: [a BackendMeta\n")})
		srv = restartCatalogServer(t, srv)
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			assert.Equal(c, []string{repo.Name}, kubectlNames(ctx, c, env, "repositories", "-n", ns))
			assert.Subset(c, kubectlNames(ctx, c, env, "snapshots", "-n", ns), repo.Snapshots)
		}, time.Minute, time.Second)
	})
}

// bulkLabels returns labels whose YAML takes at least size bytes: valid
// metadata, so that only the catalog's size limit can refuse them.
func bulkLabels(size int, fill string) map[string]string {
	value := strings.Repeat(fill, 63)
	labels := map[string]string{}
	for i := 0; len(labels)*(len(value)+10) < size; i++ {
		labels[fmt.Sprintf("k%06d", i)] = value
	}
	return labels
}

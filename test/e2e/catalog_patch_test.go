package e2e

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kubestash.dev/kubestash/pkg/apis/kmapi"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
)

// TestCatalogPatchTypesAndDryRun patches a Snapshot through kube-apiserver
// with each patch type kubectl offers, and checks that a server-side dry run
// writes nothing into the bucket.
func TestCatalogPatchTypesAndDryRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const ns = "catalog-patch"
	prefix := fmt.Sprintf("catalog-patch-%d", time.Now().UnixNano())
	createNamespaces(ctx, t, ns)
	mc, err := env.MinIO.Client()
	require.NoError(t, err)
	repo := bucketRepo{Name: "repo", Namespace: ns, Path: "/repo", StorageRef: kmapi.ObjectReference{Name: "patch-st", Namespace: ns}, Snapshots: seq("snap", 1)}
	files := catalogFiles(t, prefix, repo)
	putFiles(ctx, t, mc, env.MinIO.Bucket, files)
	applyBackupStorage(ctx, t, env, ns, "patch-st", prefix, "Same")
	startCatalogServer(t, catalogServerOptions{})
	cs, err := versioned.NewForConfig(env.Config)
	require.NoError(t, err)
	snap := repo.Snapshots[0]
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, []string{snap}, kubectlNames(ctx, c, env, "snapshots", "-n", ns))
	}, 30*time.Second, time.Second)

	for _, p := range []struct{ typ, patch, label string }{
		{"merge", `{"metadata":{"labels":{"by-merge":"yes"}}}`, "by-merge"},
		{"json", `[{"op":"add","path":"/metadata/labels/by-json","value":"yes"}]`, "by-json"},
		{"strategic", `{"metadata":{"labels":{"by-strategic":"yes"}}}`, "by-strategic"},
	} {
		_, _, err := env.Kubectl(ctx, "", "patch", "snapshot", snap, "-n", ns, "--type", p.typ, "-p", p.patch)
		require.NoError(t, err, "%s patch", p.typ)
		s, err := cs.CatalogV1alpha1().Snapshots(ns).Get(ctx, snap, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, "yes", s.Labels[p.label], "%s patch applied", p.typ)
	}
	// The patches went to the file in the bucket.
	obj, err := mc.GetObject(ctx, env.MinIO.Bucket, prefix+"/repo/snapshots/"+snap+".yaml", minio.GetObjectOptions{})
	require.NoError(t, err)
	data, err := io.ReadAll(obj)
	require.NoError(t, err)
	for _, l := range []string{"by-merge", "by-json", "by-strategic"} {
		assert.Contains(t, string(data), l)
	}

	// A dry run is validated and answered, and writes nothing.
	before := listKeys(ctx, t, mc, env.MinIO.Bucket, prefix+"/")
	out, _, err := env.Kubectl(ctx, fmt.Sprintf(`apiVersion: catalog.kubestash.com/v1alpha1
kind: Snapshot
metadata: {name: dry, namespace: %s}
spec: {repository: repo, session: s, snapshotID: 01HK6Z2Q7V3N4K5P6R7S8T9V0W, type: FullBackup, version: v1}
`, ns), "create", "--dry-run=server", "-f", "-")
	require.NoError(t, err)
	assert.Contains(t, out, "created (server dry run)")
	_, _, err = env.Kubectl(ctx, "", "delete", "snapshot", snap, "-n", ns, "--dry-run=server")
	require.NoError(t, err)
	assert.Equal(t, before, listKeys(ctx, t, mc, env.MinIO.Bucket, prefix+"/"), "the bucket is unchanged")
	assert.Equal(t, []string{snap}, kubectlNames(ctx, t, env, "snapshots", "-n", ns))
}

package backup

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// bucketKeys lists the keys under prefix + "/" in the test bucket.
func bucketKeys(ctx context.Context, t *testing.T, prefix string) []string {
	t.Helper()
	mc, err := env.MinIO.Client()
	require.NoError(t, err)
	var out []string
	for o := range mc.ListObjects(ctx, env.MinIO.Bucket, minio.ListObjectsOptions{Prefix: prefix + "/", Recursive: true}) {
		require.NoError(t, o.Err)
		out = append(out, o.Key)
	}
	return out
}

// withPrefix keeps the keys that start with prefix.
func withPrefix(keys []string, prefix string) []string {
	var out []string
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

// kubectl runs kubectl on the test cluster and fails the test on error.
func kubectl(ctx context.Context, t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := env.Kubectl(ctx, "", args...)
	require.NoError(t, err, "kubectl %s: %s", strings.Join(args, " "), stderr)
	return out
}

// TestWipeOutRepository: `kubectl delete repository` of a Repository with
// deletionPolicy WipeOut removes its restic data, its Snapshots and
// sessions and its entry in metadata.yaml; what else is in the storage
// stays.
func TestWipeOutRepository(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	e := newFailEnv(ctx, t, failOptions{NS: "wipeout-repo", BC: "pvc-backup", Directory: "/wiped"})
	ns, prefix := e.o.NS, e.o.NS

	before := bucketKeys(ctx, t, prefix)
	require.NotEmpty(t, withPrefix(before, prefix+"/wiped/repository/"), "restic data")
	require.NotEmpty(t, withPrefix(before, prefix+"/wiped/snapshots/"), "snapshots")
	// The configuration would create the Repository again.
	kubectl(ctx, t, "delete", "backupconfiguration", e.o.BC, "-n", ns)

	kubectl(ctx, t, "patch", "repository", failRepo, "-n", ns, "--type=merge", "-p", `{"spec":{"deletionPolicy":"WipeOut"}}`)
	assert.Contains(t, kubectl(ctx, t, "get", "repository", failRepo, "-n", ns, "-o", "jsonpath={.metadata.finalizers}"), "kubestash.com/wipeout")
	// kubectl waits until the Repository is gone.
	kubectl(ctx, t, "delete", "repository", failRepo, "-n", ns, "--timeout=3m")

	require.Eventually(t, func() bool {
		return len(withPrefix(bucketKeys(ctx, t, prefix), prefix+"/wiped/")) == 0
	}, 2*time.Minute, 2*time.Second, "nothing left under %s/wiped/: %v", prefix, withPrefix(bucketKeys(ctx, t, prefix), prefix+"/wiped/"))
	mc, err := env.MinIO.Client()
	require.NoError(t, err)
	obj, err := mc.GetObject(ctx, env.MinIO.Bucket, prefix+"/metadata.yaml", minio.GetObjectOptions{})
	require.NoError(t, err)
	var meta bytes.Buffer
	_, err = meta.ReadFrom(obj)
	require.NoError(t, err, "metadata.yaml stays: the storage is still there")
	assert.NotContains(t, meta.String(), "wiped", "the repository left metadata.yaml")

	require.Eventually(t, func() bool {
		out, _, err := env.Kubectl(ctx, "", "get", "snapshots,backupsessions", "-n", ns, "-o", "name")
		return err == nil && strings.TrimSpace(out) == ""
	}, time.Minute, 2*time.Second, "its Snapshots and BackupSessions are gone from the catalog")
}

// TestWipeOutBackupStorage: `kubectl delete backupstorage` of a storage with
// deletionPolicy WipeOut removes everything this project wrote under its
// prefix; a file of someone else's there stays.
func TestWipeOutBackupStorage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	e := newFailEnv(ctx, t, failOptions{NS: "wipeout-storage", BC: "pvc-backup", Directory: "/data"})
	ns, prefix := e.o.NS, e.o.NS
	kubectl(ctx, t, "delete", "backupconfiguration", e.o.BC, "-n", ns)
	mc, err := env.MinIO.Client()
	require.NoError(t, err)
	_, err = mc.PutObject(ctx, env.MinIO.Bucket, prefix+"/notes.txt", strings.NewReader("mine"), 4, minio.PutObjectOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, withPrefix(bucketKeys(ctx, t, prefix), prefix+"/data/repository/"))

	kubectl(ctx, t, "patch", "backupstorage", "s3-storage", "-n", ns, "--type=merge", "-p", `{"spec":{"deletionPolicy":"WipeOut"}}`)
	require.Eventually(t, func() bool {
		out, _, err := env.Kubectl(ctx, "", "get", "backupstorage", "s3-storage", "-n", ns, "-o", "jsonpath={.metadata.finalizers}")
		return err == nil && strings.Contains(out, "kubestash.com/wipeout")
	}, time.Minute, time.Second, "the controller puts its finalizer on a WipeOut BackupStorage")
	kubectl(ctx, t, "delete", "backupstorage", "s3-storage", "-n", ns, "--timeout=3m")

	assert.Equal(t, []string{prefix + "/notes.txt"}, bucketKeys(ctx, t, prefix), "only the file this project did not write is left")
}

// TestWipeOutNotOnNamespaceDeletion: deleting the namespace of a WipeOut
// BackupStorage and a WipeOut Repository completes and leaves every file
// in the bucket: backups outlive their namespace.
func TestWipeOutNotOnNamespaceDeletion(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	e := newFailEnv(ctx, t, failOptions{NS: "wipeout-nsdel", BC: "pvc-backup", Directory: "/kept"})
	ns, prefix := e.o.NS, e.o.NS
	kubectl(ctx, t, "patch", "repository", failRepo, "-n", ns, "--type=merge", "-p", `{"spec":{"deletionPolicy":"WipeOut"}}`)
	kubectl(ctx, t, "patch", "backupstorage", "s3-storage", "-n", ns, "--type=merge", "-p", `{"spec":{"deletionPolicy":"WipeOut"}}`)
	require.Eventually(t, func() bool {
		out, _, err := env.Kubectl(ctx, "", "get", "backupstorage", "s3-storage", "-n", ns, "-o", "jsonpath={.metadata.finalizers}")
		return err == nil && strings.Contains(out, "kubestash.com/wipeout")
	}, time.Minute, time.Second, "the controller puts its finalizer on a WipeOut BackupStorage")
	before := bucketKeys(ctx, t, prefix)
	require.NotEmpty(t, withPrefix(before, prefix+"/kept/repository/"))

	require.NoError(t, env.KubeClient.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		_, err := env.KubeClient.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 3*time.Minute, 2*time.Second, "the namespace is deleted; no finalizer of ours holds it")

	after := bucketKeys(ctx, t, prefix)
	for _, k := range before {
		if strings.Contains(k, "/locks/") {
			continue // restic's own, gone when its command ended
		}
		assert.Contains(t, after, k, "kept in the bucket")
	}
}

package backup

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kubestash.dev/kubestash/test/framework"
)

// storageOn is a namespace with the test MinIO's root keys in s3-secret
// and a BackupStorage s3-storage at endpoint, bucket and prefix.
func storageOn(ns, endpoint, bucket, prefix string) string {
	return storageAs(ns, endpoint, bucket, prefix, env.MinIO.AccessKey, env.MinIO.SecretKey)
}

// storageAs is storageOn with other keys.
func storageAs(ns, endpoint, bucket, prefix, accessKey, secretKey string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: v1
kind: Secret
metadata: {name: s3-secret, namespace: %[1]s}
stringData: {AWS_ACCESS_KEY_ID: %[2]s, AWS_SECRET_ACCESS_KEY: %[3]s}
---
apiVersion: storage.kubestash.com/v1alpha1
kind: BackupStorage
metadata: {name: s3-storage, namespace: %[1]s}
spec:
  storage:
    provider: s3
    s3: {endpoint: %[4]s, bucket: %[5]s, region: us-east-1, prefix: %[6]s, secretName: s3-secret}
`, ns, accessKey, secretKey, endpoint, bucket, prefix)
}

// TestBucketCreated: a BackupStorage naming a bucket that does not exist
// yet, with credentials that may create it, creates it (as upstream
// does), becomes Ready and holds metadata.yaml.
func TestBucketCreated(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	const ns, bucket = "bucket-new", "created-by-backupstorage"
	mc, err := env.MinIO.Client()
	require.NoError(t, err)
	exists, err := mc.BucketExists(ctx, bucket)
	require.NoError(t, err)
	require.False(t, exists)

	_, stderr, err := env.Kubectl(ctx, storageOn(ns, env.MinIO.Endpoint, bucket, "team"), "apply", "-f", "-")
	require.NoError(t, err, stderr)
	require.Eventually(t, func() bool {
		out, _, err := env.Kubectl(ctx, "", "get", "backupstorage", "s3-storage", "-n", ns, "-o", "jsonpath={.status.phase}")
		return err == nil && out == "Ready"
	}, 2*time.Minute, time.Second, "the BackupStorage becomes Ready")
	exists, err = mc.BucketExists(ctx, bucket)
	require.NoError(t, err)
	assert.True(t, exists, "the bucket was created")
	_, err = mc.StatObject(ctx, bucket, "team/metadata.yaml", minio.StatObjectOptions{})
	assert.NoError(t, err, "metadata.yaml is in the new bucket")
}

// TestBucketNotCreatable: with credentials that may not create the
// missing bucket, the BackupStorage stays NotReady with a message naming
// the field, saying the bucket does not exist and could not be created,
// and why; no secret in it. The catalog server keeps serving the rest.
// Two such credentials: a MinIO user whose policy denies s3:CreateBucket,
// and an S3 endpoint whose CreateBucket answers AccessDenied (as AWS does
// for a policy without it).
func TestBucketNotCreatable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)

	t.Run("MinIO user without s3:CreateBucket", func(t *testing.T) {
		const ns, bucket, user, password = "bucket-denied-minio", "not-allowed-to-create", "limited", "limited-secret-123"
		limitedUser(ctx, t, user, password)
		_, stderr, err := env.Kubectl(ctx, storageAs(ns, env.MinIO.Endpoint, bucket, "team", user, password), "apply", "-f", "-")
		require.NoError(t, err, stderr)
		assertNotCreatable(ctx, t, ns, bucket, password)
		mc, err := env.MinIO.Client()
		require.NoError(t, err)
		exists, err := mc.BucketExists(ctx, bucket)
		require.NoError(t, err)
		assert.False(t, exists)
	})

	t.Run("S3 endpoint answering AccessDenied", func(t *testing.T) {
		const ns, bucket = "bucket-denied-fake", "not-allowed-to-create"
		// The controller and the catalog server are pods: an S3 endpoint
		// on the bridge's host address reaches both.
		l, err := net.Listen("tcp", net.JoinHostPort(framework.BridgeIP, "0"))
		require.NoError(t, err)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/xml")
			switch {
			case r.Method == http.MethodHead:
				w.WriteHeader(http.StatusNotFound)
			case r.Method == http.MethodPut && strings.Trim(r.URL.Path, "/") == bucket:
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied.</Message><BucketName>%s</BucketName><Resource>/%s</Resource></Error>`, bucket, bucket)
			default:
				w.WriteHeader(http.StatusNotFound)
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>%s</BucketName></Error>`, bucket)
			}
		})}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() { _ = srv.Close() })
		_, stderr, err := env.Kubectl(ctx, storageOn(ns, "http://"+l.Addr().String(), bucket, ""), "apply", "-f", "-")
		require.NoError(t, err, stderr)
		assertNotCreatable(ctx, t, ns, bucket, env.MinIO.SecretKey)
	})

	// The catalog server neither crashes nor stops serving, for more
	// than a poll of the missing buckets.
	assert.Never(t, func() bool {
		_, _, err := env.Kubectl(ctx, "", "get", "snapshots", "-A")
		return err != nil
	}, 20*time.Second, 2*time.Second, "kubectl get snapshots keeps working")
}

// assertNotCreatable waits for BackupStorage s3-storage of ns to be
// NotReady saying that bucket is missing and could not be created.
func assertNotCreatable(ctx context.Context, t *testing.T, ns, bucket, secret string) {
	t.Helper()
	var msg string
	require.Eventually(t, func() bool {
		out, _, err := env.Kubectl(ctx, "", "get", "backupstorage", "s3-storage", "-n", ns, "-o",
			`jsonpath={.status.phase}|{.status.conditions[?(@.type=="BackendInitialized")].message}`)
		phase, m, _ := strings.Cut(out, "|")
		msg = m
		return err == nil && phase == "NotReady" && m != ""
	}, 2*time.Minute, time.Second, "the BackupStorage is NotReady with a message")
	assert.Contains(t, msg, fmt.Sprintf(`spec.storage.s3.bucket: bucket %q does not exist and could not be created`, bucket))
	assert.Contains(t, msg, "Access Denied")
	assert.NotContains(t, msg, secret)
	out, _, err := env.Kubectl(ctx, "", "get", "backupstorage", "s3-storage", "-n", ns)
	require.NoError(t, err)
	assert.Contains(t, out, "NotReady", "kubectl shows it NotReady")
}

// limitedUser makes a user of the test MinIO that may read and write
// objects but not create buckets, with hack/tools/minio/limiteduser (built
// in the MinIO pin's module, which has MinIO's admin client; an alternate
// go.mod keeps the pin's files as they are).
func limitedUser(ctx context.Context, t *testing.T, user, password string) {
	t.Helper()
	root, err := framework.RepoRoot()
	require.NoError(t, err)
	dir := t.TempDir()
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(root, "hack", "tools", "minio", f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	bin := filepath.Join(dir, "limiteduser")
	build := exec.CommandContext(ctx, "go", "build", "-mod=mod", "-modfile="+filepath.Join(dir, "go.mod"), "-o", bin, "./limiteduser")
	build.Dir = filepath.Join(root, "hack", "tools", "minio")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build limiteduser: %s", out)
	run := exec.CommandContext(ctx, bin, env.MinIO.Host, user, password)
	run.Env = append(os.Environ(), "MINIO_ROOT_USER="+env.MinIO.AccessKey, "MINIO_ROOT_PASSWORD="+env.MinIO.SecretKey)
	out, err = run.CombinedOutput()
	require.NoError(t, err, "limiteduser: %s", out)
}

package backend_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/backend/backendtest"
	"kubestash.dev/kubestash/test/framework"
)

var prefixes atomic.Int64

func newS3(t *testing.T, m *framework.MinIO, prefix string) *backend.S3 {
	b, err := backend.NewS3(backend.S3Config{
		Endpoint: m.Endpoint, Bucket: m.Bucket, Prefix: prefix, Region: "us-east-1",
		AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey,
	})
	require.NoError(t, err)
	return b
}

// TestS3 runs the suite against a real MinIO, each case under its own
// prefix of one bucket (as BackupStorages share buckets).
func TestS3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MinIO")
	}
	m := startMinIO(t)
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		return newS3(t, m, fmt.Sprintf("/team-%d/", prefixes.Add(1)))
	})
}

func TestS3Errors(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MinIO")
	}
	m := startMinIO(t)
	ctx := context.Background()

	bad, err := backend.NewS3(backend.S3Config{Endpoint: m.Endpoint, Bucket: m.Bucket, AccessKeyID: m.AccessKey, SecretAccessKey: "wrong"})
	require.NoError(t, err)
	_, err = bad.Put(ctx, "x.yaml", []byte("x"), backend.PutOptions{})
	assert.ErrorIs(t, err, backend.ErrForbidden)
	assert.NotContains(t, err.Error(), "wrong", "no secret in errors")
	assert.NotContains(t, bad.String(), m.AccessKey)

	good := newS3(t, m, "errs")
	_, err = good.Put(ctx, "x.yaml", []byte("x"), backend.PutOptions{})
	require.NoError(t, err)

	// MinIO stopped: writes fail quickly as unavailable, nothing is left
	// behind, and it works again once MinIO is back.
	require.NoError(t, m.Stop(10*time.Second))
	start := time.Now()
	_, err = good.Put(ctx, "y.yaml", []byte("y"), backend.PutOptions{})
	assert.ErrorIs(t, err, backend.ErrUnavailable)
	assert.Less(t, time.Since(start), 30*time.Second, "a down backend fails fast")
	_, err = good.Stat(ctx, "x.yaml")
	assert.ErrorIs(t, err, backend.ErrUnavailable)
	require.NoError(t, m.Start(ctx))
	_, err = good.Stat(ctx, "y.yaml")
	assert.ErrorIs(t, err, backend.ErrNotFound)
	_, err = good.Put(ctx, "y.yaml", []byte("y"), backend.PutOptions{})
	require.NoError(t, err)

	_, err = backend.NewS3(backend.S3Config{Endpoint: "http://127.0.0.1:1/path", Bucket: "b"})
	assert.ErrorContains(t, err, "must not have a path")
	_, err = backend.NewS3(backend.S3Config{Endpoint: m.Endpoint})
	assert.ErrorContains(t, err, "bucket")
	_, err = backend.NewS3(backend.S3Config{Endpoint: m.Endpoint, Bucket: "b", CACertPEM: []byte("junk")})
	assert.ErrorContains(t, err, "CA_CERT_DATA")
}

func startMinIO(t *testing.T) *framework.MinIO {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cp, err := framework.Start(ctx, framework.Options{MinIOOnly: true})
	require.NoError(t, err)
	t.Cleanup(cp.Stop)
	return cp.MinIO
}

// TestS3TLS talks to MinIO over https: trusted through CA_CERT_DATA, refused
// without it, and accepted with insecureTLS.
func TestS3TLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MinIO")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cp, err := framework.Start(ctx, framework.Options{MinIOOnly: true, MinIOTLS: true})
	require.NoError(t, err)
	t.Cleanup(cp.Stop)
	m := cp.MinIO
	require.Contains(t, m.Endpoint, "https://")

	cfg := backend.S3Config{Endpoint: m.Endpoint, Bucket: m.Bucket, AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey, MaxRetries: 1}
	withCA := cfg
	withCA.CACertPEM = m.CACertPEM
	b, err := backend.NewS3(withCA)
	require.NoError(t, err)
	_, err = b.Put(ctx, "tls.yaml", []byte("ok"), backend.PutOptions{})
	require.NoError(t, err, "trusted through CA_CERT_DATA")

	b, err = backend.NewS3(cfg)
	require.NoError(t, err)
	_, err = b.Stat(ctx, "tls.yaml")
	require.Error(t, err, "an unknown CA is refused")
	assert.Contains(t, err.Error(), "certificate")

	insecure := cfg
	insecure.InsecureTLS = true
	b, err = backend.NewS3(insecure)
	require.NoError(t, err)
	_, err = b.Stat(ctx, "tls.yaml")
	require.NoError(t, err, "insecureTLS skips verification")
}

// TestS3EnsureBucket: a missing bucket is created, as upstream KubeStash
// does; one that exists is left alone.
func TestS3EnsureBucket(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MinIO")
	}
	m := startMinIO(t)
	ctx := context.Background()
	for _, c := range []struct {
		name        string
		bucket      string
		wantCreated bool
	}{
		{name: "missing", bucket: "created-by-ensure", wantCreated: true},
		{name: "there", bucket: m.Bucket},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := backend.NewS3(backend.S3Config{Endpoint: m.Endpoint, Bucket: c.bucket, Prefix: "p", Region: "us-east-1",
				AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey})
			require.NoError(t, err)
			if c.wantCreated {
				_, err := b.Stat(ctx, "x.yaml")
				assert.ErrorIs(t, err, backend.ErrNoSuchBucket)
				assert.ErrorIs(t, err, backend.ErrUnavailable, "the catalog serves a missing bucket as an outage")
			}
			created, err := b.EnsureBucket(ctx)
			require.NoError(t, err)
			assert.Equal(t, c.wantCreated, created)
			_, err = b.Put(ctx, "x.yaml", []byte("x"), backend.PutOptions{})
			require.NoError(t, err)
			created, err = b.EnsureBucket(ctx)
			require.NoError(t, err)
			assert.False(t, created, "only once")
		})
	}
}

// TestS3EnsureBucketRefused: credentials that may not create buckets get
// ErrNoSuchBucket saying why, never a secret.
func TestS3EnsureBucketRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodHead: // HeadBucket: no such bucket
			w.WriteHeader(http.StatusNotFound)
		default: // CreateBucket: denied
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied.</Message><BucketName>nope</BucketName><Resource>/nope</Resource></Error>`)
		}
	}))
	defer srv.Close()
	b, err := backend.NewS3(backend.S3Config{Endpoint: srv.URL, Bucket: "nope", Region: "us-east-1",
		AccessKeyID: "limited", SecretAccessKey: "s3cr3t-value", MaxRetries: 1})
	require.NoError(t, err)
	created, err := b.EnsureBucket(context.Background())
	require.Error(t, err)
	assert.False(t, created)
	assert.ErrorIs(t, err, backend.ErrNoSuchBucket)
	assert.Contains(t, err.Error(), "access denied")
	assert.Contains(t, err.Error(), "Access Denied.")
	assert.NotContains(t, err.Error(), "s3cr3t-value")
}

package framework

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIO is a MinIO server on loopback with one bucket and fresh credentials.
// Stop and Start keep the port, the data and the credentials, so a test can
// take the backend away and bring it back.
type MinIO struct {
	*Process
	Endpoint  string // http://127.0.0.1:PORT
	Host      string // 127.0.0.1:PORT
	Bucket    string
	AccessKey string
	SecretKey string
}

func newMinIO(env *envDirs, bin string, detach bool) (*MinIO, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	m := &MinIO{
		Host:      fmt.Sprintf("127.0.0.1:%d", ports[0]),
		Bucket:    "kubestash",
		AccessKey: "ks" + randomHex(8),
		SecretKey: randomHex(20),
	}
	m.Endpoint = "http://" + m.Host
	m.Process = &Process{
		Name:    "minio",
		Bin:     filepath.Join(bin, "minio"),
		LogPath: filepath.Join(env.logs, "minio.log"),
		Detach:  detach,
		Args: []string{"server", "--quiet", "--address", m.Host,
			"--console-address", fmt.Sprintf("127.0.0.1:%d", ports[1]),
			filepath.Join(env.data, "minio")},
		Env: []string{
			"MINIO_ROOT_USER=" + m.AccessKey,
			"MINIO_ROOT_PASSWORD=" + m.SecretKey,
			// Nothing may leave this machine: no update checks, no call
			// home, no console.
			"MINIO_UPDATE=off",
			"MINIO_CALLHOME_ENABLE=off",
			"MINIO_BROWSER=off",
			"MINIO_PROMETHEUS_AUTH_TYPE=public",
		},
	}
	return m, nil
}

// Start starts (or restarts) the server and waits until it serves.
func (m *MinIO) Start(ctx context.Context) error {
	if err := m.Process.Start(); err != nil {
		return err
	}
	return m.waitReady(ctx, func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, m.Endpoint+"/minio/health/live")
	})
}

// Client returns a minio-go client with the server's root credentials.
func (m *MinIO) Client() (*minio.Client, error) {
	return minio.New(m.Host, &minio.Options{
		Creds:  credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
		Secure: false,
	})
}

// EnsureBucket creates the bucket if it does not exist.
func (m *MinIO) EnsureBucket(ctx context.Context, name string) error {
	c, err := m.Client()
	if err != nil {
		return err
	}
	ok, err := c.BucketExists(ctx, name)
	if err != nil {
		return fmt.Errorf("check bucket %s: %w", name, err)
	}
	if ok {
		return nil
	}
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

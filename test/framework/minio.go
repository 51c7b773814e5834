package framework

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIO is a MinIO server on loopback with one bucket and fresh credentials.
// Stop and Start keep the port, the data and the credentials, so a test can
// take the backend away and bring it back.
type MinIO struct {
	*Process
	Endpoint  string // http://127.0.0.1:PORT, or https:// with TLS
	Host      string // 127.0.0.1:PORT
	Bucket    string
	AccessKey string
	SecretKey string
	// CACertPEM is the CA that signed the server's certificate; empty
	// without TLS.
	CACertPEM []byte
}

func newMinIO(env *envDirs, bin, host string, detach bool, ca *CA) (*MinIO, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	m := &MinIO{
		Host:      net.JoinHostPort(host, strconv.Itoa(ports[0])),
		Bucket:    "kubestash",
		AccessKey: "ks" + randomHex(8),
		SecretKey: randomHex(20),
	}
	m.Endpoint = "http://" + m.Host
	certsDir := filepath.Join(env.data, "minio-certs")
	if ca != nil {
		// MinIO serves TLS when its certs dir holds public.crt and
		// private.key.
		if err := os.MkdirAll(certsDir, 0o700); err != nil {
			return nil, err
		}
		kp, err := ca.Issue(certsDir, "server", CertOptions{CommonName: "minio", DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(BridgeIP)}, Server: true})
		if err != nil {
			return nil, err
		}
		if err := os.Rename(kp.CertFile, filepath.Join(certsDir, "public.crt")); err != nil {
			return nil, err
		}
		if err := os.Rename(kp.KeyFile, filepath.Join(certsDir, "private.key")); err != nil {
			return nil, err
		}
		m.Endpoint = "https://" + m.Host
		m.CACertPEM = ca.CertPEM
	}
	m.Process = &Process{
		Name:    "minio",
		Bin:     filepath.Join(bin, "minio"),
		LogPath: filepath.Join(env.logs, "minio.log"),
		Detach:  detach,
		Args: []string{"server", "--quiet", "--address", m.Host, "--certs-dir", certsDir,
			"--console-address", net.JoinHostPort(host, strconv.Itoa(ports[1])),
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
	hc, err := m.httpClient()
	if err != nil {
		return err
	}
	return m.waitReady(ctx, func(ctx context.Context) error {
		// "ready", not "live": a live server may still answer S3 calls
		// with "Server not initialized yet".
		return httpOK(ctx, hc, m.Endpoint+"/minio/health/ready")
	})
}

func (m *MinIO) httpClient() (*http.Client, error) {
	if m.CACertPEM == nil {
		return http.DefaultClient, nil
	}
	tr, err := m.transport()
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: tr}, nil
}

func (m *MinIO) transport() (*http.Transport, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(m.CACertPEM) {
		return nil, errors.New("minio: bad CA certificate")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return tr, nil
}

// Client returns a minio-go client with the server's root credentials.
func (m *MinIO) Client() (*minio.Client, error) {
	o := &minio.Options{Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, "")}
	if m.CACertPEM != nil {
		tr, err := m.transport()
		if err != nil {
			return nil, err
		}
		o.Secure, o.Transport = true, tr
	}
	return minio.New(m.Host, o)
}

// EnsureBucket creates the bucket if it does not exist.
func (m *MinIO) EnsureBucket(ctx context.Context, name string) error {
	c, err := m.Client()
	if err != nil {
		return err
	}
	var ok bool
	for {
		ok, err = c.BucketExists(ctx, name)
		if err == nil {
			break
		}
		// A server that just became ready may still be initializing.
		select {
		case <-ctx.Done():
			return fmt.Errorf("check bucket %s: %w", name, err)
		case <-time.After(200 * time.Millisecond):
		}
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

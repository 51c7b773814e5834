package pathmap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/rest"
)

func TestTranslate(t *testing.T) {
	m, err := Parse(`[{"mountPath":"/data","hostPath":"/srv/pv1"},{"mountPath":"/data/sub/","hostPath":"/srv/other"},{"mountPath":"/dev/termination-log","hostPath":"/tmp/pod/term"}]`)
	require.NoError(t, err)
	for in, want := range map[string]string{
		"/data":                "/srv/pv1",
		"/data/":               "/srv/pv1",
		"/data/a/b":            "/srv/pv1/a/b",
		"/data/sub":            "/srv/other",
		"/data/sub/x":          "/srv/other/x",
		"/data/subway":         "/srv/pv1/subway",
		"/data/../etc/passwd":  "/data/../etc/passwd", // under no mount once clean: unchanged
		"/database":            "/database",
		"/dev/termination-log": "/tmp/pod/term",
		"/dev/null":            "/dev/null",
		"relative/data":        "relative/data",
		"":                     "",
	} {
		assert.Equal(t, want, m.Translate(in), "Translate(%q)", in)
	}
}

func TestTranslateRootAndEmpty(t *testing.T) {
	m, err := Parse(`[{"mountPath":"/","hostPath":"/srv/root"}]`)
	require.NoError(t, err)
	assert.Equal(t, "/srv/root", m.Translate("/"))
	assert.Equal(t, "/srv/root/etc/x", m.Translate("/etc/x"))

	var none Map
	assert.Equal(t, "/data/x", none.Translate("/data/x"))
	empty, err := Parse("  ")
	require.NoError(t, err)
	assert.Empty(t, empty)
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{`{`, `[{"mountPath":"data","hostPath":"/x"}]`, `[{"mountPath":"/data"}]`} {
		_, err := Parse(s)
		assert.Error(t, err, "Parse(%q)", s)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	m := Map{{MountPath: "/a", HostPath: "/b"}}
	s, err := m.Encode()
	require.NoError(t, err)
	back, err := Parse(s)
	require.NoError(t, err)
	assert.Equal(t, m, back)
	s, err = Map(nil).Encode()
	require.NoError(t, err)
	assert.Equal(t, "[]", s)
}

func TestInClusterConfigThroughMap(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte("tok"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.crt"), selfSignedPEM(t), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "namespace"), []byte("ns1\n"), 0o600))
	t.Setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
	t.Setenv("KUBERNETES_SERVICE_PORT", "6443")
	m := Map{{MountPath: ServiceAccountDir, HostPath: dir}}

	cfg, err := m.InClusterConfig()
	require.NoError(t, err)
	assert.Equal(t, "https://127.0.0.1:6443", cfg.Host)
	assert.Equal(t, "tok", cfg.BearerToken)
	assert.Equal(t, filepath.Join(dir, "token"), cfg.BearerTokenFile)
	assert.Equal(t, filepath.Join(dir, "ca.crt"), cfg.TLSClientConfig.CAFile)
	ns, err := m.InClusterNamespace()
	require.NoError(t, err)
	assert.Equal(t, "ns1", ns)

	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	_, err = m.InClusterConfig()
	assert.ErrorIs(t, err, rest.ErrNotInCluster)
}

func TestInClusterConfigBadCA(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte("tok"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.crt"), []byte("not a certificate"), 0o600))
	t.Setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
	t.Setenv("KUBERNETES_SERVICE_PORT", "6443")
	_, err := Map{{MountPath: ServiceAccountDir, HostPath: dir}}.InClusterConfig()
	assert.ErrorContains(t, err, "service account CA")
}

// Without a map entry for the service account folder, the result is
// rest.InClusterConfig's: outside a cluster, ErrNotInCluster.
func TestInClusterConfigFallsBack(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	_, err := Map{{MountPath: "/data", HostPath: t.TempDir()}}.InClusterConfig()
	assert.ErrorIs(t, err, rest.ErrNotInCluster)
}

// selfSignedPEM makes a throwaway CA certificate, only parsed.
func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"kubestash.dev/kubestash/test/framework"
)

// The catalog server is registered as the aggregator finds it in a cluster:
// Service catalog-apiserver in namespace kubestash, whose certificate names
// catalog-apiserver.kubestash.svc. Here the Service is of type ExternalName
// (localhost), and the server listens on loopback.
const (
	catalogNamespace   = "kubestash"
	catalogServiceName = "catalog-apiserver"
	catalogAPIService  = "v1alpha1.catalog.kubestash.com"
)

var gvrAPIService = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// catalogServer is a running bin/apiserver registered with env's
// kube-apiserver.
type catalogServer struct {
	cp       *framework.ControlPlane
	proc     *framework.Process
	URL      string
	Port     int
	CABundle []byte
	// Config reaches the server directly (not through kube-apiserver) as
	// the admin.
	Config *rest.Config
}

type catalogServerOptions struct {
	PollInterval time.Duration
	ExtraArgs    []string
	// CP is the control plane to register with; nil is the package's env.
	CP *framework.ControlPlane
}

// startCatalogServer builds cmd/apiserver, starts it on a free loopback
// port with a fresh serving certificate, registers its APIService and waits
// until kube-apiserver reports it Available. Cleanup unregisters it first
// (an unavailable APIService would break discovery for the other tests) and
// then stops it.
func startCatalogServer(t testing.TB, o catalogServerOptions) *catalogServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := buildCatalogServer(t, dir)

	ca, cert, key, err := servingCertificate([]string{catalogServiceName + "." + catalogNamespace + ".svc", "localhost"},
		[]net.IP{net.ParseIP("127.0.0.1")})
	require.NoError(t, err)
	certFile, keyFile := filepath.Join(dir, "serving.crt"), filepath.Join(dir, "serving.key")
	require.NoError(t, os.WriteFile(certFile, cert, 0o600))
	require.NoError(t, os.WriteFile(keyFile, key, 0o600))

	cp := o.CP
	if cp == nil {
		cp = env
	}
	port := freeLoopbackPort(t)
	s := &catalogServer{cp: cp, Port: port, CABundle: ca, URL: fmt.Sprintf("https://127.0.0.1:%d", port)}
	poll := o.PollInterval
	if poll == 0 {
		poll = 2 * time.Second
	}
	args := []string{
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + certFile, "--tls-private-key-file=" + keyFile,
		"--cert-dir=" + dir,
		"--kubeconfig=" + cp.Kubeconfig,
		"--authentication-kubeconfig=" + cp.Kubeconfig,
		"--authorization-kubeconfig=" + cp.Kubeconfig,
		"--poll-interval=" + poll.String(),
		"--v=2",
	}
	s.proc = &framework.Process{
		Name:    "catalog-apiserver",
		Bin:     bin,
		Args:    append(args, o.ExtraArgs...),
		LogPath: filepath.Join(cp.Dir, "logs", fmt.Sprintf("catalog-apiserver-%d.log", port)),
	}
	require.NoError(t, s.proc.Start())
	t.Cleanup(func() {
		s.unregister(t)
		_ = s.proc.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("catalog-apiserver log (%s):\n%s", s.proc.LogPath, s.proc.LogTail(80))
		}
	})

	s.Config = rest.CopyConfig(cp.Config)
	s.Config.Host = s.URL
	s.Config.TLSClientConfig.CAData = ca
	s.Config.TLSClientConfig.CAFile = ""
	s.waitReady(t, ctx)
	s.register(t, ctx)
	return s
}

// buildCatalogServer compiles cmd/apiserver into dir.
func buildCatalogServer(t testing.TB, dir string) string {
	t.Helper()
	root, err := framework.RepoRoot()
	require.NoError(t, err)
	bin := filepath.Join(dir, "apiserver")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/apiserver")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build ./cmd/apiserver:\n%s", out)
	return bin
}

// waitReady polls /readyz until the catalog index is built.
func (s *catalogServer) waitReady(t testing.TB, ctx context.Context) {
	t.Helper()
	client, err := rest.HTTPClientFor(s.Config)
	require.NoError(t, err)
	var last string
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		if exited, err := s.proc.Exited(); exited {
			return false, fmt.Errorf("catalog-apiserver exited: %v", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/readyz?exclude=catalog-storages", nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK, nil
	})
	require.NoError(t, err, "catalog-apiserver not ready (last: %s); log:\n%s", last, s.proc.LogTail(60))
}

// register creates the ExternalName Service and the APIService, and waits
// until the aggregator finds the server Available.
func (s *catalogServer) register(t testing.TB, ctx context.Context) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(s.cp.Config)
	require.NoError(t, err)
	_, _, err = s.cp.Kubectl(ctx, fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
---
apiVersion: v1
kind: Service
metadata:
  name: %s
  namespace: %s
spec:
  type: ExternalName
  externalName: localhost
  ports:
  - name: https
    port: %d
    protocol: TCP
`, catalogNamespace, catalogServiceName, catalogNamespace, s.Port), "apply", "-f", "-")
	require.NoError(t, err)

	apiService := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": catalogAPIService},
		"spec": map[string]any{
			"group":                "catalog.kubestash.com",
			"version":              "v1alpha1",
			"groupPriorityMinimum": int64(1000),
			"versionPriority":      int64(15),
			"caBundle":             base64.StdEncoding.EncodeToString(s.CABundle),
			"service": map[string]any{
				"namespace": catalogNamespace,
				"name":      catalogServiceName,
				"port":      int64(s.Port),
			},
		},
	}}
	_, err = dyn.Resource(gvrAPIService).Create(ctx, apiService, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Left over by an earlier server of this package: take it over.
		cur, gerr := dyn.Resource(gvrAPIService).Get(ctx, catalogAPIService, metav1.GetOptions{})
		require.NoError(t, gerr)
		apiService.SetResourceVersion(cur.GetResourceVersion())
		_, err = dyn.Resource(gvrAPIService).Update(ctx, apiService, metav1.UpdateOptions{})
	}
	require.NoError(t, err)

	var last string
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		cur, err := dyn.Resource(gvrAPIService).Get(ctx, catalogAPIService, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(cur.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Available" {
				last = fmt.Sprintf("%v: %v", m["reason"], m["message"])
				return m["status"] == "True", nil
			}
		}
		return false, nil
	})
	require.NoError(t, err, "APIService %s not Available: %s", catalogAPIService, last)
}

// unregister deletes the APIService and the Service.
func (s *catalogServer) unregister(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dyn, err := dynamic.NewForConfig(s.cp.Config)
	if err != nil {
		t.Logf("unregister: %v", err)
		return
	}
	if err := dyn.Resource(gvrAPIService).Delete(ctx, catalogAPIService, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Logf("delete APIService: %v", err)
	}
	if err := s.cp.KubeClient.CoreV1().Services(catalogNamespace).Delete(ctx, catalogServiceName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Logf("delete Service: %v", err)
	}
	// kubectl keeps discovery on disk: once the group is gone, refresh it,
	// or later tests' "kubectl get <category>" would ask for resources that
	// are no longer served.
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
		groups, err := s.cp.KubeClient.Discovery().ServerGroups()
		if err != nil {
			return false, nil
		}
		for _, g := range groups.Groups {
			if g.Name == "catalog.kubestash.com" {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Logf("catalog.kubestash.com still in discovery: %v", err)
	}
	if _, _, err := s.cp.Kubectl(ctx, "", "api-resources", "-o", "name"); err != nil {
		t.Logf("refresh kubectl's discovery cache: %v", err)
	}
}

func freeLoopbackPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// servingCertificate makes a CA and a serving certificate it signs, PEM.
func servingCertificate(dns []string, ips []net.IP) (caPEM, certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: "catalog-apiserver-test-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano() + 1), Subject: pkix.Name{CommonName: dns[0]},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: dns, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

package framework

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// The catalog server is registered as the aggregator finds it in a cluster:
// Service catalog-apiserver in namespace kubestash, whose certificate names
// catalog-apiserver.kubestash.svc (the aggregator checks that name, not the
// URL's host). Here the Service is of type ExternalName (localhost) and the
// server listens on loopback.
const (
	CatalogNamespace   = "kubestash"
	CatalogServiceName = "catalog-apiserver"
	CatalogAPIService  = "v1alpha1.catalog.kubestash.com"
)

var gvrAPIService = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// CatalogServerOptions say how to run cmd/apiserver.
type CatalogServerOptions struct {
	// Bin is the server binary; empty: built from ./cmd/apiserver into the
	// environment's folder.
	Bin          string
	PollInterval time.Duration
	ExtraArgs    []string
	Detach       bool
}

// CatalogServer is a running cmd/apiserver registered with the control
// plane through an APIService.
type CatalogServer struct {
	*Process
	URL      string
	Port     int
	CABundle []byte
	// Config reaches the server directly, as the admin.
	Config *rest.Config
	cp     *ControlPlane
}

// StartCatalogServer starts the catalog server on a free loopback port with
// a serving certificate of the environment's CA, waits until its index is
// built, registers its APIService and waits until the aggregator finds it
// Available.
func (cp *ControlPlane) StartCatalogServer(ctx context.Context, o CatalogServerOptions) (*CatalogServer, error) {
	dir := filepath.Join(cp.Dir, "catalog-apiserver")
	if o.Bin == "" {
		root, err := RepoRoot()
		if err != nil {
			return nil, err
		}
		o.Bin = filepath.Join(dir, "apiserver")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", o.Bin, "./cmd/apiserver")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build ./cmd/apiserver: %w\n%s", err, out)
		}
	}
	kp, err := cp.pki.ca.Issue(cp.pki.dir, "catalog-apiserver", CertOptions{
		CommonName: CatalogServiceName + "." + CatalogNamespace + ".svc",
		DNSNames:   []string{CatalogServiceName + "." + CatalogNamespace + ".svc", "localhost"},
		IPs:        []net.IP{net.ParseIP("127.0.0.1")},
		Server:     true,
	})
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	poll := o.PollInterval
	if poll == 0 {
		poll = 2 * time.Second
	}
	s := &CatalogServer{Port: port, CABundle: cp.CACertPEM, URL: fmt.Sprintf("https://127.0.0.1:%d", port), cp: cp}
	s.Process = &Process{
		Name: "catalog-apiserver",
		Bin:  o.Bin,
		Args: append([]string{
			"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(port),
			"--tls-cert-file=" + kp.CertFile, "--tls-private-key-file=" + kp.KeyFile,
			"--cert-dir=" + dir,
			"--kubeconfig=" + cp.Kubeconfig,
			"--authentication-kubeconfig=" + cp.Kubeconfig,
			"--authorization-kubeconfig=" + cp.Kubeconfig,
			"--poll-interval=" + poll.String(),
		}, o.ExtraArgs...),
		LogPath: filepath.Join(cp.Dir, "logs", fmt.Sprintf("catalog-apiserver-%d.log", port)),
		Detach:  o.Detach,
	}
	if err := s.Start(); err != nil {
		return nil, err
	}
	s.Config = rest.CopyConfig(cp.Config)
	s.Config.Host = s.URL
	s.Config.TLSClientConfig.CAData = cp.CACertPEM
	s.Config.TLSClientConfig.CAFile = ""
	client, err := rest.HTTPClientFor(s.Config)
	if err != nil {
		return nil, err
	}
	// Ready once the first index is built; a broken BackupStorage must not
	// hold it back, as in the Deployment's probe.
	err = s.waitReady(ctx, func(ctx context.Context) error {
		return httpOK(ctx, client, s.URL+"/readyz?exclude=catalog-storages")
	})
	if err == nil {
		err = s.register(ctx)
	}
	if err != nil {
		_ = s.Stop(stopGrace)
		return nil, err
	}
	return s, nil
}

func (s *CatalogServer) register(ctx context.Context) error {
	dyn, err := dynamic.NewForConfig(s.cp.Config)
	if err != nil {
		return err
	}
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
`, CatalogNamespace, CatalogServiceName, CatalogNamespace, s.Port), "apply", "-f", "-")
	if err != nil {
		return err
	}
	apiService := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": CatalogAPIService},
		"spec": map[string]any{
			"group":                "catalog.kubestash.com",
			"version":              "v1alpha1",
			"groupPriorityMinimum": int64(1000),
			"versionPriority":      int64(15),
			"caBundle":             base64.StdEncoding.EncodeToString(s.CABundle),
			"service":              map[string]any{"namespace": CatalogNamespace, "name": CatalogServiceName, "port": int64(s.Port)},
		},
	}}
	_, err = dyn.Resource(gvrAPIService).Create(ctx, apiService, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Left over by an earlier server: take it over.
		cur, gerr := dyn.Resource(gvrAPIService).Get(ctx, CatalogAPIService, metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		apiService.SetResourceVersion(cur.GetResourceVersion())
		_, err = dyn.Resource(gvrAPIService).Update(ctx, apiService, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("register APIService: %w", err)
	}
	var last string
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		var ok bool
		ok, last = apiServiceAvailable(ctx, s.cp)
		return ok, nil
	})
	if err != nil {
		return fmt.Errorf("APIService %s not Available: %s; log %s:\n%s", CatalogAPIService, last, s.LogPath, s.LogTail(30))
	}
	return nil
}

// Unregister deletes the APIService and its Service first (an unavailable
// APIService breaks discovery for every client) and waits until the group
// has left discovery.
func (s *CatalogServer) Unregister(ctx context.Context) error {
	dyn, err := dynamic.NewForConfig(s.cp.Config)
	if err != nil {
		return err
	}
	if err := dyn.Resource(gvrAPIService).Delete(ctx, CatalogAPIService, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete APIService: %w", err)
	}
	if err := s.cp.KubeClient.CoreV1().Services(CatalogNamespace).Delete(ctx, CatalogServiceName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Service: %w", err)
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
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
}

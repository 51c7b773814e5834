// Package framework starts a real Kubernetes control plane for tests and the
// dev environment: etcd, kube-apiserver with RBAC and the aggregation layer,
// kube-controller-manager and MinIO, built by hack/tools.sh into bin/. Every
// server listens on 127.0.0.1 on a free port; state lives in one folder.
package framework

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const stopGrace = 10 * time.Second

// Options says what to start and where.
type Options struct {
	// Dir holds data, logs, certificates and the kubeconfig. Empty: a new
	// temporary folder, removed by Stop.
	Dir string
	// BinDir holds the components; empty: <repo>/bin.
	BinDir string
	// Detach lets the processes outlive this program (dev environment).
	Detach bool
	// NoControllerManager and NoMinIO leave those components out.
	NoControllerManager bool
	NoMinIO             bool
	// MinIOOnly starts MinIO and nothing else (backend tests).
	MinIOOnly bool
	// MinIOTLS serves MinIO over https with a certificate of the
	// environment's CA (MinIO.CACertPEM).
	MinIOTLS bool
	// CRDDir holds CRD manifests to install; empty: <repo>/artifacts/crds.
	// NoCRDs installs none.
	CRDDir string
	NoCRDs bool
	// StartTimeout bounds the whole start; default 5 minutes (a cold
	// kube-apiserver on two busy cores needs well under one).
	StartTimeout time.Duration
	// Node readies the host for a real node (StartNode): it takes the
	// host's node lock, makes our bridge, and serves kube-apiserver and
	// MinIO on the bridge's host address, where pods reach them. It needs
	// root.
	Node bool
	// Version is the tag of our images (the pause image the node pins);
	// empty: the VERSION file.
	Version string
}

// ControlPlane is a running environment.
type ControlPlane struct {
	Dir               string
	Etcd              *Etcd
	APIServer         *APIServer
	ControllerManager *ControllerManager
	MinIO             *MinIO
	// Kubeconfig is the path of an admin kubeconfig that kubectl can use.
	Kubeconfig string
	// Config is the admin rest config; KubeClient a clientset over it.
	Config     *rest.Config
	KubeClient kubernetes.Interface
	// CACertPEM is the cluster CA, FrontProxyCACertPEM the requestheader CA.
	CACertPEM           []byte
	FrontProxyCACertPEM []byte
	// Node is the real node started by StartNode, if any.
	Node *Node
	// Host is the address servers listen on: 127.0.0.1, or the bridge's
	// host address with Options.Node.
	Host string

	opts     Options
	ownDir   bool
	hostHeld bool
	pki      *pki
}

type envDirs struct{ root, logs, data, pki string }

type pki struct {
	ca, frontProxyCA         *CA
	caFile, frontProxyCAFile string
	apiserver, admin         *KeyPair
	frontProxyClient         *KeyPair
	kubeletClient            *KeyPair
	saPub, saKey             string
	dir                      string
}

// Start brings up the control plane and waits until every part is ready. On
// error everything already started is stopped.
func Start(parent context.Context, o Options) (cp *ControlPlane, err error) {
	if o.StartTimeout == 0 {
		o.StartTimeout = 5 * time.Minute
	}

	root, err := RepoRoot()
	if err != nil && (o.BinDir == "" || (o.CRDDir == "" && !o.NoCRDs) || (o.Node && o.Version == "")) {
		return nil, err
	}
	if o.BinDir == "" {
		o.BinDir = filepath.Join(root, "bin")
	}
	if o.CRDDir == "" {
		o.CRDDir = filepath.Join(root, "artifacts", "crds")
	}
	if o.MinIOOnly {
		o.NoControllerManager, o.NoMinIO, o.NoCRDs = true, false, true
	}
	if err := checkBinaries(o); err != nil {
		return nil, err
	}
	if o.Version == "" && root != "" {
		if b, err := os.ReadFile(filepath.Join(root, "VERSION")); err == nil {
			o.Version = strings.TrimSpace(string(b))
		}
	}

	cp = &ControlPlane{Dir: o.Dir, opts: o, Host: "127.0.0.1"}
	if o.Node {
		// Waiting for another package's node is not start time: take the
		// host before the start timeout runs.
		if err := CanRunNode(o.BinDir); err != nil {
			return nil, err
		}
		if err := acquireHost(parent, o.BinDir); err != nil {
			return nil, err
		}
		cp.hostHeld, cp.Host = true, BridgeIP
	}
	ctx, cancel := context.WithTimeout(parent, o.StartTimeout)
	defer cancel()
	if cp.Dir == "" {
		cp.Dir, err = os.MkdirTemp("", "kubestash-env-")
		if err != nil {
			cp.Stop()
			return nil, err
		}
		cp.ownDir = true
	}
	defer func() {
		if err != nil {
			cp.Stop()
		}
	}()
	dirs := &envDirs{root: cp.Dir, logs: filepath.Join(cp.Dir, "logs"), data: filepath.Join(cp.Dir, "data"), pki: filepath.Join(cp.Dir, "pki")}
	for _, d := range []string{dirs.logs, dirs.data, dirs.pki} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return cp, err
		}
	}
	if cp.pki, err = newPKI(dirs.pki); err != nil {
		return cp, fmt.Errorf("generate certificates: %w", err)
	}
	cp.CACertPEM = cp.pki.ca.CertPEM
	cp.FrontProxyCACertPEM = cp.pki.frontProxyCA.CertPEM

	// MinIO does not depend on Kubernetes: start it first and let it come
	// up while etcd and kube-apiserver do.
	minioErr := make(chan error, 1)
	if !o.NoMinIO {
		var ca *CA
		if o.MinIOTLS {
			ca = cp.pki.ca
		}
		if cp.MinIO, err = newMinIO(dirs, o.BinDir, cp.Host, o.Detach, ca); err != nil {
			return cp, err
		}
		go func() {
			if err := cp.MinIO.Start(ctx); err != nil {
				minioErr <- err
				return
			}
			minioErr <- cp.MinIO.EnsureBucket(ctx, cp.MinIO.Bucket)
		}()
	} else {
		minioErr <- nil
	}

	if o.MinIOOnly {
		return cp, <-minioErr
	}
	if cp.Etcd, err = startEtcd(ctx, dirs, o.BinDir, o.Detach); err != nil {
		return cp, err
	}
	if cp.APIServer, err = startAPIServer(ctx, dirs, cp.pki, o.BinDir, cp.Etcd.ClientURL, cp.Host, o.Detach); err != nil {
		return cp, err
	}
	cp.Kubeconfig = filepath.Join(cp.Dir, "kubeconfig")
	if err := cp.writeKubeconfig(); err != nil {
		return cp, err
	}
	if cp.Config, err = clientcmd.BuildConfigFromFlags("", cp.Kubeconfig); err != nil {
		return cp, err
	}
	cp.Config.QPS, cp.Config.Burst = 100, 200
	if cp.KubeClient, err = kubernetes.NewForConfig(cp.Config); err != nil {
		return cp, err
	}
	if !o.NoControllerManager {
		if cp.ControllerManager, err = startControllerManager(ctx, dirs, cp.pki, o.BinDir, cp.Kubeconfig, o.Detach); err != nil {
			return cp, err
		}
	}
	if err := <-minioErr; err != nil {
		return cp, err
	}
	if !o.NoCRDs {
		if err := InstallCRDs(ctx, cp.Config, o.CRDDir); err != nil {
			return cp, err
		}
	}
	return cp, nil
}

// Stop ends every process it started (unless they were detached) and
// removes the folder it created.
func (cp *ControlPlane) Stop() {
	if cp == nil {
		return
	}
	cp.Node.Stop()
	for _, p := range cp.Processes() {
		_ = p.Stop(stopGrace)
	}
	if cp.hostHeld {
		releaseHost()
		cp.hostHeld = false
	}
	if cp.ownDir && os.Getenv("KUBESTASH_KEEP_ENV") == "" {
		_ = os.RemoveAll(cp.Dir)
	}
}

// Processes lists the running components in the order to stop them.
func (cp *ControlPlane) Processes() []*Process {
	var ps []*Process
	if cp.Node != nil {
		ps = append(ps, cp.Node.Processes()...)
	}
	if cp.ControllerManager != nil {
		ps = append(ps, cp.ControllerManager.Process)
	}
	if cp.APIServer != nil {
		ps = append(ps, cp.APIServer.Process)
	}
	if cp.Etcd != nil {
		ps = append(ps, cp.Etcd.Process)
	}
	if cp.MinIO != nil && cp.MinIO.Process != nil {
		ps = append(ps, cp.MinIO.Process)
	}
	return ps
}

func checkBinaries(o Options) error {
	var need []string
	if !o.MinIOOnly {
		need = append(need, "etcd", "kube-apiserver")
	}
	if !o.NoControllerManager {
		need = append(need, "kube-controller-manager")
	}
	if !o.NoMinIO {
		need = append(need, "minio")
	}
	var missing []string
	for _, b := range need {
		if fi, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil || fi.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s in %s: run hack/tools.sh (or make tools) first", strings.Join(missing, ", "), o.BinDir)
	}
	return nil
}

func newPKI(dir string) (*pki, error) {
	p := &pki{dir: dir}
	var err error
	if p.ca, err = newCA("kubestash-test-ca"); err != nil {
		return nil, err
	}
	if p.frontProxyCA, err = newCA("kubestash-test-front-proxy-ca"); err != nil {
		return nil, err
	}
	if p.caFile, err = p.ca.WriteCert(dir, "ca"); err != nil {
		return nil, err
	}
	if p.frontProxyCAFile, err = p.frontProxyCA.WriteCert(dir, "front-proxy-ca"); err != nil {
		return nil, err
	}
	if p.apiserver, err = p.ca.Issue(dir, "apiserver", CertOptions{
		CommonName: "kube-apiserver",
		DNSNames:   []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPs:        []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1"), net.ParseIP(BridgeIP)},
		Server:     true,
	}); err != nil {
		return nil, err
	}
	// kube-apiserver's identity towards kubelets (logs, exec).
	if p.kubeletClient, err = p.ca.Issue(dir, "apiserver-kubelet-client", CertOptions{
		CommonName: "kube-apiserver-kubelet-client", Organizations: []string{"system:masters"}, Client: true,
	}); err != nil {
		return nil, err
	}
	if p.admin, err = p.ca.Issue(dir, "admin", CertOptions{
		CommonName: "kubestash-admin", Organizations: []string{"system:masters"}, Client: true,
	}); err != nil {
		return nil, err
	}
	if p.frontProxyClient, err = p.frontProxyCA.Issue(dir, "front-proxy-client", CertOptions{
		CommonName: frontProxyClientName, Client: true,
	}); err != nil {
		return nil, err
	}
	if p.saPub, p.saKey, err = writeServiceAccountKey(dir); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *pki) adminHTTPClient() (*http.Client, error) {
	cert, err := tls.X509KeyPair(p.admin.CertPEM, p.admin.KeyPEM)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.Cert)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
	}}}, nil
}

func (cp *ControlPlane) writeKubeconfig() error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubestash"] = &clientcmdapi.Cluster{Server: cp.APIServer.URL, CertificateAuthorityData: cp.pki.ca.CertPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cp.pki.admin.CertPEM, ClientKeyData: cp.pki.admin.KeyPEM}
	cfg.Contexts["kubestash"] = &clientcmdapi.Context{Cluster: "kubestash", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "kubestash"
	if err := clientcmd.WriteToFile(*cfg, cp.Kubeconfig); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// UserConfig signs a client certificate for a user and groups with the
// cluster CA and returns a rest config for it, for RBAC tests.
func (cp *ControlPlane) UserConfig(user string, groups ...string) (*rest.Config, error) {
	kp, err := cp.pki.ca.Issue(filepath.Join(cp.Dir, "pki"), "user-"+user, CertOptions{CommonName: user, Organizations: groups, Client: true})
	if err != nil {
		return nil, err
	}
	c := rest.AnonymousClientConfig(cp.Config)
	c.TLSClientConfig.CertData = kp.CertPEM
	c.TLSClientConfig.KeyData = kp.KeyPEM
	return c, nil
}

// UserKubeconfig writes a kubeconfig (file name) for a user and groups,
// with a client certificate from the cluster CA, and returns its path: to
// run a component with the rights its RBAC manifest gives it rather than
// the admin's. A ServiceAccount is user system:serviceaccount:<ns>:<name>
// in groups system:serviceaccounts and system:serviceaccounts:<ns>.
func (cp *ControlPlane) UserKubeconfig(name, user string, groups ...string) (string, error) {
	kp, err := cp.pki.ca.Issue(filepath.Join(cp.Dir, "pki"), "user-"+name, CertOptions{CommonName: user, Organizations: groups, Client: true})
	if err != nil {
		return "", err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubestash"] = &clientcmdapi.Cluster{Server: cp.APIServer.URL, CertificateAuthorityData: cp.pki.ca.CertPEM}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}
	cfg.Contexts["kubestash"] = &clientcmdapi.Context{Cluster: "kubestash", AuthInfo: name, Namespace: "default"}
	cfg.CurrentContext = "kubestash"
	path := filepath.Join(cp.Dir, "kubeconfig-"+name)
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("write kubeconfig for %s: %w", user, err)
	}
	return path, nil
}

// Version is the tag of our images in this environment.
func (cp *ControlPlane) Version() string { return cp.opts.Version }

// ExtensionsClient returns an apiextensions clientset for the admin.
func (cp *ControlPlane) ExtensionsClient() (apiextensionsclient.Interface, error) {
	return apiextensionsclient.NewForConfig(cp.Config)
}

// RepoRoot finds the module root by walking up from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module kubestash.dev/kubestash\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the kubestash.dev/kubestash module root above the working directory")
		}
		dir = parent
	}
}

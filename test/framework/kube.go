package framework

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
)

// APIServer is kube-apiserver with RBAC and the aggregation layer.
type APIServer struct {
	*Process
	URL string
}

// Front-proxy identity: the aggregator presents this client certificate to
// aggregated servers, which trust it through the requestheader CA published
// in kube-system/extension-apiserver-authentication.
const frontProxyClientName = "front-proxy-client"

func startAPIServer(ctx context.Context, env *envDirs, pki *pki, bin, etcdURL, host string, detach bool) (*APIServer, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	url := "https://" + net.JoinHostPort(host, strconv.Itoa(port))
	p := &Process{
		Name:    "kube-apiserver",
		Bin:     filepath.Join(bin, "kube-apiserver"),
		LogPath: filepath.Join(env.logs, "kube-apiserver.log"),
		Detach:  detach,
		Args: []string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=" + host,
			"--advertise-address=" + host,
			"--secure-port=" + strconv.Itoa(port),
			"--tls-cert-file=" + pki.apiserver.CertFile,
			"--tls-private-key-file=" + pki.apiserver.KeyFile,
			"--client-ca-file=" + pki.caFile,
			"--authorization-mode=Node,RBAC",
			"--enable-admission-plugins=NodeRestriction",
			"--kubelet-client-certificate=" + pki.kubeletClient.CertFile,
			"--kubelet-client-key=" + pki.kubeletClient.KeyFile,
			"--kubelet-certificate-authority=" + pki.caFile,
			"--kubelet-preferred-address-types=InternalIP",
			"--anonymous-auth=false",
			"--allow-privileged=true",
			// A range is required; nothing ever routes to it here.
			"--service-cluster-ip-range=10.96.0.0/24",
			"--service-account-issuer=https://kubernetes.default.svc",
			"--service-account-key-file=" + pki.saPub,
			"--service-account-signing-key-file=" + pki.saKey,
			"--api-audiences=https://kubernetes.default.svc",
			// Aggregation layer.
			"--requestheader-client-ca-file=" + pki.frontProxyCAFile,
			"--requestheader-allowed-names=" + frontProxyClientName,
			"--requestheader-username-headers=X-Remote-User",
			"--requestheader-group-headers=X-Remote-Group",
			"--requestheader-extra-headers-prefix=X-Remote-Extra-",
			"--proxy-client-cert-file=" + pki.frontProxyClient.CertFile,
			"--proxy-client-key-file=" + pki.frontProxyClient.KeyFile,
			"--enable-aggregator-routing=false",
			"--profiling=false",
			"--v=0",
		},
	}
	if host == "127.0.0.1" {
		// The kubernetes Service would point at 127.0.0.1, which
		// Endpoints reject; without a node nothing in-cluster needs it.
		p.Args = append(p.Args, "--endpoint-reconciler-type=none")
	}
	if err := p.Start(); err != nil {
		return nil, err
	}
	a := &APIServer{Process: p, URL: url}
	client, err := pki.adminHTTPClient()
	if err != nil {
		return nil, err
	}
	err = p.waitReady(ctx, func(ctx context.Context) error {
		return httpOK(ctx, client, url+"/readyz")
	})
	if err != nil {
		_ = p.Stop(stopGrace)
		return nil, err
	}
	return a, nil
}

// ControllerManager is kube-controller-manager with the controllers this
// project relies on: CronJob, Job, garbage collector, namespace, service
// accounts and their tokens, PV binding and protection, and
// TTL-after-finished.
type ControllerManager struct {
	*Process
}

// Controllers run by kube-controller-manager in tests and the dev env.
var Controllers = []string{
	"cronjob-controller",
	"job-controller",
	"garbage-collector-controller",
	"namespace-controller",
	"serviceaccount-controller",
	"serviceaccount-token-controller",
	"persistentvolume-binder-controller",
	// kube-apiserver's StorageObjectInUseProtection admission puts a
	// finalizer on every PVC and PV; these controllers take it off once
	// no Pod uses the volume, or a deleted PVC would never go.
	"persistentvolumeclaim-protection-controller",
	"persistentvolume-protection-controller",
	"ttl-after-finished-controller",
	"root-ca-certificate-publisher-controller",
	// The built-in admin, edit and view roles gather the rules of
	// ClusterRoles labelled aggregate-to-*, as the catalog's are
	// (artifacts/apiserver/02-rbac.yaml).
	"clusterrole-aggregation-controller",
	// A real node: Ready taints lifted, the kubernetes Service's
	// endpoints, finished pods of deleted nodes collected.
	"node-lifecycle-controller",
	"endpointslice-controller",
	"pod-garbage-collector-controller",
	// The chart's servers: Deployments roll ReplicaSets of pods, the
	// PodDisruptionBudget has a status, and the aggregator finds the
	// catalog server through its Service's endpoints.
	"deployment-controller",
	"replicaset-controller",
	"disruption-controller",
	"endpoints-controller",
}

func startControllerManager(ctx context.Context, env *envDirs, pki *pki, bin, kubeconfig string, detach bool) (*ControllerManager, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	controllers := ""
	for i, c := range Controllers {
		if i > 0 {
			controllers += ","
		}
		controllers += c
	}
	p := &Process{
		Name:    "kube-controller-manager",
		Bin:     filepath.Join(bin, "kube-controller-manager"),
		LogPath: filepath.Join(env.logs, "kube-controller-manager.log"),
		Detach:  detach,
		Args: []string{
			"--kubeconfig=" + kubeconfig,
			"--authentication-kubeconfig=" + kubeconfig,
			"--authorization-kubeconfig=" + kubeconfig,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--cert-dir=" + filepath.Join(env.data, "kcm-certs"),
			"--controllers=" + controllers,
			"--use-service-account-credentials=false",
			"--service-account-private-key-file=" + pki.saKey,
			"--root-ca-file=" + pki.caFile,
			"--leader-elect=false",
			// Tests wait on CronJobs and Jobs: sync quickly.
			"--concurrent-cron-job-syncs=5",
			"--concurrent-job-syncs=5",
			"--v=0",
		},
	}
	if err := p.Start(); err != nil {
		return nil, err
	}
	insecure := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback health probe of a self-signed server
		DialContext:     (&net.Dialer{}).DialContext,
	}}
	err = p.waitReady(ctx, func(ctx context.Context) error {
		return httpOK(ctx, insecure, fmt.Sprintf("https://127.0.0.1:%d/healthz", port))
	})
	if err != nil {
		_ = p.Stop(stopGrace)
		return nil, err
	}
	return &ControllerManager{Process: p}, nil
}

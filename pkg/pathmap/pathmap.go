// Package pathmap is the contract between the local node (test/localnode,
// the stand-in for a kubelet in the demo and the end-to-end tests) and the
// programs it runs, such as cmd/agent.
//
// A real kubelet gives each container a mount namespace: a PVC appears at its
// mountPath, the ServiceAccount token at
// /var/run/secrets/kubernetes.io/serviceaccount. The local node runs
// containers as plain processes, unprivileged and without mount namespaces,
// so a container path does not exist on the host. Instead the process gets:
//
//   - KUBESTASH_PATH_MAP: a JSON list of {"mountPath", "hostPath"} pairs, one
//     per volume mount of the container (and one per extra file the node
//     provides, such as the termination log). A program that honours the map
//     passes every container path through Translate before it touches the
//     file system; Translate picks the longest mountPath that is the path or
//     one of its parents and rewrites that prefix to the hostPath.
//   - KUBESTASH_ROOT: a per-container folder in which each mountPath is a
//     symbolic link to its hostPath, so that a program that knows nothing of
//     the map (a shell script in a test) can reach a mount as
//     "$KUBESTASH_ROOT/data" instead of "/data".
//
// When KUBESTASH_PATH_MAP is not set (a real cluster), Translate returns its
// argument unchanged and InClusterConfig is rest.InClusterConfig: the product
// behaves exactly as it would without this package.
package pathmap

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
)

// Environment variables of the contract.
const (
	EnvPathMap = "KUBESTASH_PATH_MAP"
	EnvRoot    = "KUBESTASH_ROOT"
)

// ServiceAccountDir is where a kubelet mounts the in-cluster credentials.
const ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// Mount maps one container path (a folder or a file) to a host path.
type Mount struct {
	MountPath string `json:"mountPath"`
	HostPath  string `json:"hostPath"`
}

// Map is the list of mounts of one container.
type Map []Mount

// Parse decodes the value of KUBESTASH_PATH_MAP. An empty string is an empty
// map. Every mountPath must be absolute: a relative one could never match.
func Parse(s string) (Map, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var m Map
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("parse %s: %w", EnvPathMap, err)
	}
	for i := range m {
		if !path.IsAbs(m[i].MountPath) || m[i].HostPath == "" {
			return nil, fmt.Errorf("parse %s: entry %d (%q -> %q) needs an absolute mountPath and a hostPath", EnvPathMap, i, m[i].MountPath, m[i].HostPath)
		}
		m[i].MountPath = path.Clean(m[i].MountPath)
	}
	return m, nil
}

// Encode is the value of KUBESTASH_PATH_MAP for m.
func (m Map) Encode() (string, error) {
	if m == nil {
		m = Map{}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode path map: %w", err)
	}
	return string(b), nil
}

// Translate returns the host path of container path p: the mount with the
// longest mountPath that equals p or is a parent folder of it wins. Relative
// paths and paths under no mount are returned unchanged (a relative path is
// relative to the working folder, which the local node already chose on the
// host).
func (m Map) Translate(p string) string {
	if len(m) == 0 || !path.IsAbs(p) {
		return p
	}
	clean := path.Clean(p)
	best := -1
	for i, mt := range m {
		if !under(clean, mt.MountPath) {
			continue
		}
		if best < 0 || len(mt.MountPath) > len(m[best].MountPath) {
			best = i
		}
	}
	if best < 0 {
		return p
	}
	rel := strings.TrimPrefix(clean, m[best].MountPath)
	return filepath.Join(m[best].HostPath, filepath.FromSlash(rel))
}

// under reports whether p is dir or inside it; both are clean and absolute.
func under(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

var fromEnv = sync.OnceValues(func() (Map, error) { return Parse(os.Getenv(EnvPathMap)) })

// FromEnv is the map of this process, read from KUBESTASH_PATH_MAP once.
func FromEnv() (Map, error) { return fromEnv() }

// Translate translates p with the map of this process. A malformed
// KUBESTASH_PATH_MAP translates nothing; FromEnv and InClusterConfig report
// it, so call one of them at start-up to fail early.
func Translate(p string) string {
	m, err := FromEnv()
	if err != nil {
		return p
	}
	return m.Translate(p)
}

// InClusterConfig is rest.InClusterConfig with the token and CA read through
// the path map. Without a map entry for the service account folder it is
// rest.InClusterConfig itself.
func InClusterConfig() (*rest.Config, error) {
	m, err := FromEnv()
	if err != nil {
		return nil, err
	}
	return m.InClusterConfig()
}

// InClusterConfig is the package-level InClusterConfig for map m.
func (m Map) InClusterConfig() (*rest.Config, error) {
	dir := m.Translate(ServiceAccountDir)
	if dir == ServiceAccountDir {
		return rest.InClusterConfig()
	}
	// The same checks and fields as rest.InClusterConfig, which hard-codes
	// the container paths.
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, rest.ErrNotInCluster
	}
	tokenFile := filepath.Join(dir, "token")
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, fmt.Errorf("read service account token through %s: %w", EnvPathMap, err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	tls := rest.TLSClientConfig{}
	if _, err := certutil.NewPool(caFile); err != nil {
		return nil, fmt.Errorf("read service account CA through %s: %w", EnvPathMap, err)
	}
	tls.CAFile = caFile
	return &rest.Config{
		Host:            "https://" + net.JoinHostPort(host, port),
		TLSClientConfig: tls,
		BearerToken:     string(token),
		BearerTokenFile: tokenFile,
	}, nil
}

// InClusterNamespace is the namespace of the pod this process runs in, read
// from the service account folder (through the map when there is one).
func InClusterNamespace() (string, error) {
	m, err := FromEnv()
	if err != nil {
		return "", err
	}
	return m.InClusterNamespace()
}

// InClusterNamespace is the package-level InClusterNamespace for map m.
func (m Map) InClusterNamespace() (string, error) {
	b, err := os.ReadFile(filepath.Join(m.Translate(ServiceAccountDir), "namespace"))
	if err != nil {
		return "", fmt.Errorf("read the pod's namespace: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kubestash.dev/kubestash/test/framework"
)

// catalogServer is a running cmd/apiserver registered with a control
// plane's kube-apiserver (framework.StartCatalogServer).
type catalogServer struct {
	*framework.CatalogServer
	proc *framework.Process
}

type catalogServerOptions struct {
	PollInterval time.Duration
	ExtraArgs    []string
	// CP is the control plane to register with; nil is the package's env.
	CP *framework.ControlPlane
}

// The server binary, built once for the package.
var catalogBin struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

func buildCatalogServer(t testing.TB) string {
	t.Helper()
	catalogBin.once.Do(func() {
		root, err := framework.RepoRoot()
		if err != nil {
			catalogBin.err = err
			return
		}
		catalogBin.path = filepath.Join(env.Dir, "catalog-apiserver-bin", "apiserver")
		cmd := exec.Command("go", "build", "-o", catalogBin.path, "./cmd/apiserver")
		cmd.Dir = root
		catalogBin.out, catalogBin.err = cmd.CombinedOutput()
	})
	require.NoError(t, catalogBin.err, "go build ./cmd/apiserver:\n%s", catalogBin.out)
	return catalogBin.path
}

// startCatalogServer starts the catalog server and registers its
// APIService. Cleanup unregisters it first (an unavailable APIService
// would break discovery for the other tests), refreshes kubectl's
// discovery cache, and then stops it.
func startCatalogServer(t testing.TB, o catalogServerOptions) *catalogServer {
	t.Helper()
	cp := o.CP
	if cp == nil {
		cp = env
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	poll := o.PollInterval
	if poll == 0 {
		poll = 2 * time.Second
	}
	s, err := cp.StartCatalogServer(ctx, framework.CatalogServerOptions{
		Bin: buildCatalogServer(t), PollInterval: poll, ExtraArgs: append([]string{"--v=2"}, o.ExtraArgs...),
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Unregister(ctx); err != nil {
			t.Logf("unregister the catalog server: %v", err)
		}
		// kubectl keeps discovery on disk: once the group is gone,
		// refresh it, or later "kubectl get <category>" would ask for
		// resources no longer served.
		if _, _, err := cp.Kubectl(ctx, "", "api-resources", "-o", "name"); err != nil {
			t.Logf("refresh kubectl's discovery cache: %v", err)
		}
		_ = s.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("catalog-apiserver log (%s):\n%s", s.LogPath, s.LogTail(80))
		}
	})
	return &catalogServer{CatalogServer: s, proc: s.Process}
}

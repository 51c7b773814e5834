// Package backup runs scheduled backups of a stand-alone PVC through the
// whole system: kube-apiserver with the catalog server behind an
// APIService, kube-controller-manager's CronJob and Job controllers, this
// project's controller, a real node (kubelet, containerd, runc) running
// the agent's image with restic, and MinIO.
package backup

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kubestash.dev/kubestash/test/framework"
)

var (
	env    *framework.ControlPlane
	binDir string
)

func TestMain(m *testing.M) {
	framework.RunMain(m, framework.Options{Node: true}, &env)
}

var system struct {
	once sync.Once
	err  error
}

// startSystem builds the binaries and starts, once per package, the
// real node, the catalog server and the controller on env. Its processes
// end with the test binary.
func startSystem(ctx context.Context) error {
	system.once.Do(func() {
		if system.err = build(ctx); system.err != nil {
			return
		}
		if system.err = startNode(ctx, env); system.err != nil {
			return
		}
		procs, system.err = start(ctx, env)
	})
	return system.err
}

// build compiles the catalog server and the controller into binDir, next
// to restic (for restic by hand), and the images the node runs.
func build(ctx context.Context) error {
	root, err := framework.RepoRoot()
	if err != nil {
		return err
	}
	binDir = filepath.Join(env.Dir, "bin")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", binDir+"/", "./cmd/apiserver", "./cmd/controller")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	cmd = exec.CommandContext(ctx, "hack/images.sh")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("hack/images.sh: %w\n%s", err, out)
	}
	return os.Link(filepath.Join(root, "bin", "restic"), filepath.Join(binDir, "restic"))
}

// startNode starts the real node of cp with our images.
func startNode(ctx context.Context, cp *framework.ControlPlane) error {
	root, err := framework.RepoRoot()
	if err != nil {
		return err
	}
	images, err := framework.ImageTarballs(filepath.Join(root, "bin"))
	if err != nil {
		return err
	}
	_, err = cp.StartNode(ctx, images)
	return err
}

// start starts the catalog server and the controller on cp, and installs
// the addons and Job roles.
func start(ctx context.Context, cp *framework.ControlPlane) ([]*framework.Process, error) {
	root, err := framework.RepoRoot()
	if err != nil {
		return nil, err
	}
	// The catalog server, too, runs as its ServiceAccount with the rights
	// of artifacts/apiserver: no Secret at all but those the controller
	// grants it, storage by storage.
	for _, f := range []string{"00-namespace.yaml", "01-serviceaccount.yaml", "02-rbac.yaml"} {
		if _, _, err := cp.Kubectl(ctx, "", "apply", "-f", filepath.Join(root, "artifacts", "apiserver", f)); err != nil {
			return nil, err
		}
	}
	serverKubeconfig, err := cp.UserKubeconfig("catalog-apiserver", "system:serviceaccount:kubestash:catalog-apiserver",
		"system:serviceaccounts", "system:serviceaccounts:kubestash", "system:authenticated")
	if err != nil {
		return nil, err
	}
	srv, err := cp.StartCatalogServer(ctx, framework.CatalogServerOptions{Bin: filepath.Join(binDir, "apiserver"), PollInterval: 2 * time.Second,
		ExtraArgs: []string{"--kubeconfig=" + serverKubeconfig, "--authentication-kubeconfig=" + serverKubeconfig, "--authorization-kubeconfig=" + serverKubeconfig}})
	if err != nil {
		return nil, err
	}
	ps := []*framework.Process{srv.Process}
	for _, dir := range []string{"artifacts/addons", "artifacts/controller"} {
		if _, _, err := cp.Kubectl(ctx, "", "apply", "-f", filepath.Join(root, dir)); err != nil {
			return ps, err
		}
	}
	p, err := controllerProcess(cp)
	if err != nil {
		return ps, err
	}
	if err := p.Start(); err != nil {
		return ps, err
	}
	return append(ps, p), nil
}

// controllerProcess is the controller of cp, as its ServiceAccount with
// the rights of artifacts/controller (not as the admin: a missing rule
// fails here), with its usual flags and extra ones after them (a later
// flag wins).
func controllerProcess(cp *framework.ControlPlane, extra ...string) (*framework.Process, error) {
	kubeconfig, err := cp.UserKubeconfig("kubestash-controller", "system:serviceaccount:kubestash:kubestash-controller",
		"system:serviceaccounts", "system:serviceaccounts:kubestash", "system:authenticated")
	if err != nil {
		return nil, err
	}
	p := &framework.Process{Name: "controller", Bin: filepath.Join(binDir, "controller"), Args: append([]string{
		"--kubeconfig=" + kubeconfig, "--leader-elect=false", "--resync=5s", "--agent-image=" + agentImage(cp), "--v=2"}, extra...)}
	p.LogPath = filepath.Join(cp.Dir, "logs", p.Name+".log")
	return p, nil
}

// restartController runs env's controller with extra flags until t ends,
// then with its usual ones again. It serves its metrics and health
// endpoints on the address it returns, and is ready (its caches synced)
// when this returns.
func restartController(t testing.TB, extra ...string) (metricsAddr string) {
	t.Helper()
	port, err := framework.FreePort()
	require.NoError(t, err)
	metricsAddr = fmt.Sprintf("127.0.0.1:%d", port)
	// Both append to the controller's log.
	p, err := controllerProcess(env, append(extra, "--metrics-bind-address="+metricsAddr)...)
	require.NoError(t, err)
	require.NoError(t, replaceProcess(p))
	t.Cleanup(func() {
		usual, err := controllerProcess(env)
		if err == nil {
			err = replaceProcess(usual)
		}
		if err != nil {
			t.Errorf("start the controller again: %v", err)
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + metricsAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 2*time.Minute, 500*time.Millisecond, "the controller's /readyz answers once its caches synced")
	return metricsAddr
}

// replaceProcess stops the process of procs named as p and starts p in
// its place.
func replaceProcess(p *framework.Process) error {
	i := slices.IndexFunc(procs, func(q *framework.Process) bool { return q.Name == p.Name })
	if i < 0 {
		return fmt.Errorf("no %s runs", p.Name)
	}
	if err := procs[i].Stop(30 * time.Second); err != nil {
		return fmt.Errorf("stop %s: %w", p.Name, err)
	}
	if err := p.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	procs[i] = p
	return nil
}

var procs []*framework.Process

// agentImage is the agent's image of this version, as the Functions name it.
func agentImage(cp *framework.ControlPlane) string {
	return "ghcr.io/kubestash-catalog/agent:" + cp.Version()
}

// logsOnFailure prints the end of each process's log when t failed.
func logsOnFailure(t testing.TB) {
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range procs {
				t.Logf("%s log:\n%s", p.Name, p.LogTail(40))
			}
		}
	})
}

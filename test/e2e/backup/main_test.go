// Package backup runs scheduled backups of a stand-alone PVC through the
// whole system: kube-apiserver with the catalog server behind an
// APIService, kube-controller-manager's CronJob and Job controllers, this
// project's controller, the local node running the agent, restic and MinIO.
package backup

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"kubestash.dev/kubestash/test/framework"
)

var (
	env    *framework.ControlPlane
	binDir string
)

func TestMain(m *testing.M) {
	framework.RunMain(m, framework.Options{}, &env)
}

var system struct {
	once sync.Once
	err  error
}

// startSystem builds the binaries and starts, once per package, the
// catalog server, the controller and the local node on env. Its processes
// end with the test binary.
func startSystem(ctx context.Context) error {
	system.once.Do(func() {
		if system.err = build(ctx); system.err == nil {
			procs, system.err = start(ctx, env)
		}
	})
	return system.err
}

// build compiles the catalog server, the controller, the agent and the
// local node into binDir, next to restic.
func build(ctx context.Context) error {
	root, err := framework.RepoRoot()
	if err != nil {
		return err
	}
	binDir = filepath.Join(env.Dir, "bin")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", binDir+"/", "./cmd/apiserver", "./cmd/controller", "./cmd/agent", "./test/localnode/cmd/localnode")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	// The agent execs restic from its own folder.
	return os.Link(filepath.Join(root, "bin", "restic"), filepath.Join(binDir, "restic"))
}

// start starts the catalog server, the controller and the local node on
// cp, and installs the addons and Job roles.
func start(ctx context.Context, cp *framework.ControlPlane) ([]*framework.Process, error) {
	root, err := framework.RepoRoot()
	if err != nil {
		return nil, err
	}
	srv, err := cp.StartCatalogServer(ctx, framework.CatalogServerOptions{Bin: filepath.Join(binDir, "apiserver"), PollInterval: 2 * time.Second})
	if err != nil {
		return nil, err
	}
	ps := []*framework.Process{srv.Process}
	for _, dir := range []string{"artifacts/addons", "artifacts/controller"} {
		if _, _, err := cp.Kubectl(ctx, "", "apply", "-f", filepath.Join(root, dir)); err != nil {
			return ps, err
		}
	}
	// The controller runs as its ServiceAccount with the rights of
	// artifacts/controller, not as the admin: a missing rule fails here.
	controllerKubeconfig, err := cp.UserKubeconfig("kubestash-controller", "system:serviceaccount:kubestash:kubestash-controller",
		"system:serviceaccounts", "system:serviceaccounts:kubestash", "system:authenticated")
	if err != nil {
		return ps, err
	}
	for _, p := range []*framework.Process{
		{Name: "controller", Bin: filepath.Join(binDir, "controller"), Args: []string{
			"--kubeconfig=" + controllerKubeconfig, "--leader-elect=false", "--resync=5s", "--agent-image=ghcr.io/kubestash/agent:dev", "--v=2"}},
		{Name: "localnode", Bin: filepath.Join(binDir, "localnode"), Args: []string{
			"-kubeconfig=" + cp.Kubeconfig, "-work-dir=" + filepath.Join(cp.Dir, "node"),
			"-log-dir=" + filepath.Join(cp.Dir, "logs", "pods"), "-image=*kubestash*=" + filepath.Join(binDir, "agent")},
			Env: []string{"PATH=" + binDir + ":" + os.Getenv("PATH")}},
	} {
		p.LogPath = filepath.Join(cp.Dir, "logs", p.Name+".log")
		if err := p.Start(); err != nil {
			return ps, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

var procs []*framework.Process

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

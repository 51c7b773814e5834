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

// startSystem starts, once per package, the catalog server, the controller
// and the local node on env. Its processes end with the test binary.
func startSystem(ctx context.Context) error {
	system.once.Do(func() { system.err = start(ctx) })
	return system.err
}

// start builds and starts the catalog server, the controller and the local
// node on env, and installs the addons and Job roles.
func start(ctx context.Context) error {
	root, err := framework.RepoRoot()
	if err != nil {
		return err
	}
	binDir = filepath.Join(env.Dir, "bin")
	build := exec.CommandContext(ctx, "go", "build", "-o", binDir+"/", "./cmd/apiserver", "./cmd/controller", "./cmd/agent", "./test/localnode/cmd/localnode")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	// The agent execs restic from its own folder.
	if err := os.Link(filepath.Join(root, "bin", "restic"), filepath.Join(binDir, "restic")); err != nil {
		return err
	}
	if _, err := env.StartCatalogServer(ctx, framework.CatalogServerOptions{Bin: filepath.Join(binDir, "apiserver"), PollInterval: 2 * time.Second}); err != nil {
		return err
	}
	for _, dir := range []string{"artifacts/addons", "artifacts/controller"} {
		if _, _, err := env.Kubectl(ctx, "", "apply", "-f", filepath.Join(root, dir)); err != nil {
			return err
		}
	}
	for _, p := range []*framework.Process{
		{Name: "controller", Bin: filepath.Join(binDir, "controller"), Args: []string{
			"--kubeconfig=" + env.Kubeconfig, "--leader-elect=false", "--resync=5s", "--agent-image=ghcr.io/kubestash/agent:dev", "--v=2"}},
		{Name: "localnode", Bin: filepath.Join(binDir, "localnode"), Args: []string{
			"-kubeconfig=" + env.Kubeconfig, "-work-dir=" + filepath.Join(env.Dir, "node"),
			"-log-dir=" + filepath.Join(env.Dir, "logs", "pods"), "-image=*kubestash*=" + filepath.Join(binDir, "agent")},
			Env: []string{"PATH=" + binDir + ":" + os.Getenv("PATH")}},
	} {
		p.LogPath = filepath.Join(env.Dir, "logs", p.Name+".log")
		if err := p.Start(); err != nil {
			return err
		}
		procs = append(procs, p)
	}
	return nil
}

var procs []*framework.Process

// logsOnFailure prints the end of each process's log when t failed.
func logsOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range procs {
				t.Logf("%s log:\n%s", p.Name, p.LogTail(40))
			}
		}
	})
}

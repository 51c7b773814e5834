// Package backup runs scheduled backups of a stand-alone PVC through the
// whole system: kube-apiserver with the catalog server behind an
// APIService, kube-controller-manager's CronJob and Job controllers, this
// project's controller, a real node (kubelet, containerd, runc) running
// the agent's image with restic, and MinIO.
package backup

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	framework.RunMainThen(m, framework.Options{Node: true}, &env, noForbiddenInServerLogs)
}

// noForbiddenInServerLogs fails the package when kube-apiserver refused
// either server anything during the run: the chart's RBAC must let them do
// all they do. It runs after every test, over every pod's log (pods rolled
// or deleted on the way included).
func noForbiddenInServerLogs() error {
	if release == nil {
		return nil
	}
	release.StopLogs()
	var all []string
	for _, c := range framework.ChartComponents {
		files, err := release.LogFiles(c)
		if err != nil {
			return err
		}
		if len(files) == 0 {
			return fmt.Errorf("no log of the %s was collected", c)
		}
		lines, err := release.LogLines(c, "forbidden")
		if err != nil {
			return err
		}
		for _, l := range lines {
			// NamespaceLifecycle's 403 for a namespace being deleted
			// is admission, not RBAC.
			if !strings.Contains(l, "because it is being terminated") {
				all = append(all, l)
			}
		}
	}
	if len(all) > 0 {
		return fmt.Errorf("the servers were refused by kube-apiserver %d times (chart RBAC):\n%s", len(all), strings.Join(all, "\n"))
	}
	fmt.Fprintf(os.Stderr, "no \"forbidden\" in the servers' logs (%s)\n", filepath.Join(env.Dir, "logs", release.Name))
	return nil
}

var system struct {
	once sync.Once
	err  error
}

// release is the chart installed on env: the catalog server and the
// controller as pods of our images, with the chart's RBAC.
var release *framework.ChartRelease

// startSystem builds the images and starts, once per package, the real
// node and the chart's servers on env. They end with the node.
func startSystem(ctx context.Context) error {
	system.once.Do(func() {
		if system.err = build(ctx); system.err != nil {
			return
		}
		if system.err = startNode(ctx, env); system.err != nil {
			return
		}
		release, system.err = install(ctx, env)
	})
	return system.err
}

// build makes the images the node runs, and links restic into binDir for
// restic by hand.
func build(ctx context.Context) error {
	root, err := framework.RepoRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "hack/images.sh")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("hack/images.sh: %w\n%s", err, out)
	}
	binDir = filepath.Join(env.Dir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
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

// chartValues are the values the tests install the chart with: quicker
// polls than a cluster needs, no local backends (as by default).
var chartValues = []string{"apiserver.pollInterval=2s", "controller.resync=5s"}

// install installs the chart on cp and collects its servers' logs.
func install(ctx context.Context, cp *framework.ControlPlane) (*framework.ChartRelease, error) {
	return cp.InstallChart(ctx, framework.ChartOptions{Set: chartValues, CollectLogs: true})
}

// restartController rolls env's controller with chart values set on top
// of the usual ones until t ends, then with the usual ones again. It
// returns the address of the new pod's metrics and health endpoints, once
// that pod leads with synced caches.
func restartController(t testing.TB, set ...string) (metricsAddr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	require.NoError(t, release.Upgrade(ctx, set...))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := release.Upgrade(ctx); err != nil {
			t.Errorf("roll the controller back to its usual values: %v", err)
		}
	})
	addr, err := release.LeadingController(ctx)
	require.NoError(t, err)
	return addr
}

// agentImage is the agent's image of this version, as the Functions name it.
func agentImage(cp *framework.ControlPlane) string {
	return "ghcr.io/kubestash-catalog/agent:" + cp.Version()
}

// logsOnFailure prints the end of each server's log when t failed.
func logsOnFailure(t testing.TB) {
	t.Cleanup(func() {
		if t.Failed() && release != nil {
			for _, c := range framework.ChartComponents {
				t.Logf("%s log: %s", c, release.LogTail(c, 40))
			}
		}
	})
}

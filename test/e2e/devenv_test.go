package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kubestash.dev/kubestash/test/framework"
)

// TestDevEnv runs hack/dev-env.sh up, status and down as a person would, in
// a folder of its own so that a developer's environment is left alone.
func TestDevEnv(t *testing.T) {
	root, err := framework.RepoRoot()
	require.NoError(t, err)
	dev := t.TempDir()
	// The host has one node: up waits while another package's runs.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	bin := filepath.Join(root, "bin")
	before, err := framework.HostSnapshotWithoutNode(ctx, bin)
	require.NoError(t, err)
	run := func(args ...string) (string, error) { return runInDevDir(ctx, root, dev, nil, args...) }
	out, err := run("hack/dev-env.sh", "up")
	// Whatever happens next, stop what up started.
	defer func() { _, _ = run("hack/dev-env.sh", "down") }()
	require.NoError(t, err, out)
	assert.Contains(t, out, "dev-env: ready")

	out, err = run(filepath.Join(root, "bin", "kubectl"), "--kubeconfig", filepath.Join(dev, "kubeconfig"), "get", "crds", "-o", "name")
	require.NoError(t, err, out)
	for _, crd := range []string{"backupstorages.storage.kubestash.com", "retentionpolicies.storage.kubestash.com",
		"backupconfigurations.core.kubestash.com", "addons.addons.kubestash.com", "functions.addons.kubestash.com"} {
		assert.Contains(t, out, crd)
	}

	// The real node is Ready with containerd 2 and the addons are installed.
	out, err = run(filepath.Join(root, "bin", "kubectl"), "--kubeconfig", filepath.Join(dev, "kubeconfig"), "get", "nodes", "-o", "wide", "--no-headers")
	require.NoError(t, err, out)
	assert.Regexp(t, `^`+framework.NodeName+`\s+Ready\s.*\sv1\.37\.2\s+`+regexp.QuoteMeta(framework.BridgeIP)+`\s.*containerd://2\.`, out)
	out, err = run(filepath.Join(root, "bin", "kubectl"), "--kubeconfig", filepath.Join(dev, "kubeconfig"), "get", "addons,functions", "-o", "name")
	require.NoError(t, err, out)
	for _, n := range []string{"addon.addons.kubestash.com/pvc-addon", "function.addons.kubestash.com/pvc-backup"} {
		assert.Contains(t, out, n)
	}

	// The catalog server is registered: catalog kinds are served.
	out, err = run(filepath.Join(root, "bin", "kubectl"), "--kubeconfig", filepath.Join(dev, "kubeconfig"), "get", "snapshots,repositories,backupsessions,restoresessions", "-A")
	require.NoError(t, err, out)

	// The catalog server and the controller are pods of our images, as
	// the chart installs them, each running as its own ServiceAccount.
	out, err = run(filepath.Join(root, "bin", "kubectl"), "--kubeconfig", filepath.Join(dev, "kubeconfig"), "get", "pods", "-n", framework.CatalogNamespace,
		"-o", `jsonpath={range .items[*]}{.metadata.labels.app\.kubernetes\.io/component} {.status.phase} {.spec.serviceAccountName} {.spec.containers[0].image}{"\n"}{end}`)
	require.NoError(t, err, out)
	version := env.Version()
	assert.ElementsMatch(t, []string{
		"apiserver Running kubestash-catalog-apiserver ghcr.io/kubestash-catalog/apiserver:" + version,
		"controller Running kubestash-catalog-controller ghcr.io/kubestash-catalog/controller:" + version,
	}, strings.Split(strings.TrimSpace(out), "\n"), "kubectl get pods -n kubestash")

	b, err := os.ReadFile(filepath.Join(dev, "minio.env"))
	require.NoError(t, err)
	vars := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		vars[k] = v
	}
	assert.Regexp(t, `^http://`+regexp.QuoteMeta(framework.BridgeIP)+`:\d+$`, vars["MINIO_ENDPOINT"], "MinIO listens where pods reach it")
	for _, k := range []string{"MINIO_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		assert.NotEmpty(t, vars[k], k)
	}

	out, err = run("hack/dev-env.sh", "status")
	require.NoError(t, err, out)
	assert.Contains(t, out, "dev-env: up")

	pids := readDevPids(t, dev)
	require.Len(t, pids, 8, "kube-proxy, kube-scheduler, kubelet, containerd, kube-controller-manager, kube-apiserver, etcd, MinIO: the servers are pods")
	out, err = run("hack/dev-env.sh", "down")
	require.NoError(t, err, out)
	for _, pid := range pids {
		assert.False(t, running(pid), "pid %d still runs after down", pid)
	}
	out, err = run("hack/dev-env.sh", "status")
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, out)
	assert.Equal(t, 3, exit.ExitCode(), "status exits 3 when down")
	assert.Contains(t, out, "dev-env: down")

	// down put the host back as it was: no process, mount, link, rule,
	// cgroup or sysctl of the node is left.
	// Taken once no node runs: another package's may have taken the host
	// right after down, and is then waited out.
	after, err := framework.HostSnapshotWithoutNode(ctx, bin)
	require.NoError(t, err)
	for k, v := range before {
		assert.Equal(t, v, after[k], "host %s after dev-env down", k)
	}
	for k, v := range after {
		if _, ok := before[k]; !ok {
			assert.Empty(t, v, "host %s after dev-env down", k)
		}
	}
}

// runInDevDir runs args from the checkout root with the dev environment
// (and the demo) kept in dev, and env added to the environment.
func runInDevDir(ctx context.Context, root, dev string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = root
	cmd.Env = append(append(os.Environ(), "KUBESTASH_DEV_DIR="+dev), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// running reports whether pid is a live process. A detached process that
// ended may linger as a zombie until init reaps it; that counts as ended.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func readDevPids(t *testing.T, dev string) []int {
	b, err := os.ReadFile(filepath.Join(dev, "pids"))
	require.NoError(t, err)
	var pids []int
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		require.Len(t, f, 3, l)
		pid, err := strconv.Atoi(f[1])
		require.NoError(t, err)
		pids = append(pids, pid)
	}
	return pids
}

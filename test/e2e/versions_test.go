package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kubestash.dev/kubestash/test/framework"
)

// unstamped is what a Go build of these components says of its version
// when nobody stamped it.
var unstamped = regexp.MustCompile(`v0\.0\.0-master|\$Format|DEVELOPMENT|\(devel\)|unknown`)

// semver, or MinIO's release names (RELEASE.2026-02-12T20-18-48Z).
var semver = regexp.MustCompile(`v?\d+\.\d+\.\d+|RELEASE\.\d{4}-\d\d-\d\dT`)

// TestEveryBinaryReportsItsVersion: every component hack/tools.sh builds
// and every command of ours reports a real version, and `kubectl version`
// works against the control plane (an unstamped kube-apiserver breaks it).
func TestEveryBinaryReportsItsVersion(t *testing.T) {
	root, err := framework.RepoRoot()
	require.NoError(t, err)
	bin := filepath.Join(root, "bin")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"etcd", []string{"--version"}},
		{"kube-apiserver", []string{"--version"}},
		{"kube-controller-manager", []string{"--version"}},
		{"kube-scheduler", []string{"--version"}},
		{"kube-proxy", []string{"--version"}},
		{"kubelet", []string{"--version"}},
		{"kubectl", []string{"version", "--client"}},
		{"containerd", []string{"--version"}},
		{"containerd-shim-runc-v2", []string{"-v"}},
		{"ctr", []string{"--version"}},
		{"crictl", []string{"--version"}},
		{"cni/bridge", []string{"--version"}},
		{"minio", []string{"--version"}},
		{"restic", []string{"version"}},
		{"apiserver", []string{"--version"}},
		{"controller", []string{"--version"}},
		{"agent", []string{"--version"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(bin, tc.name)
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("%s is not built (make tools build): %v", path, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, path, tc.args...).CombinedOutput()
			require.NoError(t, err, "%s %s: %s", tc.name, strings.Join(tc.args, " "), out)
			assert.Regexp(t, semver, string(out), "%s reports a version", tc.name)
			assert.NotRegexp(t, unstamped, string(out), "%s is stamped with its version", tc.name)
		})
	}

	t.Run("kubectl version against the control plane", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, _, err := env.Kubectl(ctx, "", "version", "-o", "json")
		require.NoError(t, err)
		var v struct {
			Client struct{ GitVersion string } `json:"clientVersion"`
			Server struct{ GitVersion string } `json:"serverVersion"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &v), out)
		assert.Regexp(t, `^v1\.\d+\.\d+$`, v.Server.GitVersion)
		assert.Equal(t, v.Client.GitVersion, v.Server.GitVersion, "kubectl and kube-apiserver are built from the same module")
	})
}

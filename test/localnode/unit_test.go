package localnode

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"kubestash.dev/kubestash/pkg/pathmap"
)

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, image string
		want           bool
	}{
		{"busybox", "busybox", true},
		{"busybox", "busybox:1.36", false},
		{"busybox*", "busybox:1.36", true},
		{"*kubestash*", "ghcr.io/kubestash/agent:v1", true},
		{"*kubestash*", "kubestash", true},
		{"*kubestash*", "ghcr.io/stash/agent", false},
		{"*/agent:*", "ghcr.io/kubestash/agent:v1", true},
		{"a*a", "a", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "acb", false},
	} {
		assert.Equal(t, c.want, globMatch(c.pattern, c.image), "%q ~ %q", c.pattern, c.image)
	}
	bin, ok := binaryFor([]ImageRule{{"busybox*", "/bin/sh"}, {"*", "/bin/true"}}, "busybox:1")
	assert.True(t, ok)
	assert.Equal(t, "/bin/sh", bin, "first match wins")
	_, err := ParseImageRule("nobinary")
	assert.Error(t, err)
}

func TestExpand(t *testing.T) {
	lookup := envLookup([]string{"A=1", "B=two"})
	for in, want := range map[string]string{
		"$(A)":           "1",
		"x$(A)y$(B)z":    "x1ytwoz",
		"$(C)":           "$(C)",
		"$$(A)":          "$(A)",
		"$$":             "$",
		"$(A":            "$(A",
		"$":              "$",
		"cost $5":        "cost $5",
		"$(A)$(B)$$$(A)": "1two$1",
	} {
		assert.Equal(t, want, expand(in, lookup), "expand(%q)", in)
	}
}

func TestLinkRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	data, nested := t.TempDir(), t.TempDir()
	require.NoError(t, linkRoot(root, pathmap.Map{
		{MountPath: "/data/inner", HostPath: nested},
		{MountPath: "/data", HostPath: data},
		{MountPath: "/dev/termination-log", HostPath: filepath.Join(data, "term")},
	}))
	target, err := os.Readlink(filepath.Join(root, "data"))
	require.NoError(t, err)
	assert.Equal(t, data, target)
	_, err = os.Lstat(filepath.Join(data, "inner"))
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing is written into a mounted host folder")
	_, err = os.Readlink(filepath.Join(root, "dev", "termination-log"))
	assert.NoError(t, err)
}

func TestResolveExecutable(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	require.NoError(t, os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755))
	m := pathmap.Map{{MountPath: "/scripts", HostPath: dir}}
	assert.Equal(t, exe, resolveExecutable("/scripts/tool", m.Translate, ""), "a path under a mount")
	assert.Equal(t, exe, resolveExecutable("tool", m.Translate, "/nowhere:/scripts"), "a name on the container's PATH")
	assert.Equal(t, "", resolveExecutable("/kubestash", m.Translate, ""), "a path inside the image")
}

func TestPodField(t *testing.T) {
	pod := &corev1.Pod{}
	pod.Name, pod.Namespace, pod.Labels = "p", "ns", map[string]string{"app": "x"}
	pod.Spec.NodeName = "local-node"
	for path, want := range map[string]string{
		"metadata.name": "p", "metadata.namespace": "ns", "spec.nodeName": "local-node",
		"status.podIP": "127.0.0.1", "metadata.labels['app']": "x",
	} {
		got, err := podField(pod, path)
		require.NoError(t, err)
		assert.Equal(t, want, got, path)
	}
	_, err := podField(pod, "spec.unknown")
	assert.Error(t, err)
}

// The local node is test equipment: nothing under cmd/ or pkg/ may link it.
func TestNotLinkedIntoTheProduct(t *testing.T) {
	out, err := exec.Command("go", "list", "-e", "-deps", "-f", "{{.ImportPath}}", "kubestash.dev/kubestash/cmd/...", "kubestash.dev/kubestash/pkg/...").Output()
	require.NoError(t, err)
	require.Contains(t, strings.Fields(string(out)), "kubestash.dev/kubestash/pkg/pathmap", "go list saw the product")
	for _, p := range strings.Fields(string(out)) {
		assert.False(t, strings.HasPrefix(p, "kubestash.dev/kubestash/test/"), "%s is linked into cmd/ or pkg/", p)
	}
}

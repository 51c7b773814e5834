package version

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

const root = "../.."

// fileVersion is the content of the repository's VERSION file.
func fileVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "VERSION"))
	require.NoError(t, err)
	v := strings.TrimSpace(string(b))
	require.Regexp(t, `^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`, v)
	return v
}

// TestDefaultMatchesVersionFile keeps the default of Version (what a plain
// `go build` reports and names the agent image with) equal to VERSION (what
// hack/images.sh tags the images with).
func TestDefaultMatchesVersionFile(t *testing.T) {
	assert.Equal(t, fileVersion(t), Version, "pkg/version.Version must equal the VERSION file")
}

// TestManifestImages checks that the shipped manifests name the images
// hack/images.sh builds, so they cannot drift from VERSION.
func TestManifestImages(t *testing.T) {
	v := fileVersion(t)
	var obj struct {
		Kind string `json:"kind"`
		Spec struct {
			Image    string `json:"image"` // Function
			Template struct {
				Spec struct {
					Containers []struct {
						Name            string `json:"name"`
						Image           string `json:"image"`
						ImagePullPolicy string `json:"imagePullPolicy"`
					} `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	read := func(t *testing.T, p string) {
		t.Helper()
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		obj.Kind, obj.Spec.Image, obj.Spec.Template.Spec.Containers = "", "", nil
		require.NoError(t, yaml.Unmarshal(b, &obj), p)
	}

	functions, err := filepath.Glob(filepath.Join(root, "artifacts", "addons", "*.yaml"))
	require.NoError(t, err)
	n := 0
	for _, p := range functions {
		read(t, p)
		if obj.Kind != "Function" {
			continue
		}
		n++
		assert.Equal(t, "ghcr.io/kubestash-catalog/agent:"+v, obj.Spec.Image, p)
	}
	assert.Equal(t, 2, n, "Functions in artifacts/addons (pvc-backup, pvc-restore)")

	p := filepath.Join(root, "artifacts", "apiserver", "03-deployment.yaml")
	read(t, p)
	require.Len(t, obj.Spec.Template.Spec.Containers, 1, p)
	c := obj.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "ghcr.io/kubestash-catalog/apiserver:"+v, c.Image, p)
	assert.Equal(t, "IfNotPresent", c.ImagePullPolicy, p)
}

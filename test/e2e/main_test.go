// Package e2e holds end-to-end tests on a real control plane (etcd,
// kube-apiserver, kube-controller-manager, MinIO) started once per package.
package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"kubestash.dev/kubestash/test/framework"
)

var env *framework.ControlPlane

func TestMain(m *testing.M) {
	framework.RunMain(m, framework.Options{}, &env)
}

var placeholder = regexp.MustCompile(`\$\{(\w+)\}`)

// renderExample reads a manifest from artifacts/examples and fills its
// ${MINIO_*}/${AWS_*} placeholders with this environment's MinIO, as a user
// does with `source .dev/minio.env && envsubst`.
func renderExample(t *testing.T, name string) string {
	t.Helper()
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "artifacts", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]string{
		"MINIO_ENDPOINT":        env.MinIO.Endpoint,
		"MINIO_BUCKET":          env.MinIO.Bucket,
		"AWS_ACCESS_KEY_ID":     env.MinIO.AccessKey,
		"AWS_SECRET_ACCESS_KEY": env.MinIO.SecretKey,
	}
	return placeholder.ReplaceAllStringFunc(string(b), func(m string) string {
		if v, ok := vals[placeholder.FindStringSubmatch(m)[1]]; ok {
			return v
		}
		return m
	})
}

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kubestash.dev/kubestash/pkg/apis/kmapi"
)

// TestLocalBackendNeverLeavesItsRoot is issue 11's probe 6 rerun: a folder
// of a local backend that is a symbolic link to a directory outside it
// (another tenant's backend, the node's files) is neither served nor
// written through, although metadata.yaml lists the repository there.
func TestLocalBackendNeverLeavesItsRoot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const ns = "symlink-e2e"
	allowed := t.TempDir() // the administrator's --local-backend-dirs
	root := filepath.Join(allowed, "backend")
	outside := t.TempDir()
	createNamespaces(ctx, t, ns)

	ref := kmapi.ObjectReference{Name: "local", Namespace: ns}
	inside := bucketRepo{Name: "repo", Namespace: ns, Path: "/" + ns + "/repo", StorageRef: ref, Snapshots: seq("snap", 2)}
	linked := bucketRepo{Name: "linked-repo", Namespace: ns, Path: "/" + ns + "/linked", StorageRef: ref, Snapshots: seq("other", 2)}
	write := func(dir string, files map[string][]byte) {
		for key, data := range files {
			p := filepath.Join(dir, strings.TrimPrefix(key, "/"))
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			require.NoError(t, os.WriteFile(p, data, 0o644))
		}
	}
	// The backend lists both; the linked one's files are outside, reached
	// through a directory symlink in the backend.
	write(root, catalogFiles(t, "", inside, linked))
	require.NoError(t, os.RemoveAll(filepath.Join(root, ns, "linked")))
	write(outside, catalogFiles(t, "", linked))
	require.NoError(t, os.Symlink(filepath.Join(outside, ns, "linked"), filepath.Join(root, ns, "linked")))
	before := listFiles(t, outside)

	_, _, err := env.Kubectl(ctx, fmt.Sprintf(`apiVersion: storage.kubestash.com/v1alpha1
kind: BackupStorage
metadata: {name: local, namespace: %s}
spec:
  storage: {provider: local, local: {mountPath: /data, hostPath: {path: %q}}}
  usagePolicy: {allowedNamespaces: {from: Same}}
  deletionPolicy: Delete
`, ns, root), "apply", "-f", "-")
	require.NoError(t, err)
	// Gone before the next test's catalog server starts, which allows no
	// local backend and would count this one as failed.
	t.Cleanup(func() {
		_, _, _ = env.Kubectl(context.Background(), "", "delete", "backupstorage", "local", "-n", ns, "--wait")
	})
	startCatalogServer(t, catalogServerOptions{ExtraArgs: []string{"--local-backend-dirs=" + allowed}})

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.ElementsMatch(c, inside.Snapshots, kubectlNames(ctx, c, env, "snapshots", "-n", ns))
	}, time.Minute, time.Second, "the backend is served, without what is behind the link")
	assert.Equal(t, []string{"repo"}, kubectlNames(ctx, t, env, "repositories", "-n", ns))

	// Writing through the link is refused, and nothing appears outside.
	_, _, err = env.Kubectl(ctx, fmt.Sprintf(`apiVersion: catalog.kubestash.com/v1alpha1
kind: Repository
metadata: {name: through-link, namespace: %s}
spec: {storageRef: {name: local, namespace: %s}, path: /%s/linked/new, deletionPolicy: Delete}
`, ns, ns, ns), "apply", "-f", "-")
	assert.Error(t, err, "a Repository under the link is not written")
	assert.Equal(t, before, listFiles(t, outside), "nothing outside the backend changed")
	// A Snapshot of the served repository is written inside, as usual.
	_, _, err = env.Kubectl(ctx, fmt.Sprintf(`apiVersion: catalog.kubestash.com/v1alpha1
kind: Snapshot
metadata: {name: written-inside, namespace: %s}
spec: {repository: repo, deletionPolicy: Delete}
`, ns), "apply", "-f", "-")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(root, ns, "repo", "snapshots", "written-inside.yaml"))
	assert.NoError(t, err)
}

// listFiles returns every path under dir with its size.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %d", strings.TrimPrefix(p, dir), info.Size()))
		return nil
	}))
	return out
}

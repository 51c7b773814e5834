package framework

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNode starts a control plane with a real node, runs a Job from our
// agent image, reads its logs with kubectl, reaches MinIO on the bridge
// from a pod, and checks that stopping leaves the host exactly as it was.
func TestNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and a real node")
	}
	root, err := RepoRoot()
	require.NoError(t, err)
	bin := filepath.Join(root, "bin")
	if err := CanRunNode(bin); err != nil {
		t.Fatalf("a real node cannot run here: %v", err)
	}
	images, err := ImageTarballs(bin)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	// Wait for another package's node to end first, so that the snapshot
	// is of a host without one.
	before, err := HostSnapshotWithoutNode(ctx, bin)
	require.NoError(t, err)

	cp, err := Start(ctx, Options{Node: true, NoCRDs: true})
	require.NoError(t, err)
	stopped := false
	defer func() {
		if !stopped {
			cp.Stop()
		}
	}()
	n, err := cp.StartNode(ctx, images)
	require.NoError(t, err)

	out, _, err := cp.Kubectl(ctx, "", "get", "nodes", "-o", "wide", "--no-headers")
	require.NoError(t, err)
	t.Logf("kubectl get nodes -o wide:\n%s", out)
	f := strings.Fields(out)
	require.GreaterOrEqual(t, len(f), 12, out)
	assert.Equal(t, NodeName, f[0])
	assert.Equal(t, "Ready", f[1])
	assert.Equal(t, "v1.37.2", f[4], "kubelet version")
	assert.Equal(t, BridgeIP, f[5], "node address")
	assert.True(t, strings.HasPrefix(f[len(f)-1], "containerd://2."), "runtime %s", f[len(f)-1])

	// A Job from our agent image: restic in it talks to MinIO on the
	// bridge's host address (init a repository), and its logs come back
	// through kube-apiserver and the kubelet.
	m := cp.MinIO
	job := fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata: {name: reach-minio, namespace: default}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: restic
        image: ghcr.io/kubestash-catalog/agent:%s
        imagePullPolicy: Never
        command: [/usr/local/bin/restic, -r, "s3:%s/%s/node-test", init]
        env:
        - {name: AWS_ACCESS_KEY_ID, value: %s}
        - {name: AWS_SECRET_ACCESS_KEY, value: %s}
        - {name: RESTIC_PASSWORD, value: node-test}
        - {name: RESTIC_CACHE_DIR, value: /tmp}
`, cp.opts.Version, m.Endpoint, m.Bucket, m.AccessKey, m.SecretKey)
	_, _, err = cp.Kubectl(ctx, job, "apply", "-f", "-")
	require.NoError(t, err)
	_, _, err = cp.Kubectl(ctx, "", "wait", "--for=condition=Complete", "--timeout=3m", "-n", "default", "job/reach-minio")
	if err != nil {
		desc, _, _ := cp.Kubectl(ctx, "", "describe", "pods", "-n", "default")
		t.Fatalf("job did not complete: %v\n%s\nkubelet:\n%s", err, desc, n.Kubelet.LogTail(30))
	}
	logs, _, err := cp.Kubectl(ctx, "", "logs", "-n", "default", "job/reach-minio")
	require.NoError(t, err)
	assert.Contains(t, logs, "created restic repository", "restic's output through kubectl logs")

	ps, err := n.Crictl(ctx, "ps", "-a")
	require.NoError(t, err)
	assert.Contains(t, ps, "restic", "crictl lists the Job's container")

	// The host as the node left it, before another package's node may
	// take the host.
	var after map[string]string
	afterTeardown = func() { after = HostSnapshot(bin) }
	defer func() { afterTeardown = nil }()
	cp.Stop()
	stopped = true
	require.NotNil(t, after, "the host was put back")
	for k, v := range before {
		assert.Equal(t, v, after[k], "host %s after the node stopped", k)
	}
	for k, v := range after {
		if _, ok := before[k]; !ok {
			assert.Empty(t, v, "host %s after the node stopped", k)
		}
	}
}

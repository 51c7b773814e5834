package framework

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestStartStop starts a bare control plane (no CRDs), checks that every
// component serves, and that Stop leaves no process behind.
func TestStartStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cp, err := Start(ctx, Options{NoCRDs: true})
	require.NoError(t, err)
	stopped := false
	defer func() {
		if !stopped {
			cp.Stop()
		}
	}()

	ns, err := cp.KubeClient.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, ns.Items, "kube-apiserver lists namespaces")

	out, _, err := cp.Kubectl(ctx, "", "get", "--raw", "/apis/apiregistration.k8s.io/v1")
	require.NoError(t, err)
	require.Contains(t, out, "apiservices", "the aggregation layer is served")

	// The requestheader CA the aggregator's client certificate is signed with
	// is published for aggregated servers.
	cm, err := cp.KubeClient.CoreV1().ConfigMaps("kube-system").Get(ctx, "extension-apiserver-authentication", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, string(cp.FrontProxyCACertPEM), cm.Data["requestheader-client-ca-file"])
	require.Contains(t, cm.Data["requestheader-allowed-names"], frontProxyClientName)

	mc, err := cp.MinIO.Client()
	require.NoError(t, err)
	ok, err := mc.BucketExists(ctx, cp.MinIO.Bucket)
	require.NoError(t, err)
	require.True(t, ok, "MinIO has the fresh bucket")

	// kube-controller-manager runs: it creates the default ServiceAccount of
	// a new namespace.
	_, err = cp.KubeClient.CoreV1().Namespaces().Create(ctx, &corev1Namespace, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := cp.KubeClient.CoreV1().ServiceAccounts(corev1Namespace.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	}, time.Minute, 200*time.Millisecond, "the serviceaccount controller runs")

	pids := []int{}
	for _, p := range cp.Processes() {
		pids = append(pids, p.Pid())
	}
	require.Len(t, pids, 4)
	cp.Stop()
	stopped = true
	for _, pid := range pids {
		err := syscall.Kill(pid, 0)
		require.ErrorIs(t, err, syscall.ESRCH, "process %d still exists after Stop", pid)
	}
}

var corev1Namespace = corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "framework-test"}}

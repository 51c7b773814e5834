package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/restmapper"
)

// TestMessagesBadSchedule: a bad cron schedule is refused with a message that
// names the value, not the 400-character pattern it failed.
func TestMessagesBadSchedule(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, _, err := env.Kubectl(ctx, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: msg-schedule\n", "apply", "-f", "-")
	require.NoError(t, err)
	bc := strings.ReplaceAll(renderExample(t, "06-backupconfiguration.yaml"), "namespace: demo", "namespace: msg-schedule")
	require.Contains(t, bc, `schedule: "*/5 * * * *"`)
	bc = strings.Replace(bc, `schedule: "*/5 * * * *"`, `schedule: "every five minutes"`, 1)

	_, stderr, err := env.Kubectl(ctx, bc, "apply", "-f", "-")
	require.Error(t, err)
	// The API server puts the value after the field: one message, no regex.
	assert.Contains(t, stderr, `spec.sessions[0].scheduler.schedule: Invalid value: "every five minutes": not a valid cron expression: five fields`)
	assert.NotContains(t, stderr, "[A-Za-z]{3}", "the pattern is not the message")
	assert.Less(t, len(stderr), 400, "a message a person reads: %s", stderr)

	// A valid schedule still applies.
	ok := strings.Replace(bc, `schedule: "every five minutes"`, `schedule: "CRON_TZ=Europe/Paris 0 */6 * * MON-FRI"`, 1)
	_, stderr, err = env.Kubectl(ctx, ok, "apply", "-f", "-")
	require.NoError(t, err, stderr)
}

// TestMessagesUpstreamRestoreSession: the tutorial's RestoreSession, with
// upstream's apiVersion, is refused with a message saying which apiVersion
// to use here, and `kubectl get restoresessions` still means the catalog's.
func TestMessagesUpstreamRestoreSession(t *testing.T) {
	startCatalogServer(t, catalogServerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, _, err := env.Kubectl(ctx, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n", "apply", "-f", "-")
	require.NoError(t, err)
	ours := renderExample(t, "07-restoresession.yaml")
	require.Contains(t, ours, "apiVersion: catalog.kubestash.com/v1alpha1")
	upstream := strings.Replace(ours, "apiVersion: catalog.kubestash.com/v1alpha1", "apiVersion: core.kubestash.com/v1alpha1", 1)

	_, stderr, err := env.Kubectl(ctx, upstream, "apply", "-f", "-")
	require.Error(t, err)
	assert.Contains(t, stderr, "catalog.kubestash.com/v1alpha1")
	assert.Contains(t, stderr, "change the manifest's apiVersion")
	assert.NotContains(t, stderr, "ensure CRDs are installed first")

	// The plain resource and kind names resolve to the catalog's
	// RestoreSessions.
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	require.NoError(t, err)
	groups, err := restmapper.GetAPIGroupResources(dc)
	require.NoError(t, err)
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	for _, name := range []string{"restoresessions", "restoresession", "RestoreSession"} {
		gvr, err := mapper.ResourceFor(schema.GroupVersionResource{Resource: name})
		require.NoError(t, err, name)
		assert.Equal(t, "catalog.kubestash.com", gvr.Group, name)
	}
	stdout, stderr, err := env.Kubectl(ctx, "", "get", "restoresessions", "-n", "demo", "-o", "name")
	require.NoError(t, err, stderr)
	assert.NotContains(t, stdout, "core.kubestash.com")
}

package e2e

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

var gvrRestoreSession = schema.GroupVersionResource{Group: "catalog.kubestash.com", Version: "v1alpha1", Resource: "restoresessions"}

// TestUserVolumesCannotReachTheNode is issue 11's probe 1 rerun at
// admission: a BackupConfiguration (CRD, CEL rule) or a RestoreSession
// (catalog server) whose addonVolumes put a hostPath or an nfs source into
// the Job is refused with a 422 naming the field, and nothing is stored;
// the sources of the namespace (emptyDir, a PVC) are accepted.
func TestUserVolumesCannotReachTheNode(t *testing.T) {
	ctx := context.Background()
	dyn, err := dynamic.NewForConfig(env.Config)
	require.NoError(t, err)
	_, _, err = env.Kubectl(ctx, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: volumes\n", "apply", "-f", "-")
	require.NoError(t, err)
	startCatalogServer(t, catalogServerOptions{})

	withVolume := func(obj map[string]any, tasks []string, source map[string]any) {
		vol := []any{map[string]any{"name": "kubestash-tmp-volume", "source": source}}
		task, _, err := unstructured.NestedSlice(obj, tasks...)
		require.NoError(t, err)
		task[0].(map[string]any)["addonVolumes"] = vol
		require.NoError(t, unstructured.SetNestedSlice(obj, task, tasks...))
	}
	bc := func(source map[string]any) map[string]any {
		obj := exampleObject(t, "06-backupconfiguration.yaml")
		sessions := obj["spec"].(map[string]any)["sessions"].([]any)
		s := sessions[0].(map[string]any)
		withVolume(s, []string{"addon", "tasks"}, source)
		return obj
	}
	rs := func(source map[string]any) map[string]any {
		obj := exampleObject(t, "07-restoresession.yaml")
		withVolume(obj, []string{"spec", "addon", "tasks"}, source)
		return obj
	}
	for _, c := range []struct {
		name   string
		gvr    schema.GroupVersionResource
		obj    map[string]any
		wanted []string // in the refusal; none means accepted
	}{
		{name: "BackupConfiguration with a hostPath", gvr: gvrBackupConfiguration,
			obj:    bc(map[string]any{"hostPath": map[string]any{"path": "/etc"}}),
			wanted: []string{"spec.sessions[0].addon.tasks[0].addonVolumes[0].source", "hostPath"}},
		{name: "BackupConfiguration with an nfs share", gvr: gvrBackupConfiguration,
			obj:    bc(map[string]any{"nfs": map[string]any{"server": "10.0.0.1", "path": "/"}}),
			wanted: []string{"spec.sessions[0].addon.tasks[0].addonVolumes[0].source", "nfs"}},
		{name: "BackupConfiguration with an emptyDir", gvr: gvrBackupConfiguration,
			obj: bc(map[string]any{"emptyDir": map[string]any{}})},
		{name: "RestoreSession with a hostPath", gvr: gvrRestoreSession,
			obj:    rs(map[string]any{"hostPath": map[string]any{"path": "/var/lib/kubelet"}}),
			wanted: []string{"spec.addon.tasks[0].addonVolumes[0].source.hostPath", "Forbidden"}},
		{name: "RestoreSession with a PVC of its namespace", gvr: gvrRestoreSession,
			obj: rs(map[string]any{"persistentVolumeClaim": map[string]any{"claimName": "scratch"}})},
	} {
		t.Run(c.name, func(t *testing.T) {
			obj := &unstructured.Unstructured{Object: c.obj}
			obj.SetNamespace("volumes")
			// A dry run: the accepted RestoreSession has no Repository to
			// be placed in, which a real create would report.
			_, err := dyn.Resource(c.gvr).Namespace("volumes").Create(ctx, obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if len(c.wanted) == 0 {
				if err != nil {
					assert.NotContains(t, err.Error(), "addonVolumes", "only the volume is under test")
				}
				return
			}
			require.Error(t, err)
			assert.True(t, apierrors.IsInvalid(err), "want 422, got %v", err)
			for _, w := range c.wanted {
				assert.Contains(t, err.Error(), w)
			}
			_, err = dyn.Resource(c.gvr).Namespace("volumes").Create(ctx, obj, metav1.CreateOptions{})
			require.Error(t, err, "refused for real too")
			_, err = dyn.Resource(c.gvr).Namespace("volumes").Get(ctx, obj.GetName(), metav1.GetOptions{})
			assert.True(t, apierrors.IsNotFound(err), "nothing stored, got %v", err)
		})
	}
}

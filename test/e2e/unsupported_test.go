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

// TestUnsupportedFieldsRefused: fields that nothing here acts on are
// refused at admission with a 422 naming them, never accepted and ignored
// (issue 12, item 11): hooks, backupVerifier, nice and ionice, the gcs
// and azure providers, which the catalog server cannot serve, a
// BackupStorage's runtimeSettings, a task's targetVolumes, Addon drivers
// other than Restic, and a Repository's paused.
func TestUnsupportedFieldsRefused(t *testing.T) {
	ctx := context.Background()
	dyn, err := dynamic.NewForConfig(env.Config)
	require.NoError(t, err)
	_, _, err = env.Kubectl(ctx, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: unsupported\n", "apply", "-f", "-")
	require.NoError(t, err)
	startCatalogServer(t, catalogServerOptions{})
	gvrFunction := schema.GroupVersionResource{Group: "addons.kubestash.com", Version: "v1alpha1", Resource: "functions"}
	gvrAddon := schema.GroupVersionResource{Group: "addons.kubestash.com", Version: "v1alpha1", Resource: "addons"}
	gvrRepository := schema.GroupVersionResource{Group: "catalog.kubestash.com", Version: "v1alpha1", Resource: "repositories"}

	session := func(obj map[string]any) map[string]any {
		return obj["spec"].(map[string]any)["sessions"].([]any)[0].(map[string]any)
	}
	bc := func(mutate func(map[string]any)) map[string]any {
		obj := exampleObject(t, "06-backupconfiguration.yaml")
		mutate(obj)
		return obj
	}
	for _, c := range []struct {
		name       string
		gvr        schema.GroupVersionResource
		namespaced bool
		obj        map[string]any
		want       []string
	}{
		{name: "session hooks", gvr: gvrBackupConfiguration, namespaced: true,
			obj: bc(func(o map[string]any) {
				session(o)["hooks"] = map[string]any{"preBackup": []any{map[string]any{"name": "x", "hookTemplate": map[string]any{"name": "t"}}}}
			}),
			want: []string{"spec.sessions[0].hooks", "hooks are not supported yet"}},
		{name: "backupVerifier", gvr: gvrBackupConfiguration, namespaced: true,
			obj: bc(func(o map[string]any) {
				session(o)["repositories"].([]any)[0].(map[string]any)["backupVerifier"] = map[string]any{"name": "v"}
			}),
			want: []string{"spec.sessions[0].repositories[0].backupVerifier", "backupVerifier is not supported yet"}},
		{name: "nice in a session's addon", gvr: gvrBackupConfiguration, namespaced: true,
			obj: bc(func(o map[string]any) {
				session(o)["addon"].(map[string]any)["containerRuntimeSettings"] = map[string]any{"nice": map[string]any{"adjustment": int64(5)}}
			}),
			want: []string{"spec.sessions[0].addon.containerRuntimeSettings", "nice and ionice are not supported yet"}},
		{name: "ionice in a Function", gvr: gvrFunction,
			obj: map[string]any{"apiVersion": "addons.kubestash.com/v1alpha1", "kind": "Function", "metadata": map[string]any{"name": "ioniced"},
				"spec": map[string]any{"image": "x", "runtimeSettings": map[string]any{"ionice": map[string]any{"class": int64(2)}}}},
			want: []string{"spec.runtimeSettings", "nice and ionice are not supported yet"}},
		{name: "a gcs BackupStorage", gvr: gvrBackupStorage, namespaced: true,
			obj: map[string]any{"apiVersion": "storage.kubestash.com/v1alpha1", "kind": "BackupStorage", "metadata": map[string]any{"name": "gcs"},
				"spec": map[string]any{"storage": map[string]any{"provider": "gcs", "gcs": map[string]any{"bucket": "b", "secretName": "s"}}}},
			want: []string{"spec.storage.provider", "providers gcs and azure are not supported yet"}},
		{name: "BackupStorage runtimeSettings", gvr: gvrBackupStorage, namespaced: true,
			obj: func() map[string]any {
				o := exampleObject(t, "02-backupstorage.yaml")
				o["spec"].(map[string]any)["runtimeSettings"] = map[string]any{"pod": map[string]any{"podLabels": map[string]any{"a": "b"}}}
				return o
			}(),
			want: []string{"spec.runtimeSettings", "runtimeSettings is not supported yet"}},
		{name: "a task's targetVolumes", gvr: gvrBackupConfiguration, namespaced: true,
			obj: bc(func(o map[string]any) {
				session(o)["addon"].(map[string]any)["tasks"].([]any)[0].(map[string]any)["targetVolumes"] = map[string]any{"volumes": []any{}}
			}),
			want: []string{"spec.sessions[0].addon.tasks[0].targetVolumes", "targetVolumes is not supported yet"}},
		{name: "an Addon task's driver", gvr: gvrAddon,
			obj: map[string]any{"apiVersion": "addons.kubestash.com/v1alpha1", "kind": "Addon", "metadata": map[string]any{"name": "walg"},
				"spec": map[string]any{"backupTasks": []any{map[string]any{"name": "t", "function": "f", "driver": "WalG", "executor": "Job"}}}},
			want: []string{"spec.backupTasks[0].driver", "only driver Restic is supported yet"}},
		{name: "Repository paused", gvr: gvrRepository, namespaced: true,
			obj: map[string]any{"apiVersion": "catalog.kubestash.com/v1alpha1", "kind": "Repository", "metadata": map[string]any{"name": "paused"},
				"spec": map[string]any{"storageRef": map[string]any{"name": "s3-storage"}, "path": "/paused", "paused": true}},
			want: []string{"spec.paused", "not supported yet"}},
		{name: "RestoreSession hooks", gvr: gvrRestoreSession, namespaced: true,
			obj: func() map[string]any {
				o := exampleObject(t, "07-restoresession.yaml")
				o["spec"].(map[string]any)["hooks"] = map[string]any{"postRestore": []any{map[string]any{"name": "x", "hookTemplate": map[string]any{"name": "t"}}}}
				return o
			}(),
			want: []string{"spec.hooks", "hooks are not supported yet"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			obj := &unstructured.Unstructured{Object: c.obj}
			var ri dynamic.ResourceInterface = dyn.Resource(c.gvr)
			if c.namespaced {
				obj.SetNamespace("unsupported")
				ri = dyn.Resource(c.gvr).Namespace("unsupported")
			}
			_, err := ri.Create(ctx, obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			require.Error(t, err)
			assert.True(t, apierrors.IsInvalid(err), "want 422, got %v", err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

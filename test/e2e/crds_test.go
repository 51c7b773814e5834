package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	cataloginstall "kubestash.dev/kubestash/pkg/apis/catalog/install"
	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/test/framework"
)

func TestCRDsInstalled(t *testing.T) {
	ctx := context.Background()
	ext, err := env.ExtensionsClient()
	require.NoError(t, err)

	want := []struct {
		name       string
		scope      apiextensionsv1.ResourceScope
		shortNames []string
		status     bool
	}{
		{"backupstorages.storage.kubestash.com", apiextensionsv1.NamespaceScoped, nil, true},
		{"retentionpolicies.storage.kubestash.com", apiextensionsv1.NamespaceScoped, nil, false},
		{"backupconfigurations.core.kubestash.com", apiextensionsv1.NamespaceScoped, []string{"bc"}, true},
		{"addons.addons.kubestash.com", apiextensionsv1.ClusterScoped, nil, false},
		{"functions.addons.kubestash.com", apiextensionsv1.ClusterScoped, []string{"fn"}, false},
	}
	for _, w := range want {
		t.Run(w.name, func(t *testing.T) {
			crd, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, w.name, metav1.GetOptions{})
			require.NoError(t, err)
			assert.Equal(t, w.scope, crd.Spec.Scope)
			assert.ElementsMatch(t, w.shortNames, crd.Spec.Names.ShortNames)
			assert.Subset(t, crd.Spec.Names.Categories, []string{"kubestash", "appscode"})
			require.Len(t, crd.Spec.Versions, 1)
			v := crd.Spec.Versions[0]
			assert.Equal(t, "v1alpha1", v.Name)
			assert.Equal(t, w.status, v.Subresources != nil && v.Subresources.Status != nil, "status subresource")
			established := false
			for _, c := range crd.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					established = true
				}
			}
			assert.True(t, established, "CRD is established")
		})
	}
}

// TestExamplesApply applies the stand-alone PVC example with kubectl, as a
// user would, and reads it back with the printer columns of upstream.
func TestExamplesApply(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, f := range []string{
		"00-namespace.yaml", "01-storage-secret.yaml", "02-backupstorage.yaml", "03-retentionpolicy.yaml",
		"04-encryption-secret.yaml", "05-pvc.yaml", "06-backupconfiguration.yaml",
	} {
		_, _, err := env.Kubectl(ctx, renderExample(t, f), "apply", "-f", "-")
		require.NoError(t, err, f)
	}

	cases := []struct {
		resource string
		header   []string
		row      []string
	}{
		{"backupstorage", []string{"NAME", "PROVIDER", "DEFAULT", "DELETION-POLICY", "TOTAL-SIZE", "PHASE", "AGE"}, []string{"s3-storage", "s3", "true", "Delete"}},
		{"retentionpolicy", []string{"NAME", "MAX-RETENTION-PERIOD", "DEFAULT", "AGE"}, []string{"demo-retention", "2mo", "true"}},
		{"bc", []string{"NAME", "PHASE", "PAUSED", "AGE"}, []string{"pvc-backup"}},
	}
	for _, c := range cases {
		t.Run(c.resource, func(t *testing.T) {
			out, _, err := env.Kubectl(ctx, "", "get", c.resource, "-n", "demo")
			require.NoError(t, err)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			require.Len(t, lines, 2, out)
			assert.Equal(t, c.header, strings.Fields(lines[0]))
			assert.Subset(t, strings.Fields(lines[1]), c.row, out)
		})
	}

	// The kubestash category finds all three kinds.
	out, _, err := env.Kubectl(ctx, "", "get", "kubestash", "-n", "demo", "-o", "name")
	require.NoError(t, err)
	for _, n := range []string{
		"backupstorage.storage.kubestash.com/s3-storage",
		"backupconfiguration.core.kubestash.com/pvc-backup",
	} {
		assert.Contains(t, out, n)
	}

	// Defaults of the schema are applied.
	out, _, err = env.Kubectl(ctx, "", "get", "bc", "pvc-backup", "-n", "demo",
		"-o", "jsonpath={.spec.sessions[0].sessionHistoryLimit}")
	require.NoError(t, err)
	assert.Equal(t, "1", out)
	out, _, err = env.Kubectl(ctx, "", "get", "backupstorage", "s3-storage", "-n", "demo", "-o", "jsonpath={.spec.deletionPolicy}")
	require.NoError(t, err)
	assert.Equal(t, "Delete", out)
}

// TestRestoreSessionExample checks the catalog example decodes strictly as
// catalog.kubestash.com/v1alpha1 (the server of a later issue serves it).
func TestRestoreSessionExample(t *testing.T) {
	scheme := runtime.NewScheme()
	cataloginstall.Install(scheme)
	codecs := serializer.NewCodecFactory(scheme, serializer.EnableStrict)
	obj, gvk, err := codecs.UniversalDeserializer().Decode([]byte(renderExample(t, "07-restoresession.yaml")), nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "RestoreSession", gvk.Kind)
	rs, ok := obj.(*catalogv1alpha1.RestoreSession)
	require.True(t, ok, "decoded as %T", obj)
	assert.Equal(t, "latest", rs.Spec.DataSource.Snapshot)
	assert.Equal(t, "s3-repository", rs.Spec.DataSource.Repository)
}

var (
	gvrBackupStorage       = schema.GroupVersionResource{Group: "storage.kubestash.com", Version: "v1alpha1", Resource: "backupstorages"}
	gvrRetentionPolicy     = schema.GroupVersionResource{Group: "storage.kubestash.com", Version: "v1alpha1", Resource: "retentionpolicies"}
	gvrBackupConfiguration = schema.GroupVersionResource{Group: "core.kubestash.com", Version: "v1alpha1", Resource: "backupconfigurations"}
)

// TestInvalidObjectsRejected sends invalid objects to kube-apiserver and
// checks each is refused with a message that names the field, and that
// nothing was stored.
func TestInvalidObjectsRejected(t *testing.T) {
	ctx := context.Background()
	dyn, err := dynamic.NewForConfig(env.Config)
	require.NoError(t, err)
	_, _, err = env.Kubectl(ctx, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: invalid\n", "apply", "-f", "-")
	require.NoError(t, err)

	bs := func(t *testing.T) map[string]any { return exampleObject(t, "02-backupstorage.yaml") }
	rp := func(t *testing.T) map[string]any { return exampleObject(t, "03-retentionpolicy.yaml") }
	bc := func(t *testing.T) map[string]any { return exampleObject(t, "06-backupconfiguration.yaml") }
	session := func(obj map[string]any, i int) map[string]any {
		return obj["spec"].(map[string]any)["sessions"].([]any)[i].(map[string]any)
	}
	copySession := func(obj map[string]any, mutate func(s map[string]any)) {
		s := runtime.DeepCopyJSONValue(session(obj, 0)).(map[string]any)
		mutate(s)
		spec := obj["spec"].(map[string]any)
		spec["sessions"] = append(spec["sessions"].([]any), s)
	}

	cases := []struct {
		name   string
		gvr    schema.GroupVersionResource
		base   func(*testing.T) map[string]any
		mutate func(obj map[string]any)
		want   []string // substrings of the error
	}{
		{
			name: "bad cron schedule", gvr: gvrBackupConfiguration, base: bc,
			mutate: func(o map[string]any) {
				session(o, 0)["scheduler"].(map[string]any)["schedule"] = "every day"
			},
			want: []string{"spec.sessions[0].scheduler.schedule"},
		},
		{
			name: "unknown provider", gvr: gvrBackupStorage, base: bs,
			mutate: func(o map[string]any) { unstructured.SetNestedField(o, "ftp", "spec", "storage", "provider") },
			want:   []string{"spec.storage.provider", `Unsupported value: "ftp"`},
		},
		{
			name: "s3 without bucket", gvr: gvrBackupStorage, base: bs,
			mutate: func(o map[string]any) { unstructured.RemoveNestedField(o, "spec", "storage", "s3", "bucket") },
			want:   []string{"spec.storage.s3.bucket", "Required value"},
		},
		{
			name: "provider s3 without s3", gvr: gvrBackupStorage, base: bs,
			mutate: func(o map[string]any) { unstructured.RemoveNestedField(o, "spec", "storage", "s3") },
			want:   []string{"spec.storage", "s3"},
		},
		{
			name: "usagePolicy Selector without selector", gvr: gvrBackupStorage, base: bs,
			mutate: func(o map[string]any) {
				unstructured.SetNestedField(o, "Selector", "spec", "usagePolicy", "allowedNamespaces", "from")
			},
			want: []string{"spec.usagePolicy.allowedNamespaces", "selector"},
		},
		{
			name: "two sessions with the same name", gvr: gvrBackupConfiguration, base: bc,
			mutate: func(o map[string]any) {
				copySession(o, func(s map[string]any) {
					s["repositories"].([]any)[0].(map[string]any)["directory"] = "/other"
				})
			},
			want: []string{"spec.sessions[1]", "Duplicate value"},
		},
		{
			// The same repository may serve several sessions; two
			// repositories may not share a directory.
			name: "repository directory used twice across sessions", gvr: gvrBackupConfiguration, base: bc,
			mutate: func(o map[string]any) {
				copySession(o, func(s map[string]any) {
					s["name"] = "second"
					s["repositories"].([]any)[0].(map[string]any)["name"] = "other-repository"
				})
			},
			want: []string{"spec.sessions", "directory", "unique"},
		},
		{
			name: "repository directory used twice in one session", gvr: gvrBackupConfiguration, base: bc,
			mutate: func(o map[string]any) {
				s := session(o, 0)
				r := runtime.DeepCopyJSONValue(s["repositories"].([]any)[0]).(map[string]any)
				r["name"] = "other-repository"
				s["repositories"] = append(s["repositories"].([]any), r)
			},
			want: []string{"spec.sessions", "directory", "unique"},
		},
		{
			name: "retention policy with neither maxRetentionPeriod nor successfulSnapshots", gvr: gvrRetentionPolicy, base: rp,
			mutate: func(o map[string]any) {
				unstructured.RemoveNestedField(o, "spec", "maxRetentionPeriod")
				unstructured.RemoveNestedField(o, "spec", "successfulSnapshots")
			},
			want: []string{"maxRetentionPeriod", "successfulSnapshots"},
		},
		{
			name: "malformed maxRetentionPeriod", gvr: gvrRetentionPolicy, base: rp,
			mutate: func(o map[string]any) { unstructured.SetNestedField(o, "2months", "spec", "maxRetentionPeriod") },
			want:   []string{"spec.maxRetentionPeriod", "2months"},
		},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obj := &unstructured.Unstructured{Object: c.base(t)}
			obj.SetNamespace("invalid")
			obj.SetName(strings.ReplaceAll(obj.GetName(), "-", "") + "-" + string(rune('a'+i)))
			// The unmodified object is valid: the case tests only its change.
			_, err := dyn.Resource(c.gvr).Namespace("invalid").Create(ctx, obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			require.NoError(t, err, "the base object must be valid")

			c.mutate(obj.Object)
			_, err = dyn.Resource(c.gvr).Namespace("invalid").Create(ctx, obj, metav1.CreateOptions{})
			require.Error(t, err)
			t.Logf("rejected: %v", err)
			assert.True(t, apierrors.IsInvalid(err), "want 422 Invalid, got %v", err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
			_, err = dyn.Resource(c.gvr).Namespace("invalid").Get(ctx, obj.GetName(), metav1.GetOptions{})
			assert.True(t, apierrors.IsNotFound(err), "nothing stored, got %v", err)
		})
	}
}

func exampleObject(t *testing.T, name string) map[string]any {
	t.Helper()
	var obj map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(renderExample(t, name)), &obj))
	return obj
}

// TestAddonsApply installs the pvc-addon and its Functions as the demo does.
func TestAddonsApply(t *testing.T) {
	ctx := context.Background()
	root, err := framework.RepoRoot()
	require.NoError(t, err)
	_, _, err = env.Kubectl(ctx, "", "apply", "-f", filepath.Join(root, "artifacts", "addons"))
	require.NoError(t, err)
	out, _, err := env.Kubectl(ctx, "", "get", "addon", "pvc-addon", "-o", "jsonpath={.spec.backupTasks[0].name}/{.spec.backupTasks[0].function} {.spec.restoreTasks[0].name}/{.spec.restoreTasks[0].function}")
	require.NoError(t, err)
	assert.Equal(t, "logical-backup/pvc-backup logical-backup-restore/pvc-restore", out)
	out, _, err = env.Kubectl(ctx, "", "get", "fn", "-o", "name")
	require.NoError(t, err)
	assert.Contains(t, out, "function.addons.kubestash.com/pvc-backup")
	assert.Contains(t, out, "function.addons.kubestash.com/pvc-restore")
}

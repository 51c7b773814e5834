package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"kubestash.dev/kubestash/test/framework"
)

// The chart (charts/kubestash-catalog) rendered by helm built from its
// pinned module (hack/tools.sh helm): lint, render with the default values
// and with ci/full-values.yaml (every value set), and have the test control
// plane accept every object with a server-side dry run. Then what a user
// checks: a caBundle that verifies the serving certificate and no
// insecureSkipTLSVerify, the containers' securityContext, the controller
// granting the chart's own catalog ServiceAccount, and RBAC rules equal to
// the shipped artifacts so the two cannot drift. No node is needed.

const chartNamespace = "kubestash-chart"

type chart struct {
	root, dir, helm string
	env             []string
}

func newChart(t *testing.T) *chart {
	t.Helper()
	root, err := framework.RepoRoot()
	require.NoError(t, err)
	c := &chart{root: root, dir: filepath.Join(root, "charts", "kubestash-catalog"), helm: filepath.Join(root, "bin", "helm")}
	if _, err := os.Stat(c.helm); err != nil {
		t.Fatalf("%s missing: run hack/tools.sh helm (or make tools)", c.helm)
	}
	// helm writes its cache and configuration under $HOME unless told.
	home := t.TempDir()
	c.env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
	return c
}

func (c *chart) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.helm, args...)
	cmd.Env = c.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), nil
}

// render runs helm template as release kubestash-catalog in chartNamespace.
func (c *chart) render(t *testing.T, args ...string) (string, []*unstructured.Unstructured) {
	t.Helper()
	out, err := c.run(t, append([]string{"template", "kubestash-catalog", c.dir, "--namespace", chartNamespace}, args...)...)
	require.NoError(t, err)
	return out, decodeAll(t, out)
}

func decodeAll(t *testing.T, manifests string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	d := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	for {
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatalf("decode rendered manifests: %v", err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func mustFind(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	o := find(objs, kind, name)
	if o == nil {
		var have []string
		for _, o := range objs {
			have = append(have, o.GetKind()+"/"+o.GetName())
		}
		t.Fatalf("no %s %s in the rendered chart; it has %v", kind, name, have)
	}
	return o
}

func convert[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	b, err := o.MarshalJSON()
	require.NoError(t, err)
	v := new(T)
	require.NoError(t, yaml.Unmarshal(b, v))
	return v
}

// dryRun has the control plane accept the manifests as they would be
// applied (admission, validation, RBAC escalation checks), keeping nothing.
func dryRun(t *testing.T, manifests string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, _, err := env.Kubectl(ctx, manifests, "apply", "--dry-run=server", "-f", "-")
	require.NoError(t, err)
	t.Logf("kubectl apply --dry-run=server:\n%s", out)
}

// ensureChartNamespace makes the release namespace for real (a dry-run
// object cannot be created in a namespace that does not exist); it stays
// until the package's control plane stops, as a deleted one would still be
// terminating for the next test.
func ensureChartNamespace(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if _, _, err := env.Kubectl(ctx, "", "get", "namespace", chartNamespace); err == nil {
		return
	}
	_, _, err := env.Kubectl(ctx, "", "create", "namespace", chartNamespace)
	require.NoError(t, err)
}

func TestChartLint(t *testing.T) {
	c := newChart(t)
	out, err := c.run(t, "version")
	require.NoError(t, err)
	t.Logf("helm version: %s", strings.TrimSpace(out))

	for _, args := range [][]string{
		{"lint", "--strict", c.dir},
		{"lint", "--strict", c.dir, "-f", filepath.Join(c.dir, "ci", "full-values.yaml")},
		{"lint", "--strict", c.dir, "--set", "apiserver.tls.source=certManager"},
	} {
		out, err := c.run(t, args...)
		require.NoError(t, err)
		assert.Contains(t, out, "0 chart(s) failed", "helm %s", strings.Join(args, " "))
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "[WARNING]") || strings.Contains(l, "[ERROR]") {
				t.Errorf("helm %s: %s", strings.Join(args, " "), l)
			}
		}
	}
}

// TestChartValuesSchema: values.schema.json refuses what would render a
// broken or unsafe installation.
func TestChartValuesSchema(t *testing.T) {
	c := newChart(t)
	for _, set := range []string{
		"apiserver.tls.source=insecure",
		"apiserver.replicas=0",
		"apiserver.pollInterval=often",
		"localBackendDirs[0]=relative/dir",
		"localBackendDirs[0]=/srv/../etc",
		"controller.image.pullPolicy=Sometimes",
		"apiserver.insecureSkipTLSVerify=true",
		"apiserver.extraArgs[0]=not-a-flag",
	} {
		_, err := c.run(t, "template", "kubestash-catalog", c.dir, "--set", set)
		assert.Error(t, err, "--set %s was accepted", set)
	}
	_, err := c.run(t, "template", "kubestash-catalog", c.dir, "--set", "controller.replicas=2", "--set", "controller.leaderElection=false")
	assert.ErrorContains(t, err, "leaderElection", "two controllers without leader election")
	_, err = c.run(t, "template", "kubestash-catalog", c.dir, "--set", "apiserver.tls.source=secret")
	assert.Error(t, err, "source=secret without a Secret and caBundle")
	t.Logf("tls.source=secret alone: %v", err)
}

func TestChartCRDsMatchArtifacts(t *testing.T) {
	c := newChart(t)
	want, err := filepath.Glob(filepath.Join(c.root, "artifacts", "crds", "*.yaml"))
	require.NoError(t, err)
	have, err := filepath.Glob(filepath.Join(c.dir, "crds", "*.yaml"))
	require.NoError(t, err)
	require.Equal(t, len(want), len(have), "run hack/update-chart-crds.sh")
	for _, w := range want {
		a, err := os.ReadFile(w)
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(c.dir, "crds", filepath.Base(w)))
		require.NoError(t, err, "run hack/update-chart-crds.sh")
		assert.Equal(t, string(a), string(b), "%s differs from artifacts: run hack/update-chart-crds.sh", filepath.Base(w))
	}
	version, err := os.ReadFile(filepath.Join(c.root, "VERSION"))
	require.NoError(t, err)
	meta, err := os.ReadFile(filepath.Join(c.dir, "Chart.yaml"))
	require.NoError(t, err)
	v := strings.TrimSpace(string(version))
	assert.Contains(t, string(meta), "\nversion: "+strings.TrimPrefix(v, "v")+"\n")
	assert.Contains(t, string(meta), "\nappVersion: "+v+"\n")
}

func TestChartDefaultValues(t *testing.T) {
	c := newChart(t)
	manifests, objs := c.render(t, "--include-crds")
	ensureChartNamespace(t)
	dryRun(t, manifests)

	const full = "kubestash-catalog"
	sa := mustFind(t, objs, "ServiceAccount", full+"-apiserver")
	assert.Equal(t, chartNamespace, sa.GetNamespace())
	mustFind(t, objs, "ServiceAccount", full+"-controller")
	assert.Nil(t, find(objs, "PodDisruptionBudget", full+"-apiserver"), "a PodDisruptionBudget for one replica blocks every drain")

	// The serving certificate: the APIService's caBundle verifies the
	// Secret's certificate for the name kube-apiserver checks.
	apisvc := mustFind(t, objs, "APIService", "v1alpha1.catalog.kubestash.com")
	_, found, _ := unstructured.NestedFieldNoCopy(apisvc.Object, "spec", "insecureSkipTLSVerify")
	assert.False(t, found, "insecureSkipTLSVerify is set")
	svcName, _, _ := unstructured.NestedString(apisvc.Object, "spec", "service", "name")
	svcNS, _, _ := unstructured.NestedString(apisvc.Object, "spec", "service", "namespace")
	assert.Equal(t, full+"-apiserver", svcName)
	assert.Equal(t, chartNamespace, svcNS)
	mustFind(t, objs, "Service", svcName)
	caB64, _, _ := unstructured.NestedString(apisvc.Object, "spec", "caBundle")
	require.NotEmpty(t, caB64, "the APIService has no caBundle")
	secret := convert[corev1.Secret](t, mustFind(t, objs, "Secret", full+"-apiserver-cert"))
	verifyServing(t, caB64, secret.Data["tls.crt"], svcName+"."+chartNamespace+".svc")

	apiserver := convert[appsv1.Deployment](t, mustFind(t, objs, "Deployment", full+"-apiserver"))
	controller := convert[appsv1.Deployment](t, mustFind(t, objs, "Deployment", full+"-controller"))
	assert.Equal(t, sa.GetName(), apiserver.Spec.Template.Spec.ServiceAccountName)
	assert.Equal(t, full+"-controller", controller.Spec.Template.Spec.ServiceAccountName)
	assertHardened(t, apiserver, false)
	assertHardened(t, controller, false)
	assert.Equal(t, secret.Name, volume(t, apiserver, "serving-cert").Secret.SecretName)

	version, err := os.ReadFile(filepath.Join(c.root, "VERSION"))
	require.NoError(t, err)
	v := strings.TrimSpace(string(version))
	// The images make images builds (hack/images.sh).
	assert.Equal(t, "ghcr.io/kubestash-catalog/apiserver:"+v, apiserver.Spec.Template.Spec.Containers[0].Image)
	assert.Equal(t, "ghcr.io/kubestash-catalog/controller:"+v, controller.Spec.Template.Spec.Containers[0].Image)

	args := controller.Spec.Template.Spec.Containers[0].Args
	assert.Contains(t, args, "--catalog-server-account="+chartNamespace+"/"+sa.GetName(),
		"the controller must grant the Secrets to the account the catalog server runs as")
	assert.Contains(t, args, "--leader-elect=true")
	assert.Contains(t, args, "--leader-election-namespace="+chartNamespace)
	assert.Contains(t, args, "--agent-image=ghcr.io/kubestash-catalog/agent:"+v)
	assert.Contains(t, args, "--local-backend-dirs=", "no local backends unless the administrator lists them")
	assert.Contains(t, apiserver.Spec.Template.Spec.Containers[0].Args, "--local-backend-dirs=")
	assert.Contains(t, apiserver.Spec.Template.Spec.Containers[0].Args, "--poll-interval=15s")
	for _, d := range []*appsv1.Deployment{apiserver, controller} {
		for _, vol := range d.Spec.Template.Spec.Volumes {
			assert.Nil(t, vol.HostPath, "%s mounts the host's %v by default", d.Name, vol.HostPath)
		}
	}

	roles := map[string]string{
		"kubestash-catalog-apiserver": full + "-apiserver",
		"kubestash-catalog-view":      full + "-view",
		"kubestash-catalog-edit":      full + "-edit",
		"kubestash-catalog-browse":    full + "-browse",
		"kubestash-controller":        full + "-controller",
		"kubestash-cron-job":          "kubestash-cron-job",
		"kubestash-backup-job":        "kubestash-backup-job",
		"kubestash-restore-job":       "kubestash-restore-job",
	}
	assertRBACMatchesArtifacts(t, c, objs, roles)
	// Every ClusterRole the chart makes is one of the artifacts'.
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" {
			assert.True(t, slices.ContainsFunc(slices.Collect(maps.Values(roles)), func(n string) bool { return n == o.GetName() }),
				"ClusterRole %s has no counterpart in artifacts", o.GetName())
		}
	}
	for _, n := range []string{full + "-view", full + "-edit", full + "-browse"} {
		role := mustFind(t, objs, "ClusterRole", n)
		assert.Equal(t, "true", role.GetLabels()["rbac.authorization.k8s.io/aggregate-to-admin"], "%s is not aggregated into admin", n)
	}
	assert.Equal(t, "true", mustFind(t, objs, "ClusterRole", full+"-view").GetLabels()["rbac.authorization.k8s.io/aggregate-to-view"])
	assert.Empty(t, mustFind(t, objs, "ClusterRole", full+"-browse").GetLabels()["rbac.authorization.k8s.io/aggregate-to-view"],
		"view must not read inside Snapshots")

	assertBinding(t, objs, "ClusterRoleBinding", full+"-apiserver:system:auth-delegator", "system:auth-delegator", sa.GetName())
	assertBinding(t, objs, "RoleBinding", full+"-apiserver-auth-reader", "extension-apiserver-authentication-reader", sa.GetName())
	assertBinding(t, objs, "ClusterRoleBinding", full+"-apiserver", full+"-apiserver", sa.GetName())
	assertBinding(t, objs, "ClusterRoleBinding", full+"-controller", full+"-controller", full+"-controller")

	assertAddonsMatchArtifacts(t, c, objs, "ghcr.io/kubestash-catalog/agent:"+v)
}

func TestChartFullValues(t *testing.T) {
	c := newChart(t)
	// A real CA for tls.source=secret.
	_, caObjs := c.render(t)
	caB64, _, _ := unstructured.NestedString(mustFind(t, caObjs, "APIService", "v1alpha1.catalog.kubestash.com").Object, "spec", "caBundle")
	manifests, objs := c.render(t, "-f", filepath.Join(c.dir, "ci", "full-values.yaml"), "--set", "apiserver.tls.caBundle="+caB64)
	ensureChartNamespace(t)
	dryRun(t, manifests)

	apisvc := mustFind(t, objs, "APIService", "v1alpha1.catalog.kubestash.com")
	got, _, _ := unstructured.NestedString(apisvc.Object, "spec", "caBundle")
	assert.Equal(t, caB64, got)
	_, found, _ := unstructured.NestedFieldNoCopy(apisvc.Object, "spec", "insecureSkipTLSVerify")
	assert.False(t, found)
	assert.Nil(t, find(objs, "Secret", "ks-apiserver-cert"), "tls.source=secret: the chart makes no certificate")

	apiserver := convert[appsv1.Deployment](t, mustFind(t, objs, "Deployment", "ks-apiserver"))
	controller := convert[appsv1.Deployment](t, mustFind(t, objs, "Deployment", "ks-controller"))
	// Local backends: root, for the Jobs write the backends' files as root.
	assertHardened(t, apiserver, true)
	assertHardened(t, controller, true)
	assert.Equal(t, "catalog-serving-cert", volume(t, apiserver, "serving-cert").Secret.SecretName)
	assert.Equal(t, "catalog-server", apiserver.Spec.Template.Spec.ServiceAccountName)
	assert.Equal(t, "catalog-controller", controller.Spec.Template.Spec.ServiceAccountName)
	assert.Equal(t, "registry.example.com:5000/mirror/kubestash-apiserver:v0.1.0-rc.1", apiserver.Spec.Template.Spec.Containers[0].Image)
	assert.Equal(t, corev1.PullAlways, apiserver.Spec.Template.Spec.Containers[0].ImagePullPolicy)
	assert.Equal(t, int32(2), *apiserver.Spec.Replicas)
	assert.Equal(t, ptr.To(int64(45)), apiserver.Spec.Template.Spec.TerminationGracePeriodSeconds)
	mustFind(t, objs, "PodDisruptionBudget", "ks-apiserver")
	assert.Equal(t, "registry-credentials", apiserver.Spec.Template.Spec.ImagePullSecrets[0].Name)

	cc := controller.Spec.Template.Spec.Containers[0]
	require.NotNil(t, cc.ReadinessProbe, "the controller has a readiness probe")
	require.NotNil(t, cc.LivenessProbe, "the controller has a liveness probe")
	assert.Equal(t, "/readyz", cc.ReadinessProbe.HTTPGet.Path)
	assert.Equal(t, "/healthz", cc.LivenessProbe.HTTPGet.Path)
	assert.Equal(t, int32(9090), cc.Ports[0].ContainerPort)
	cargs := cc.Args
	for _, a := range []string{
		"--catalog-server-account=" + chartNamespace + "/catalog-server",
		"--agent-image=registry.example.com:5000/mirror/kubestash-agent:v0.1.0-rc.1",
		"--local-backend-dirs=/srv/backups,/mnt/nfs/kubestash",
		"--leader-elect=true", "--resync=1m", "--workers=4", "--pod-pending-timeout=20m",
		"--wipeout-delay=1m", "--finished-job-ttl=2h", "--metrics-bind-address=:9090", "--kube-api-qps=100", "--kube-api-burst=200", "--v=4", "--vmodule=loop=5",
	} {
		assert.Contains(t, cargs, a)
	}
	aargs := apiserver.Spec.Template.Spec.Containers[0].Args
	for _, a := range []string{
		"--secure-port=9443", "--poll-interval=1m", "--shutdown-delay-duration=5s", "--max-object-size=2Mi", "--v=4",
		"--local-backend-dirs=/srv/backups,/mnt/nfs/kubestash", "--audit-log-path=-",
	} {
		assert.Contains(t, aargs, a)
	}
	// Each local backend directory is mounted from the host at its own path.
	for _, d := range []*appsv1.Deployment{apiserver, controller} {
		var mounted []string
		for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
			for _, v := range d.Spec.Template.Spec.Volumes {
				if v.Name == m.Name && v.HostPath != nil {
					assert.Equal(t, v.HostPath.Path, m.MountPath)
					mounted = append(mounted, m.MountPath)
				}
			}
		}
		assert.ElementsMatch(t, []string{"/srv/backups", "/mnt/nfs/kubestash"}, mounted, d.Name)
	}
	for _, n := range []string{"ks-view", "ks-edit", "ks-browse"} {
		for k := range mustFind(t, objs, "ClusterRole", n).GetLabels() {
			assert.False(t, strings.HasPrefix(k, "rbac.authorization.k8s.io/aggregate-to-"), "%s: rbac.aggregateToDefaultRoles=false but %s", n, k)
		}
	}
	assertRBACMatchesArtifacts(t, c, objs, map[string]string{
		"kubestash-catalog-apiserver": "ks-apiserver",
		"kubestash-controller":        "ks-controller",
		"kubestash-cron-job":          "kubestash-cron-job",
	})
	assertBinding(t, objs, "ClusterRoleBinding", "ks-apiserver:system:auth-delegator", "system:auth-delegator", "catalog-server")
	assertBinding(t, objs, "ClusterRoleBinding", "ks-controller", "ks-controller", "catalog-controller")
	assertAddonsMatchArtifacts(t, c, objs, "registry.example.com:5000/mirror/kubestash-agent:v0.1.0-rc.1")
}

// TestChartCertManager: with cert-manager the chart asks for a Certificate
// and has its CA injected; nothing is insecure meanwhile. cert-manager's
// CRDs are not on the test control plane, so its objects are only checked,
// the rest is dry-run applied.
func TestChartCertManager(t *testing.T) {
	c := newChart(t)
	_, objs := c.render(t, "--set", "apiserver.tls.source=certManager")
	apisvc := mustFind(t, objs, "APIService", "v1alpha1.catalog.kubestash.com")
	assert.Equal(t, chartNamespace+"/kubestash-catalog-apiserver", apisvc.GetAnnotations()["cert-manager.io/inject-ca-from"])
	_, found, _ := unstructured.NestedFieldNoCopy(apisvc.Object, "spec", "insecureSkipTLSVerify")
	assert.False(t, found)
	cert := mustFind(t, objs, "Certificate", "kubestash-catalog-apiserver")
	secretName, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	dns, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
	assert.Contains(t, dns, "kubestash-catalog-apiserver."+chartNamespace+".svc")
	apiserver := convert[appsv1.Deployment](t, mustFind(t, objs, "Deployment", "kubestash-catalog-apiserver"))
	assert.Equal(t, secretName, volume(t, apiserver, "serving-cert").Secret.SecretName)
	mustFind(t, objs, "Issuer", "kubestash-catalog-ca")

	var rest []string
	for _, o := range objs {
		if strings.HasPrefix(o.GetAPIVersion(), "cert-manager.io/") {
			continue
		}
		b, err := yaml.Marshal(o.Object)
		require.NoError(t, err)
		rest = append(rest, string(b))
	}
	ensureChartNamespace(t)
	dryRun(t, strings.Join(rest, "---\n"))
}

func verifyServing(t *testing.T, caB64 string, certPEM []byte, name string) {
	t.Helper()
	caPEM, err := base64.StdEncoding.DecodeString(caB64)
	require.NoError(t, err, "caBundle is not base64")
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM), "caBundle holds no PEM certificate")
	block, _ := pem.Decode(certPEM)
	require.NotNil(t, block, "tls.crt is not PEM")
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	_, err = cert.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	assert.NoError(t, err, "the serving certificate does not verify against the APIService's caBundle for %s", name)
}

// assertHardened checks d's containers have no capability, no privilege
// escalation and a read-only root, and run as root only when asRoot (local
// backends) and as non-root otherwise.
func assertHardened(t *testing.T, d *appsv1.Deployment, asRoot bool) {
	t.Helper()
	pod := d.Spec.Template.Spec
	require.NotNil(t, pod.SecurityContext, d.Name)
	if asRoot {
		assert.Equal(t, ptr.To(int64(0)), pod.SecurityContext.RunAsUser, "%s: pod runAsUser", d.Name)
		assert.Equal(t, ptr.To(false), pod.SecurityContext.RunAsNonRoot, "%s: pod runAsNonRoot", d.Name)
	} else {
		assert.True(t, pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot, "%s: pod runAsNonRoot", d.Name)
	}
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		sc := c.SecurityContext
		require.NotNil(t, sc, "%s/%s has no securityContext", d.Name, c.Name)
		if asRoot {
			assert.Equal(t, ptr.To(false), sc.RunAsNonRoot, "%s/%s: runAsNonRoot", d.Name, c.Name)
		} else {
			assert.True(t, sc.RunAsNonRoot != nil && *sc.RunAsNonRoot, "%s/%s: runAsNonRoot", d.Name, c.Name)
		}
		assert.True(t, sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem, "%s/%s: readOnlyRootFilesystem", d.Name, c.Name)
		assert.True(t, sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation, "%s/%s: allowPrivilegeEscalation", d.Name, c.Name)
		require.NotNil(t, sc.Capabilities, "%s/%s: capabilities", d.Name, c.Name)
		assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop, "%s/%s: drop ALL", d.Name, c.Name)
		assert.Empty(t, sc.Capabilities.Add, "%s/%s: adds capabilities", d.Name, c.Name)
		assert.True(t, sc.Privileged == nil || !*sc.Privileged, "%s/%s: privileged", d.Name, c.Name)
	}
}

func volume(t *testing.T, d *appsv1.Deployment, name string) *corev1.Volume {
	t.Helper()
	for i, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return &d.Spec.Template.Spec.Volumes[i]
		}
	}
	t.Fatalf("%s has no volume %s", d.Name, name)
	return nil
}

func assertBinding(t *testing.T, objs []*unstructured.Unstructured, kind, name, role, sa string) {
	t.Helper()
	o := mustFind(t, objs, kind, name)
	b := convert[rbacv1.RoleBinding](t, o) // ClusterRoleBinding has the same roleRef and subjects
	assert.Equal(t, role, b.RoleRef.Name, "%s %s", kind, name)
	assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: chartNamespace}}, b.Subjects, "%s %s", kind, name)
}

// assertRBACMatchesArtifacts compares the rules of the chart's ClusterRoles
// with those of the same roles in artifacts/ (artifact name → chart name).
func assertRBACMatchesArtifacts(t *testing.T, c *chart, objs []*unstructured.Unstructured, names map[string]string) {
	t.Helper()
	var artifacts []*unstructured.Unstructured
	for _, f := range []string{"apiserver/02-rbac.yaml", "controller/00-job-roles.yaml", "controller/01-controller-rbac.yaml"} {
		b, err := os.ReadFile(filepath.Join(c.root, "artifacts", f))
		require.NoError(t, err)
		artifacts = append(artifacts, decodeAll(t, string(b))...)
	}
	seen := map[string]bool{}
	for _, a := range artifacts {
		if a.GetKind() != "ClusterRole" {
			continue
		}
		seen[a.GetName()] = true
		chartName, ok := names[a.GetName()]
		if !ok {
			continue
		}
		want := convert[rbacv1.ClusterRole](t, a).Rules
		got := convert[rbacv1.ClusterRole](t, mustFind(t, objs, "ClusterRole", chartName)).Rules
		assert.Equal(t, want, got, "ClusterRole %s differs from artifacts' %s", chartName, a.GetName())
	}
	for n := range names {
		assert.True(t, seen[n], "no ClusterRole %s in artifacts", n)
	}
}

// assertAddonsMatchArtifacts: the Addon and Functions are artifacts/addons'
// with the chart's agent image and labels.
func assertAddonsMatchArtifacts(t *testing.T, c *chart, objs []*unstructured.Unstructured, agentImage string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(c.root, "artifacts", "addons", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, want := range decodeAll(t, string(b)) {
			got := mustFind(t, objs, want.GetKind(), want.GetName()).DeepCopy()
			if want.GetKind() == "Function" {
				img, _, _ := unstructured.NestedString(got.Object, "spec", "image")
				assert.Equal(t, agentImage, img, "Function %s", want.GetName())
				require.NoError(t, unstructured.SetNestedField(got.Object, want.Object["spec"].(map[string]any)["image"], "spec", "image"))
			}
			got.SetLabels(nil)
			assert.Equal(t, want.Object, got.Object, "%s %s differs from %s", want.GetKind(), want.GetName(), filepath.Base(f))
		}
	}
}

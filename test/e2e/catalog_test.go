package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/generated/informers/externalversions"
)

var gvrSnapshot = schema.GroupVersionResource{Group: "catalog.kubestash.com", Version: "v1alpha1", Resource: "snapshots"}

// TestCatalogServer runs cmd/apiserver behind the real kube-apiserver
// (APIService, ExternalName Service, caBundle) over the MinIO bucket, and
// uses the catalog as kubectl and client-go users do.
func TestCatalogServer(t *testing.T) {
	const (
		ns        = "catalog-e2e"
		storageNS = "catalog-e2e-storage"
		storage   = "catalog-s3"
		prefix    = "catalog-e2e"
		repo      = "repo-1"
		poll      = 2 * time.Second
	)
	srv := startCatalogServer(t, catalogServerOptions{PollInterval: poll})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	cs, err := versioned.NewForConfig(env.Config)
	require.NoError(t, err)
	mc, err := env.MinIO.Client()
	require.NoError(t, err)
	bucket := env.MinIO.Bucket

	// A BackupStorage over the bucket, with its Secret, in a namespace of
	// its own, usable from all namespaces; and one usable only in its own
	// namespace. The catalog objects are in another namespace, so that
	// deleting it later deletes their namespace and not their storage.
	_, _, err = env.Kubectl(ctx, fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
---
apiVersion: v1
kind: Namespace
metadata:
  name: %[8]s
---
apiVersion: v1
kind: Secret
metadata:
  name: s3-secret
  namespace: %[8]s
stringData:
  AWS_ACCESS_KEY_ID: %[4]s
  AWS_SECRET_ACCESS_KEY: %[5]s
---
apiVersion: storage.kubestash.com/v1alpha1
kind: BackupStorage
metadata:
  name: %[2]s
  namespace: %[8]s
spec:
  storage:
    provider: s3
    s3:
      endpoint: %[3]s
      bucket: %[6]s
      region: us-east-1
      prefix: %[7]s
      secretName: s3-secret
  usagePolicy:
    allowedNamespaces:
      from: All
  deletionPolicy: Delete
---
apiVersion: storage.kubestash.com/v1alpha1
kind: BackupStorage
metadata:
  name: same-only
  namespace: %[8]s
spec:
  storage:
    provider: s3
    s3:
      endpoint: %[3]s
      bucket: %[6]s
      region: us-east-1
      prefix: %[7]s-same
      secretName: s3-secret
`, ns, storage, env.MinIO.Endpoint, env.MinIO.AccessKey, env.MinIO.SecretKey, bucket, prefix, storageNS), "apply", "-f", "-")
	require.NoError(t, err)
	t.Cleanup(func() {
		// Later servers of this package need not serve these storages.
		_ = env.KubeClient.CoreV1().Namespaces().Delete(context.Background(), storageNS, metav1.DeleteOptions{})
	})

	t.Run("create a Repository through the API writes repository.yaml", func(t *testing.T) {
		r := &catalogv1alpha1.Repository{
			ObjectMeta: metav1.ObjectMeta{Name: repo, Namespace: ns},
			Spec: catalogv1alpha1.RepositorySpec{
				StorageRef: kmapi.ObjectReference{Name: storage, Namespace: storageNS},
				Path:       "/" + repo,
			},
		}
		// The storage is served as soon as the server has seen it.
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			_, err := cs.CatalogV1alpha1().Repositories(ns).Create(ctx, r, metav1.CreateOptions{})
			if !apierrors.IsAlreadyExists(err) {
				assert.NoError(c, err)
			}
		}, 30*time.Second, 500*time.Millisecond)

		obj, err := mc.GetObject(ctx, bucket, prefix+"/"+repo+"/repository.yaml", minio.GetObjectOptions{})
		require.NoError(t, err)
		data, err := io.ReadAll(obj)
		require.NoError(t, err)
		var file catalogv1alpha1.Repository
		require.NoError(t, yaml.Unmarshal(data, &file), string(data))
		assert.Equal(t, "catalog.kubestash.com/v1alpha1", file.APIVersion)
		assert.Equal(t, repo, file.Name)
		assert.Equal(t, "/"+repo, file.Spec.Path)
		assert.Equal(t, catalogv1alpha1.DeletionPolicyDelete, file.Spec.DeletionPolicy, "defaulted by the scheme")
		assert.Empty(t, file.ResourceVersion, "files carry no resourceVersion")
		assert.Empty(t, file.OwnerReferences)

		meta, err := mc.GetObject(ctx, bucket, prefix+"/metadata.yaml", minio.GetObjectOptions{})
		require.NoError(t, err)
		data, err = io.ReadAll(meta)
		require.NoError(t, err)
		assert.Contains(t, string(data), "path: /"+repo, "metadata.yaml lists the repository")
	})

	t.Run("kubectl get repo", func(t *testing.T) {
		out, _, err := env.Kubectl(ctx, "", "get", "repo", "-n", ns)
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Len(t, lines, 2, out)
		assert.Equal(t, []string{"NAME", "INTEGRITY", "SNAPSHOT-COUNT", "SIZE", "PHASE", "LAST-SUCCESSFUL-BACKUP", "AGE"}, strings.Fields(lines[0]))
		assert.Equal(t, repo, strings.Fields(lines[1])[0])
	})

	t.Run("kubectl get snapshots -A", func(t *testing.T) {
		s := &catalogv1alpha1.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Name: repo + "-first", Namespace: ns},
			Spec:       catalogv1alpha1.SnapshotSpec{Repository: repo, Session: "frequent-backup", SnapshotID: "01HHKQQ59XN4979HMDFNCANA9V"},
		}
		_, err := cs.CatalogV1alpha1().Snapshots(ns).Create(ctx, s, metav1.CreateOptions{})
		require.NoError(t, err)
		now := metav1.NewTime(time.Now().UTC().Truncate(time.Second))
		_, err = cs.CatalogV1alpha1().Snapshots(ns).Patch(ctx, s.Name, types.MergePatchType,
			fmt.Appendf(nil, `{"status":{"phase":"Succeeded","snapshotTime":%q}}`, now.Format(time.RFC3339)), metav1.PatchOptions{}, "status")
		require.NoError(t, err)

		out, _, err := env.Kubectl(ctx, "", "get", "snapshots", "-A")
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		assert.Equal(t, []string{"NAMESPACE", "NAME", "REPOSITORY", "SESSION", "SNAPSHOT-TIME", "DELETION-POLICY", "PHASE", "AGE"}, strings.Fields(lines[0]))
		var row []string
		for _, l := range lines[1:] {
			if f := strings.Fields(l); len(f) > 1 && f[1] == s.Name {
				row = f
			}
		}
		require.NotNil(t, row, out)
		assert.Equal(t, []string{ns, s.Name, repo, "frequent-backup", now.Format(time.RFC3339), "Delete", "Succeeded"}, row[:7])

		// Field selectors of the reference work.
		out, _, err = env.Kubectl(ctx, "", "get", "snapshots", "-n", ns, "--field-selector", "spec.repository="+repo+",status.phase=Succeeded", "-o", "name")
		require.NoError(t, err)
		assert.Contains(t, out, "snapshot.catalog.kubestash.com/"+s.Name)
		out, _, err = env.Kubectl(ctx, "", "get", "snapshots", "-n", ns, "--field-selector", "status.phase=Failed", "-o", "name")
		require.NoError(t, err)
		assert.NotContains(t, out, s.Name)
	})

	t.Run("kubectl explain snapshot.spec", func(t *testing.T) {
		// kube-apiserver merges an APIService's OpenAPI into its own
		// asynchronously, some seconds after the APIService turns
		// Available: kubectl explain may not know the type at first.
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			out, _, err := env.Kubectl(ctx, "", "explain", "snapshot.spec")
			require.NoError(c, err)
			for _, f := range []string{"repository", "snapshotID", "deletionPolicy", "backupSession"} {
				assert.Contains(c, out, f)
			}
		}, time.Minute, time.Second)
	})

	t.Run("kubectl apply --server-side of a RestoreSession", func(t *testing.T) {
		manifest := strings.NewReplacer("namespace: demo", "namespace: "+ns, "repository: s3-repository", "repository: "+repo).
			Replace(renderExample(t, "07-restoresession.yaml"))
		out, _, err := env.Kubectl(ctx, manifest, "apply", "--server-side", "-f", "-")
		require.NoError(t, err)
		assert.Contains(t, out, "restoresession.catalog.kubestash.com/pvc-restore serverside-applied")
		// Applying again changes nothing.
		_, _, err = env.Kubectl(ctx, manifest, "apply", "--server-side", "-f", "-")
		require.NoError(t, err)

		out, _, err = env.Kubectl(ctx, "", "get", "restore", "-n", ns)
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Len(t, lines, 2, out)
		assert.Equal(t, []string{"NAME", "REPOSITORY", "PHASE", "DURATION", "AGE"}, strings.Fields(lines[0]))
		assert.Equal(t, []string{"pvc-restore", repo}, strings.Fields(lines[1])[:2])

		_, err = mc.StatObject(ctx, bucket, prefix+"/"+repo+"/restoresessions/pvc-restore.yaml", minio.StatObjectOptions{})
		assert.NoError(t, err, "the RestoreSession is kept in its repository's folder")
	})

	t.Run("bad input is a 4xx naming the field, and the bucket is unchanged", func(t *testing.T) {
		dyn, err := dynamic.NewForConfig(env.Config)
		require.NoError(t, err)
		before := listKeys(ctx, t, mc, bucket, prefix+"/")

		_, err = cs.CatalogV1alpha1().Snapshots(ns).Create(ctx, &catalogv1alpha1.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: ns},
			Spec:       catalogv1alpha1.SnapshotSpec{Repository: "no-such-repo"},
		}, metav1.CreateOptions{})
		require.Error(t, err)
		assert.True(t, apierrors.IsInvalid(err), "422, got %v", err)
		assert.Contains(t, err.Error(), "spec.repository")
		t.Logf("repository that does not exist: %v", err)

		_, err = cs.CatalogV1alpha1().Snapshots(ns).Create(ctx, &catalogv1alpha1.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Name: "Bad_Name", Namespace: ns},
			Spec:       catalogv1alpha1.SnapshotSpec{Repository: repo},
		}, metav1.CreateOptions{})
		require.Error(t, err)
		assert.True(t, apierrors.IsInvalid(err), "422, got %v", err)
		assert.Contains(t, err.Error(), "metadata.name")
		t.Logf("invalid name: %v", err)

		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "catalog.kubestash.com/v1alpha1", "kind": "Snapshot",
			"metadata": map[string]any{"name": "strict", "namespace": ns},
			"spec":     map[string]any{"repository": repo, "bogusField": "x"},
		}}
		_, err = dyn.Resource(gvrSnapshot).Namespace(ns).Create(ctx, u, metav1.CreateOptions{FieldValidation: "Strict"})
		require.Error(t, err)
		assert.True(t, apierrors.IsBadRequest(err), "400, got %v", err)
		assert.Contains(t, err.Error(), "spec.bogusField")
		t.Logf("unknown field: %v", err)

		_, err = cs.CatalogV1alpha1().Repositories(ns).Patch(ctx, repo, types.MergePatchType, []byte(`{"spec":{"path":"/elsewhere"}}`), metav1.PatchOptions{})
		require.Error(t, err)
		assert.True(t, apierrors.IsInvalid(err), "422, got %v", err)
		assert.Contains(t, err.Error(), "spec.path")
		t.Logf("immutable field: %v", err)

		_, err = cs.CatalogV1alpha1().Snapshots(ns).Patch(ctx, repo+"-first", types.MergePatchType, []byte(`{"spec":{"repository":"other"}}`), metav1.PatchOptions{})
		require.Error(t, err)
		assert.True(t, apierrors.IsInvalid(err), "422, got %v", err)
		assert.Contains(t, err.Error(), "spec.repository")

		assert.Equal(t, before, listKeys(ctx, t, mc, bucket, prefix+"/"), "no file was written")
	})

	t.Run("kubectl get snapshots -w sees a file written into the bucket", func(t *testing.T) {
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		lines := kubectlWatch(t, wctx, "get", "snapshots", "-n", ns, "-w", "--no-headers")
		// The watch lists first: wait for the existing snapshot.
		waitLine(t, lines, repo+"-first", 30*time.Second)

		name := repo + "-written-by-another-cluster"
		file := fmt.Sprintf(`apiVersion: catalog.kubestash.com/v1alpha1
kind: Snapshot
metadata:
  name: %s
  namespace: %s
spec:
  repository: %s
  session: frequent-backup
  deletionPolicy: Delete
status:
  phase: Succeeded
`, name, ns, repo)
		start := time.Now()
		_, err := mc.PutObject(ctx, bucket, prefix+"/"+repo+"/snapshots/"+name+".yaml", bytes.NewReader([]byte(file)), int64(len(file)),
			minio.PutObjectOptions{ContentType: "application/yaml"})
		require.NoError(t, err)
		// One poll interval, plus the time to list, read and print on two
		// busy cores.
		waitLine(t, lines, name, poll+3*time.Second)
		t.Logf("snapshot written into the bucket seen by kubectl -w after %v (poll interval %v)", time.Since(start).Round(time.Millisecond), poll)
	})

	t.Run("an informer from pkg/generated syncs and follows changes", func(t *testing.T) {
		ictx, icancel := context.WithCancel(ctx)
		defer icancel()
		factory := externalversions.NewSharedInformerFactoryWithOptions(cs, 0, externalversions.WithNamespace(ns))
		inf := factory.Catalog().V1alpha1().Snapshots()
		informer, lister := inf.Informer(), inf.Lister()
		factory.Start(ictx.Done())
		require.True(t, cache.WaitForCacheSync(ictx.Done(), informer.HasSynced))
		_, err := lister.Snapshots(ns).Get(repo + "-first")
		require.NoError(t, err)

		_, err = cs.CatalogV1alpha1().Snapshots(ns).Create(ctx, &catalogv1alpha1.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Name: repo + "-informed", Namespace: ns},
			Spec:       catalogv1alpha1.SnapshotSpec{Repository: repo},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			_, err := lister.Snapshots(ns).Get(repo + "-informed")
			return err == nil
		}, 10*time.Second, 100*time.Millisecond)
		require.NoError(t, cs.CatalogV1alpha1().Snapshots(ns).Delete(ctx, repo+"-informed", metav1.DeleteOptions{}))
		require.Eventually(t, func() bool {
			_, err := lister.Snapshots(ns).Get(repo + "-informed")
			return apierrors.IsNotFound(err)
		}, 10*time.Second, 100*time.Millisecond)
	})

	t.Run("categories", func(t *testing.T) {
		out, _, err := env.Kubectl(ctx, "", "get", "kubestash", "-n", ns, "-o", "name")
		require.NoError(t, err)
		assert.Contains(t, out, "repository.catalog.kubestash.com/"+repo)
		assert.Contains(t, out, "snapshot.catalog.kubestash.com/"+repo+"-first")
		assert.Contains(t, out, "restoresession.catalog.kubestash.com/pvc-restore")
		out, _, err = env.Kubectl(ctx, "", "get", "all", "-n", ns, "-o", "name")
		require.NoError(t, err)
		assert.Contains(t, out, "repository.catalog.kubestash.com/"+repo)
		assert.NotContains(t, out, "snapshot.catalog.kubestash.com/", "snapshots are not in all")
	})

	t.Run("a BackupSession is kept in the first repository of its session", func(t *testing.T) {
		bc := strings.NewReplacer("namespace: demo", "namespace: "+ns, "name: s3-repository", "name: "+repo, "name: s3-storage", "name: "+storage).
			Replace(renderExample(t, "06-backupconfiguration.yaml"))
		_, _, err := env.Kubectl(ctx, bc, "apply", "-f", "-")
		require.NoError(t, err)
		b := &catalogv1alpha1.BackupSession{
			ObjectMeta: metav1.ObjectMeta{Name: "pvc-backup-frequent-backup-1704281100", Namespace: ns},
			Spec: catalogv1alpha1.BackupSessionSpec{
				Invoker: corev1.TypedLocalObjectReference{APIGroup: ptr.To("core.kubestash.com"), Kind: "BackupConfiguration", Name: "pvc-backup"},
				Session: "frequent-backup",
			},
		}
		// The server learns of the BackupConfiguration through its informer.
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			_, err := cs.CatalogV1alpha1().BackupSessions(ns).Create(ctx, b, metav1.CreateOptions{})
			if !apierrors.IsAlreadyExists(err) {
				assert.NoError(c, err)
			}
		}, 30*time.Second, 500*time.Millisecond)
		_, err = mc.StatObject(ctx, bucket, prefix+"/"+repo+"/backupsessions/"+b.Name+".yaml", minio.StatObjectOptions{})
		require.NoError(t, err)

		out, _, err := env.Kubectl(ctx, "", "get", "backupsessions", "-n", ns)
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Len(t, lines, 2, out)
		assert.Equal(t, []string{"NAME", "INVOKER-TYPE", "INVOKER-NAME", "PHASE", "DURATION", "AGE"}, strings.Fields(lines[0]))
		assert.Equal(t, []string{b.Name, "BackupConfiguration", "pvc-backup"}, strings.Fields(lines[1])[:3])

		_, err = cs.CatalogV1alpha1().BackupSessions(ns).Patch(ctx, b.Name, types.MergePatchType, []byte(`{"spec":{"session":"other"}}`), metav1.PatchOptions{})
		require.Error(t, err)
		assert.True(t, apierrors.IsInvalid(err), "422, got %v", err)
		assert.Contains(t, err.Error(), "spec")

		_, err = cs.CatalogV1alpha1().BackupSessions(ns).Create(ctx, &catalogv1alpha1.BackupSession{
			ObjectMeta: metav1.ObjectMeta{Name: "no-such-session", Namespace: ns},
			Spec: catalogv1alpha1.BackupSessionSpec{
				Invoker: corev1.TypedLocalObjectReference{Kind: "BackupConfiguration", Name: "pvc-backup"},
				Session: "hourly",
			},
		}, metav1.CreateOptions{})
		require.Error(t, err)
		assert.True(t, apierrors.IsInvalid(err), "422, got %v", err)
		assert.Contains(t, err.Error(), "spec.session")
	})

	t.Run("a BackupStorage that can't be served is reported while the others work", func(t *testing.T) {
		_, _, err := env.Kubectl(ctx, fmt.Sprintf(`apiVersion: storage.kubestash.com/v1alpha1
kind: BackupStorage
metadata:
  name: no-secret
  namespace: %s
spec:
  storage:
    provider: s3
    s3:
      endpoint: %s
      bucket: %s
      prefix: nowhere
      secretName: does-not-exist
`, storageNS, env.MinIO.Endpoint, bucket), "apply", "-f", "-")
		require.NoError(t, err)
		rc, err := rest.RESTClientFor(withNegotiation(srv.Config))
		require.NoError(t, err)
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			body, err := rc.Get().AbsPath("/readyz/catalog-storages").DoRaw(ctx)
			assert.Error(c, err)
			assert.Contains(c, string(body), "BackupStorage "+storageNS+"/no-secret")
			assert.Contains(c, string(body), "secret "+storageNS+"/does-not-exist not found")
		}, 30*time.Second, 500*time.Millisecond)
		body, err := rc.Get().AbsPath("/readyz").Param("exclude", "catalog-storages").DoRaw(ctx)
		require.NoError(t, err, string(body))

		out, _, err := env.Kubectl(ctx, "", "get", "snapshots", "-n", ns, "-o", "name")
		require.NoError(t, err)
		assert.Contains(t, out, repo+"-first", "the other storage is still served")

		metrics, err := rc.Get().AbsPath("/metrics").DoRaw(ctx)
		require.NoError(t, err)
		assert.Contains(t, string(metrics), `kubestash_catalog_backup_storages{state="failed"} 1`)
		assert.Contains(t, string(metrics), `kubestash_catalog_index_objects{resource="snapshots"}`)
		assert.Contains(t, string(metrics), `apiserver_request_total`)

		require.NoError(t, cs.StorageV1alpha1().BackupStorages(storageNS).Delete(ctx, "no-secret", metav1.DeleteOptions{}))
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			_, err := rc.Get().AbsPath("/readyz/catalog-storages").DoRaw(ctx)
			assert.NoError(c, err)
		}, 30*time.Second, 500*time.Millisecond)
	})

	t.Run("a storage is used only in the namespaces its usagePolicy allows", func(t *testing.T) {
		before := listKeys(ctx, t, mc, bucket, prefix+"-same/")
		_, err := cs.CatalogV1alpha1().Repositories(ns).Create(ctx, &catalogv1alpha1.Repository{
			ObjectMeta: metav1.ObjectMeta{Name: "intruder", Namespace: ns},
			Spec:       catalogv1alpha1.RepositorySpec{StorageRef: kmapi.ObjectReference{Name: "same-only", Namespace: storageNS}, Path: "/intruder"},
		}, metav1.CreateOptions{})
		require.Error(t, err)
		assert.True(t, apierrors.IsBadRequest(err), "400, got %v", err)
		assert.Contains(t, err.Error(), "usagePolicy")
		t.Logf("usagePolicy: %v", err)
		assert.Equal(t, before, listKeys(ctx, t, mc, bucket, prefix+"-same/"), "nothing written")
	})

	t.Run("no ownerReferences are stored", func(t *testing.T) {
		_, err := cs.CatalogV1alpha1().Snapshots(ns).Create(ctx, &catalogv1alpha1.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Name: "owned", Namespace: ns, OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: "00000000-0000-0000-0000-000000000001",
			}}},
			Spec: catalogv1alpha1.SnapshotSpec{Repository: repo},
		}, metav1.CreateOptions{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "metadata.ownerReferences")
	})

	// The Secret is read, never logged.
	secret, err := env.KubeClient.CoreV1().Secrets(storageNS).Get(ctx, "s3-secret", metav1.GetOptions{})
	require.NoError(t, err)
	assertNotLogged(t, srv, secret)

	t.Run("deleting the namespace completes and leaves every file in the bucket", func(t *testing.T) {
		before := listKeys(ctx, t, mc, bucket, prefix+"/")
		require.NotEmpty(t, before)
		require.NoError(t, env.KubeClient.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}))
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			_, err := env.KubeClient.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			assert.True(c, apierrors.IsNotFound(err), "namespace still there: %v", err)
		}, 2*time.Minute, time.Second)
		assert.Equal(t, before, listKeys(ctx, t, mc, bucket, prefix+"/"), "the backups outlive their namespace")

		// Recreated, the namespace has its backups again.
		_, _, err := env.Kubectl(ctx, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n", "apply", "-f", "-")
		require.NoError(t, err)
		out, _, err := env.Kubectl(ctx, "", "get", "snapshots", "-n", ns, "-o", "name")
		require.NoError(t, err)
		assert.Contains(t, out, "snapshot.catalog.kubestash.com/"+repo+"-first")
		require.NoError(t, env.KubeClient.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}))
	})
}

// listKeys lists every object under prefix.
func listKeys(ctx context.Context, t *testing.T, mc *minio.Client, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	for o := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		require.NoError(t, o.Err)
		keys = append(keys, o.Key+"@"+o.ETag)
	}
	return keys
}

// kubectlWatch runs a kubectl that streams (get -w) and returns its output
// lines; it ends with ctx.
func kubectlWatch(t *testing.T, ctx context.Context, args ...string) <-chan string {
	t.Helper()
	bin := filepath.Join(filepath.Dir(env.Etcd.Bin), "kubectl")
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("kubectl %s stderr: %s", strings.Join(args, " "), stderr.String())
		}
	})
	return lines
}

// waitLine waits for a line that contains s.
func waitLine(t *testing.T, lines <-chan string, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	var seen []string
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("output ended before %q; saw:\n%s", s, strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
			if strings.Contains(l, s) {
				return
			}
		case <-deadline:
			t.Fatalf("no line with %q within %v; saw:\n%s", s, timeout, strings.Join(seen, "\n"))
		}
	}
}

// assertNotLogged checks that no value of the Secret is in the server's log.
func assertNotLogged(t *testing.T, srv *catalogServer, secret *corev1.Secret) {
	t.Helper()
	log := srv.proc.LogTail(1 << 20)
	for k, v := range secret.Data {
		assert.NotContains(t, log, string(v), "the value of %s is in the log", k)
	}
}

// withNegotiation makes a config usable by rest.RESTClientFor for
// non-resource paths.
func withNegotiation(c *rest.Config) *rest.Config {
	c = rest.CopyConfig(c)
	c.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	c.GroupVersion = &schema.GroupVersion{}
	return c
}

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientfeatures "k8s.io/client-go/features"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/yaml"

	"kubestash.dev/kubestash/pkg/apis/catalog/install"
	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/generated/informers/externalversions"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/test/framework"
)

// fileCodec writes catalog files as another cluster (or upstream) leaves
// them in a bucket.
var fileCodec = func() runtime.Codec {
	scheme := runtime.NewScheme()
	install.Install(scheme)
	return layout.NewFileCodec(scheme)
}()

// bucketRepo is one repository to write into a bucket directly: its
// repository.yaml and snapshot files, in the layout of DESIGN.md.
type bucketRepo struct {
	Name, Namespace, Path string
	// StorageRef is what repository.yaml says holds it: the other
	// cluster's BackupStorage.
	StorageRef kmapi.ObjectReference
	Snapshots  []string
}

// catalogFiles returns the files of repos under prefix (metadata.yaml
// listing them, repository.yaml, snapshots/*.yaml), by object key.
func catalogFiles(t testing.TB, prefix string, repos ...bucketRepo) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	encode := func(obj runtime.Object) []byte {
		var buf bytes.Buffer
		require.NoError(t, fileCodec.Encode(obj, &buf))
		return buf.Bytes()
	}
	created := metav1.NewTime(fileTime)
	meta := layout.BackendMeta{APIVersion: layout.MetaAPIVersion, Kind: layout.MetaKind, CreationTimestamp: created, OperatorVersion: "v2026.1.1"}
	for _, r := range repos {
		meta.Repositories = append(meta.Repositories, layout.RepositoryInfo{Name: r.Name, Namespace: r.Namespace, Path: r.Path})
		key, err := layout.Key(layout.KindRepository, r.Path, "")
		require.NoError(t, err)
		files[prefix+"/"+key] = encode(&catalogv1alpha1.Repository{
			ObjectMeta: metav1.ObjectMeta{Name: r.Name, Namespace: r.Namespace, CreationTimestamp: created},
			Spec:       catalogv1alpha1.RepositorySpec{StorageRef: r.StorageRef, Path: r.Path, DeletionPolicy: catalogv1alpha1.DeletionPolicyDelete},
			Status:     catalogv1alpha1.RepositoryStatus{Phase: catalogv1alpha1.RepositoryReady},
		})
		for i, name := range r.Snapshots {
			key, err := layout.Key(layout.KindSnapshot, r.Path, name)
			require.NoError(t, err)
			files[prefix+"/"+key] = encode(snapshotObject(r, i, name))
		}
	}
	data, err := yaml.Marshal(meta)
	require.NoError(t, err)
	files[prefix+"/"+layout.MetadataFile] = data
	return files
}

// snapshotObject is the i-th Snapshot of r as a backup leaves it: one
// succeeded component with its restic stats.
func snapshotObject(r bucketRepo, i int, name string) *catalogv1alpha1.Snapshot {
	at := metav1.NewTime(fileTime.Add(time.Duration(i) * time.Minute))
	end := metav1.NewTime(at.Add(7 * time.Second))
	integrity := true
	return &catalogv1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.Namespace, CreationTimestamp: at,
			Labels: map[string]string{"kubestash.com/repo-name": r.Name}},
		Spec: catalogv1alpha1.SnapshotSpec{
			SnapshotID: fmt.Sprintf("01HK6Z2Q7V3N4K5P6R7S%06d", i), Type: catalogv1alpha1.BackupTypeFull,
			Repository: r.Name, Session: "frequent-backup", BackupSession: fmt.Sprintf("%s-frequent-backup-%d", r.Name, at.Unix()),
			Version: "v1", DeletionPolicy: catalogv1alpha1.DeletionPolicyDelete,
			AppRef: kmapi.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "data", Namespace: r.Namespace},
		},
		Status: catalogv1alpha1.SnapshotStatus{
			Phase: catalogv1alpha1.SnapshotSucceeded, SnapshotTime: &at, LastUpdateTime: &end,
			Size: "806 B", Integrity: &integrity, TotalComponents: 1,
			Components: map[string]catalogv1alpha1.Component{"dump": {
				Path: "repository/v1/frequent-backup/dump", Phase: catalogv1alpha1.ComponentPhaseSucceeded,
				Size: "806 B", Duration: "7.534461497s", Integrity: &integrity, Driver: catalogv1alpha1.DriverRestic,
				ResticStats: []catalogv1alpha1.ResticStats{{Summary: &catalogv1alpha1.ResticSummary{
					ID: fmt.Sprintf("f28441a36b2167d64597d66d1046573181cad81aa8ff5b0998b64b31ce%06d", i), Uploaded: "1.049 KiB",
					HostPath: "/kubestash-data", Size: "11 B", StartTime: &at, EndTime: &end,
				}}},
			}},
		},
	}
}

// fileTime is when the files written into buckets say things happened.
var fileTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// putFiles writes files into the bucket directly, in parallel.
func putFiles(ctx context.Context, t testing.TB, mc *minio.Client, bucket string, files map[string][]byte) {
	t.Helper()
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for key, data := range files {
		g.Go(func() error {
			_, err := mc.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{ContentType: "application/yaml"})
			if err != nil {
				return fmt.Errorf("put %s: %w", key, err)
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
}

// applyBackupStorage creates namespace ns with a Secret and a BackupStorage
// over bucket/prefix of cp's MinIO, usable from the namespaces of from.
func applyBackupStorage(ctx context.Context, t testing.TB, cp *framework.ControlPlane, ns, name, prefix, from string) {
	t.Helper()
	_, _, err := cp.Kubectl(ctx, fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
---
apiVersion: v1
kind: Secret
metadata:
  name: %[2]s-secret
  namespace: %[1]s
stringData:
  AWS_ACCESS_KEY_ID: %[3]s
  AWS_SECRET_ACCESS_KEY: %[4]s
---
apiVersion: storage.kubestash.com/v1alpha1
kind: BackupStorage
metadata:
  name: %[2]s
  namespace: %[1]s
spec:
  storage:
    provider: s3
    s3:
      endpoint: %[5]s
      bucket: %[6]s
      region: us-east-1
      prefix: %[7]s
      secretName: %[2]s-secret
  usagePolicy:
    allowedNamespaces:
      from: %[8]s
  deletionPolicy: Delete
`, ns, name, cp.MinIO.AccessKey, cp.MinIO.SecretKey, cp.MinIO.Endpoint, cp.MinIO.Bucket, prefix, from), "apply", "-f", "-")
	require.NoError(t, err)
}

// grantCatalogRole lets user do verbs on the catalog resources of
// namespace ns, through a Role and RoleBinding named role.
func grantCatalogRole(ctx context.Context, t *testing.T, ns, user, role string, resources []string, verbs ...string) {
	t.Helper()
	_, _, err := env.Kubectl(ctx, fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: %[3]s, namespace: %[1]s}
rules:
- apiGroups: ["catalog.kubestash.com"]
  resources: [%[4]s]
  verbs: [%[5]s]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: %[3]s, namespace: %[1]s}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: %[2]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: %[3]s}
`, ns, user, role, strings.Join(resources, ", "), strings.Join(verbs, ", ")), "apply", "-f", "-")
	require.NoError(t, err)
}

// createNamespaces creates namespaces on env and deletes them at cleanup
// (a storage's namespace too: later servers of the package need not serve
// it).
func createNamespaces(ctx context.Context, t *testing.T, names ...string) {
	t.Helper()
	for _, ns := range names {
		_, _, err := env.Kubectl(ctx, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n", "apply", "-f", "-")
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		for _, ns := range names {
			_ = env.KubeClient.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		}
	})
}

// kubectlNames runs kubectl get -o name and returns the names, without
// the resource.
func kubectlNames(ctx context.Context, t assert.TestingT, cp *framework.ControlPlane, args ...string) []string {
	out, stderr, err := cp.Kubectl(ctx, "", append(append([]string{"get"}, args...), "-o", "name")...)
	if !assert.NoError(t, err, "kubectl get %s: %s", strings.Join(args, " "), stderr) {
		return nil
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			names = append(names, l[strings.LastIndex(l, "/")+1:])
		}
	}
	return names
}

func seq(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return out
}

// TestCatalogFromBucketOnFreshCluster: a bucket filled directly, as
// another cluster would leave it, is the whole catalog of a fresh control
// plane pointed at it (through a BackupStorage of another name and
// namespace than the one repository.yaml names), and nothing of it is in
// that cluster's etcd.
func TestCatalogFromBucketOnFreshCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	cp, err := framework.Start(ctx, framework.Options{NoControllerManager: true})
	require.NoError(t, err)
	t.Cleanup(cp.Stop)
	t.Logf("fresh control plane up in %v", time.Since(start).Round(time.Millisecond))

	// A marker no object of this cluster has but the imported ones.
	marker := fmt.Sprintf("bucket-only-%x", time.Now().UnixNano()&0xffffff)
	const (
		prefix = "other-cluster"
		ns     = "imported"
	)
	repo := bucketRepo{
		Name: marker + "-repo", Namespace: ns, Path: "/" + ns + "/pvc-backup",
		StorageRef: kmapi.ObjectReference{Name: "s3-storage", Namespace: "kubestash-of-another-cluster"},
		Snapshots:  seq(marker, 100),
	}
	mc, err := cp.MinIO.Client()
	require.NoError(t, err)
	putFiles(ctx, t, mc, cp.MinIO.Bucket, catalogFiles(t, prefix, repo))

	// This cluster's BackupStorage has another name and namespace than
	// the storageRef in repository.yaml.
	applyBackupStorage(ctx, t, cp, "storage-here", "restored-bucket", prefix, "All")
	startCatalogServer(t, catalogServerOptions{CP: cp})

	var got []string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got = kubectlNames(ctx, c, cp, "snapshots", "-A")
		assert.Len(c, got, 100)
	}, 30*time.Second, time.Second, "kubectl get snapshots -A lists every snapshot file")
	assert.ElementsMatch(t, repo.Snapshots, got)
	assert.Equal(t, []string{repo.Name}, kubectlNames(ctx, t, cp, "repositories", "-A"))
	out, _, err := cp.Kubectl(ctx, "", "get", "snapshots", "-n", ns, repo.Snapshots[42])
	require.NoError(t, err)
	assert.Contains(t, out, "Succeeded")

	// Nothing of the catalog is in etcd: no key under the group, and no
	// key or value anywhere that mentions the marker in every imported
	// name. The catalog group is not a CRD either.
	etcd, err := clientv3.New(clientv3.Config{Endpoints: []string{cp.Etcd.ClientURL}, DialTimeout: 10 * time.Second})
	require.NoError(t, err)
	defer etcd.Close()
	resp, err := etcd.Get(ctx, "/registry/", clientv3.WithPrefix())
	require.NoError(t, err)
	require.NotEmpty(t, resp.Kvs, "etcd holds the cluster's objects")
	var apiService bool
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		assert.False(t, strings.HasPrefix(key, "/registry/catalog.kubestash.com/"), "catalog object in etcd: %s", key)
		assert.NotContains(t, key, "/snapshots/", "a snapshot in etcd: %s", key)
		assert.False(t, bytes.Contains(kv.Key, []byte(marker)) || bytes.Contains(kv.Value, []byte(marker)), "etcd key %s mentions an imported object", key)
		if key == "/registry/apiregistration.k8s.io/apiservices/"+framework.CatalogAPIService {
			apiService = true
		}
	}
	assert.True(t, apiService, "the group is served through the APIService, which etcd does hold")
	t.Logf("etcd holds %d keys under /registry, none of the catalog's", len(resp.Kvs))
	ext, err := cp.ExtensionsClient()
	require.NoError(t, err)
	crds, err := ext.ApiextensionsV1().CustomResourceDefinitions().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, crd := range crds.Items {
		assert.NotEqual(t, "catalog.kubestash.com", crd.Spec.Group, "CRD %s", crd.Name)
	}
	t.Logf("fresh cluster test done in %v", time.Since(start).Round(time.Millisecond))
}

// TestCatalogRBAC: a user allowed to list snapshots only in namespace A
// sees A's and gets 403 for B's, through kube-apiserver and the catalog
// server's delegated authorization.
func TestCatalogRBAC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const (
		nsA, nsB  = "catalog-rbac-a", "catalog-rbac-b"
		storageNS = "catalog-rbac-storage"
		user      = "catalog-rbac-alice"
	)
	prefix := fmt.Sprintf("catalog-rbac-%d", time.Now().UnixNano())
	createNamespaces(ctx, t, nsA, nsB, storageNS)
	mc, err := env.MinIO.Client()
	require.NoError(t, err)
	a := bucketRepo{Name: "repo-a", Namespace: nsA, Path: "/a/repo", StorageRef: kmapi.ObjectReference{Name: "s3", Namespace: storageNS}, Snapshots: seq("snap-a", 3)}
	b := bucketRepo{Name: "repo-b", Namespace: nsB, Path: "/b/repo", StorageRef: kmapi.ObjectReference{Name: "s3", Namespace: storageNS}, Snapshots: seq("snap-b", 2)}
	putFiles(ctx, t, mc, env.MinIO.Bucket, catalogFiles(t, prefix, a, b))
	applyBackupStorage(ctx, t, env, storageNS, "s3", prefix, "All")
	// Before the first request of the user: the catalog server caches
	// authorization decisions, denials too.
	grantCatalogRole(ctx, t, nsA, user, "snapshot-reader", []string{"snapshots"}, "get", "list", "watch")
	startCatalogServer(t, catalogServerOptions{})

	// The admin sees both namespaces.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.ElementsMatch(c, a.Snapshots, kubectlNames(ctx, c, env, "snapshots", "-n", nsA))
		assert.ElementsMatch(c, b.Snapshots, kubectlNames(ctx, c, env, "snapshots", "-n", nsB))
	}, 30*time.Second, time.Second)

	cfg, err := env.UserConfig(user)
	require.NoError(t, err)
	cs, err := versioned.NewForConfig(cfg)
	require.NoError(t, err)
	var list *catalogv1alpha1.SnapshotList
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		list, err = cs.CatalogV1alpha1().Snapshots(nsA).List(ctx, metav1.ListOptions{})
		assert.NoError(c, err)
	}, 30*time.Second, 500*time.Millisecond, "the user may list in %s", nsA)
	var names []string
	for _, s := range list.Items {
		assert.Equal(t, nsA, s.Namespace)
		names = append(names, s.Name)
	}
	assert.ElementsMatch(t, a.Snapshots, names)
	_, err = cs.CatalogV1alpha1().Snapshots(nsA).Get(ctx, a.Snapshots[0], metav1.GetOptions{})
	assert.NoError(t, err)

	_, err = cs.CatalogV1alpha1().Snapshots(nsB).List(ctx, metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "403 for %s, got %v", nsB, err)
	t.Logf("list in %s: %v", nsB, err)
	_, err = cs.CatalogV1alpha1().Snapshots(nsB).Get(ctx, b.Snapshots[0], metav1.GetOptions{})
	assert.True(t, apierrors.IsForbidden(err), "403 for a snapshot of %s, got %v", nsB, err)
	_, err = cs.CatalogV1alpha1().Snapshots("").List(ctx, metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "403 across namespaces, got %v", err)
	err = cs.CatalogV1alpha1().Snapshots(nsA).Delete(ctx, a.Snapshots[0], metav1.DeleteOptions{})
	assert.True(t, apierrors.IsForbidden(err), "reading is not deleting, got %v", err)
	_, err = cs.CatalogV1alpha1().Repositories(nsA).List(ctx, metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "snapshots only, got %v", err)
}

// TestCatalogUsagePolicyOnRead: a BackupStorage with from: Same in
// namespace A over a bucket that holds catalog files of namespace B serves
// none of B's (nobody can plant snapshots in another namespace by writing
// into a bucket) and all of A's; the planted files stay in the bucket.
func TestCatalogUsagePolicyOnRead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const nsA, nsB = "catalog-usage-a", "catalog-usage-b"
	prefix := fmt.Sprintf("catalog-usage-%d", time.Now().UnixNano())
	createNamespaces(ctx, t, nsA, nsB)
	mc, err := env.MinIO.Client()
	require.NoError(t, err)
	own := bucketRepo{Name: "own", Namespace: nsA, Path: "/own", StorageRef: kmapi.ObjectReference{Name: "same-a", Namespace: nsA}, Snapshots: seq("own", 2)}
	planted := bucketRepo{Name: "planted", Namespace: nsB, Path: "/planted", StorageRef: kmapi.ObjectReference{Name: "same-a", Namespace: nsA}, Snapshots: seq("planted", 3)}
	files := catalogFiles(t, prefix, own, planted)
	putFiles(ctx, t, mc, env.MinIO.Bucket, files)
	applyBackupStorage(ctx, t, env, nsA, "same-a", prefix, "Same")
	srv := startCatalogServer(t, catalogServerOptions{})

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.ElementsMatch(c, own.Snapshots, kubectlNames(ctx, c, env, "snapshots", "-n", nsA))
	}, 30*time.Second, time.Second, "the storage's own namespace is served")
	assert.Equal(t, []string{own.Name}, kubectlNames(ctx, t, env, "repositories", "-n", nsA))
	assert.Empty(t, kubectlNames(ctx, t, env, "snapshots", "-n", nsB), "no snapshot planted for %s is served", nsB)
	assert.Empty(t, kubectlNames(ctx, t, env, "repositories", "-n", nsB))
	for _, name := range kubectlNames(ctx, t, env, "snapshots", "-A") {
		assert.NotContains(t, name, "planted")
	}
	cs, err := versioned.NewForConfig(env.Config)
	require.NoError(t, err)
	_, err = cs.CatalogV1alpha1().Snapshots(nsB).Get(ctx, planted.Snapshots[0], metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "404, got %v", err)

	// Skipped and counted, never deleted.
	rc, err := rest.RESTClientFor(withNegotiation(srv.Config))
	require.NoError(t, err)
	metrics, err := rc.Get().AbsPath("/metrics").DoRaw(ctx)
	require.NoError(t, err)
	assert.Contains(t, string(metrics), `kubestash_catalog_skipped_files_total{reason="admit",resource="snapshots"}`)
	keys := listKeys(ctx, t, mc, env.MinIO.Bucket, prefix+"/")
	assert.Len(t, keys, len(files), "every file is still in the bucket")
}

// requestRecorder records the snapshot requests a client makes.
type requestRecorder struct {
	rt http.RoundTripper
	mu sync.Mutex
	// queries of GET requests for snapshots
	queries []string
}

func (r *requestRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/snapshots") {
		r.mu.Lock()
		r.queries = append(r.queries, req.URL.RawQuery)
		r.mu.Unlock()
	}
	return r.rt.RoundTrip(req)
}

// kinds tells the recorded requests apart: plain lists, watches that
// stream the initial state (WatchList), other watches.
func (r *requestRecorder) kinds() (lists, watchLists, watches int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range r.queries {
		switch {
		case !strings.Contains(q, "watch=true"):
			lists++
		case strings.Contains(q, "sendInitialEvents=true"):
			watchLists++
		default:
			watches++
		}
	}
	return lists, watchLists, watches
}

// watchListGate is client-go's feature gates with WatchListClient set.
type watchListGate struct {
	clientfeatures.Gates
	enabled bool
}

func (g watchListGate) Enabled(f clientfeatures.Feature) bool {
	if f == clientfeatures.WatchListClient {
		return g.enabled
	}
	return g.Gates.Enabled(f)
}

// TestCatalogInformerWatchListModes: an informer from pkg/generated syncs
// and follows changes (through the API and in the bucket) both with
// WatchList (client-go's default: one watch that streams the initial
// state) and without (list, then watch), and the requests show which.
func TestCatalogInformerWatchListModes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const (
		ns   = "catalog-informer"
		repo = "informed"
	)
	prefix := fmt.Sprintf("catalog-informer-%d", time.Now().UnixNano())
	createNamespaces(ctx, t, ns)
	mc, err := env.MinIO.Client()
	require.NoError(t, err)
	r := bucketRepo{Name: repo, Namespace: ns, Path: "/" + repo, StorageRef: kmapi.ObjectReference{Name: "s3", Namespace: ns}, Snapshots: seq("existing", 3)}
	putFiles(ctx, t, mc, env.MinIO.Bucket, catalogFiles(t, prefix, r))
	applyBackupStorage(ctx, t, env, ns, "s3", prefix, "Same")
	startCatalogServer(t, catalogServerOptions{})
	admin, err := versioned.NewForConfig(env.Config)
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		list, err := admin.CatalogV1alpha1().Snapshots(ns).List(ctx, metav1.ListOptions{})
		if assert.NoError(c, err) {
			assert.Len(c, list.Items, 3)
		}
	}, 30*time.Second, 500*time.Millisecond)

	for _, watchList := range []bool{true, false} {
		t.Run(fmt.Sprintf("WatchListClient=%v", watchList), func(t *testing.T) {
			// client-go reads the gate when a reflector is made, which is
			// when the informer starts; it warns that the gates were
			// replaced after use, which is what this test means to do.
			prev := clientfeatures.FeatureGates()
			clientfeatures.ReplaceFeatureGates(watchListGate{Gates: prev, enabled: watchList})
			defer clientfeatures.ReplaceFeatureGates(prev)

			rec := &requestRecorder{}
			cfg := rest.CopyConfig(env.Config)
			cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { rec.rt = rt; return rec })
			cs, err := versioned.NewForConfig(cfg)
			require.NoError(t, err)
			ictx, icancel := context.WithCancel(ctx)
			defer icancel()
			factory := externalversions.NewSharedInformerFactoryWithOptions(cs, 0, externalversions.WithNamespace(ns))
			inf := factory.Catalog().V1alpha1().Snapshots()
			informer, lister := inf.Informer(), inf.Lister()
			factory.Start(ictx.Done())
			require.True(t, cache.WaitForCacheSync(ictx.Done(), informer.HasSynced))
			for _, name := range r.Snapshots {
				_, err := lister.Snapshots(ns).Get(name)
				assert.NoError(t, err, name)
			}

			suffix := map[bool]string{true: "wl", false: "nowl"}[watchList]
			// A change through the API.
			name := "created-" + suffix
			_, err = admin.CatalogV1alpha1().Snapshots(ns).Create(ctx, &catalogv1alpha1.Snapshot{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Spec:       catalogv1alpha1.SnapshotSpec{Repository: repo},
			}, metav1.CreateOptions{})
			require.NoError(t, err)
			require.Eventually(t, func() bool { _, err := lister.Snapshots(ns).Get(name); return err == nil }, 10*time.Second, 100*time.Millisecond)
			_, err = admin.CatalogV1alpha1().Snapshots(ns).Patch(ctx, name, types.MergePatchType, []byte(`{"status":{"phase":"Succeeded"}}`), metav1.PatchOptions{}, "status")
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				s, err := lister.Snapshots(ns).Get(name)
				return err == nil && s.Status.Phase == catalogv1alpha1.SnapshotSucceeded
			}, 10*time.Second, 100*time.Millisecond)

			// A change in the bucket, found by the server's poll.
			written := "written-" + suffix
			files := catalogFiles(t, prefix, bucketRepo{Name: repo, Namespace: ns, Path: r.Path, Snapshots: []string{written}})
			key, err := layout.Key(layout.KindSnapshot, r.Path, written)
			require.NoError(t, err)
			putFiles(ctx, t, mc, env.MinIO.Bucket, map[string][]byte{prefix + "/" + key: files[prefix+"/"+key]})
			require.Eventually(t, func() bool { _, err := lister.Snapshots(ns).Get(written); return err == nil }, 15*time.Second, 100*time.Millisecond)

			require.NoError(t, admin.CatalogV1alpha1().Snapshots(ns).Delete(ctx, name, metav1.DeleteOptions{}))
			require.Eventually(t, func() bool {
				_, err := lister.Snapshots(ns).Get(name)
				return apierrors.IsNotFound(err)
			}, 10*time.Second, 100*time.Millisecond)

			lists, watchLists, watches := rec.kinds()
			t.Logf("requests: %d lists, %d watch-lists, %d watches", lists, watchLists, watches)
			if watchList {
				assert.Zero(t, lists, "WatchList: no list request")
				assert.Positive(t, watchLists, "WatchList: a watch with sendInitialEvents=true")
			} else {
				assert.Positive(t, lists, "without WatchList: a list")
				assert.Zero(t, watchLists, "without WatchList: no sendInitialEvents")
				assert.Positive(t, watches, "without WatchList: then a watch")
			}
		})
	}
}

package e2e

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"kubestash.dev/kubestash/pkg/apis/kmapi"
)

const (
	benchObjects   = 10000
	benchRepos     = 10
	benchNamespace = "catalog-bench"
	benchCRDGroup  = "bench.kubestash.dev"
)

var gvrBenchSnapshot = schema.GroupVersionResource{Group: benchCRDGroup, Version: "v1alpha1", Resource: "snapshots"}

// BenchmarkCatalogVsCRD lists the same 10,000 Snapshots through
// kube-apiserver twice: served by the catalog server from MinIO, and
// stored as a custom resource (a throwaway CRD whose schema preserves
// unknown fields) in kube-apiserver's etcd. Both are full lists without
// paging by the same dynamic client (JSON into unstructured objects), one
// of each per iteration; the metrics are the mean latency of each and
// their ratio (the goal is catalog/crd <= 1).
//
//	go test -run '^$' -bench CatalogVsCRD -benchtime 10x ./test/e2e/
//
// Filling the bucket takes seconds, creating the custom resources a minute
// or two: both happen once, before the clock starts.
func BenchmarkCatalogVsCRD(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	prefix := fmt.Sprintf("catalog-bench-%d", time.Now().UnixNano())
	storageNS := benchNamespace + "-storage"
	for _, ns := range []string{benchNamespace, storageNS} {
		_, _, err := env.Kubectl(ctx, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n", "apply", "-f", "-")
		require.NoError(b, err)
	}
	b.Cleanup(func() {
		for _, ns := range []string{benchNamespace, storageNS} {
			_ = env.KubeClient.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		}
	})

	// The same objects for both: benchRepos repositories of
	// benchObjects/benchRepos snapshots each.
	repos := make([]bucketRepo, benchRepos)
	for i := range repos {
		name := fmt.Sprintf("repo-%02d", i)
		repos[i] = bucketRepo{Name: name, Namespace: benchNamespace, Path: "/bench/" + name,
			StorageRef: kmapi.ObjectReference{Name: "bench", Namespace: storageNS}, Snapshots: seq(name+"-snap", benchObjects/benchRepos)}
	}

	start := time.Now()
	mc, err := env.MinIO.Client()
	require.NoError(b, err)
	putFiles(ctx, b, mc, env.MinIO.Bucket, catalogFiles(b, prefix, repos...))
	b.Logf("wrote %d snapshot files into the bucket in %v", benchObjects, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	fillCRD(ctx, b, repos)
	b.Logf("created %d custom resources in %v", benchObjects, time.Since(start).Round(time.Millisecond))

	applyBackupStorage(ctx, b, env, storageNS, "bench", prefix, "All")
	// Polls would compete with the lists for the two cores; the index is
	// built at start.
	srv := startCatalogServer(b, catalogServerOptions{PollInterval: 10 * time.Minute})
	b.Logf("catalog server: %s (pprof at %s/debug/pprof/ with the admin client)", srv.URL, srv.URL)

	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = -1, 0
	cfg.Timeout = 2 * time.Minute
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(b, err)
	catalogList := func() (int, error) {
		l, err := dyn.Resource(gvrSnapshot).Namespace(benchNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return 0, err
		}
		return len(l.Items), nil
	}
	crdList := func() (int, error) {
		l, err := dyn.Resource(gvrBenchSnapshot).Namespace(benchNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return 0, err
		}
		return len(l.Items), nil
	}
	// Both complete, and warm (the watch cache of the CRD, connections).
	require.NoError(b, wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(context.Context) (bool, error) {
		n, err := catalogList()
		return err == nil && n == benchObjects, nil
	}), "the catalog lists all %d", benchObjects)
	n, err := crdList()
	require.NoError(b, err)
	require.Equal(b, benchObjects, n)

	b.Run(fmt.Sprintf("list-%d", benchObjects), func(b *testing.B) {
		var catalogTimes, crdTimes []time.Duration
		type timedList struct {
			list  func() (int, error)
			times *[]time.Duration
		}
		catalogRun, crdRun := timedList{catalogList, &catalogTimes}, timedList{crdList, &crdTimes}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			// Alternate which goes first, so that neither always finds
			// the other's garbage to collect.
			order := []timedList{catalogRun, crdRun}
			if i%2 == 1 {
				order = []timedList{crdRun, catalogRun}
			}
			for _, l := range order {
				t0 := time.Now()
				n, err := l.list()
				*l.times = append(*l.times, time.Since(t0))
				require.NoError(b, err)
				require.Equal(b, benchObjects, n)
			}
		}
		b.StopTimer()
		cat, crd := mean(catalogTimes), mean(crdTimes)
		b.ReportMetric(0, "ns/op") // the sum of both: meaningless
		b.ReportMetric(float64(cat.Microseconds())/1000, "catalog-ms/list")
		b.ReportMetric(float64(crd.Microseconds())/1000, "crd-ms/list")
		b.ReportMetric(float64(cat)/float64(crd), "catalog/crd")
		b.Logf("%d lists of %d: catalog mean %v median %v; CRD mean %v median %v; ratio %.2f",
			b.N, benchObjects, cat.Round(time.Millisecond), median(catalogTimes).Round(time.Millisecond),
			crd.Round(time.Millisecond), median(crdTimes).Round(time.Millisecond), float64(cat)/float64(crd))
	})
}

// fillCRD installs the throwaway CRD and creates the snapshots of repos as
// its custom resources, in parallel; the CRD (and with it every object) is
// deleted at cleanup.
func fillCRD(ctx context.Context, b *testing.B, repos []bucketRepo) {
	b.Helper()
	ext, err := env.ExtensionsClient()
	require.NoError(b, err)
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: gvrBenchSnapshot.Resource + "." + benchCRDGroup},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: benchCRDGroup,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "snapshots", Singular: "snapshot", Kind: "Snapshot", ListKind: "SnapshotList"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1alpha1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true),
				}},
			}},
		},
	}
	_, err = ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{})
	require.NoError(b, err)
	b.Cleanup(func() {
		_ = ext.ApiextensionsV1().CustomResourceDefinitions().Delete(context.Background(), crd.Name, metav1.DeleteOptions{})
	})
	require.NoError(b, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		cur, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, c := range cur.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	}))

	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = -1, 0
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(b, err)
	client := dyn.Resource(gvrBenchSnapshot).Namespace(benchNamespace)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for _, r := range repos {
		for i, name := range r.Snapshots {
			g.Go(func() error {
				obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(snapshotObject(r, i, name))
				if err != nil {
					return err
				}
				u := &unstructured.Unstructured{Object: obj}
				u.SetAPIVersion(gvrBenchSnapshot.GroupVersion().String())
				u.SetKind("Snapshot")
				// The server sets these; a catalog object has them from
				// its file.
				u.SetCreationTimestamp(metav1.Time{})
				for attempt := 0; ; attempt++ {
					_, err = client.Create(gctx, u, metav1.CreateOptions{})
					if err == nil || apierrors.IsAlreadyExists(err) {
						return nil
					}
					// The CRD's endpoint can answer 404 or 429 for a moment
					// after it is Established, and under load.
					if attempt < 20 && (apierrors.IsNotFound(err) || apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err)) {
						time.Sleep(200 * time.Millisecond)
						continue
					}
					return fmt.Errorf("create %s: %w", name, err)
				}
			})
		}
	}
	require.NoError(b, g.Wait())
}

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

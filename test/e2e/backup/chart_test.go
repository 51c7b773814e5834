package backup

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/generated/informers/externalversions"
	"kubestash.dev/kubestash/test/framework"
)

// TestChartLifecycle: what an administrator does to the installed chart
// keeps every backup and keeps the catalog served. A helm upgrade to a new
// image tag rolls both Deployments while kubectl keeps answering; two
// catalog server replicas both serve, lose no update, and a watch outlives
// the replica it was on; helm uninstall removes the APIService first and
// leaves every file in the bucket, and installing again serves every
// Snapshot at once.
func TestChartLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	const ns = "chart-life"
	e := newFailEnv(ctx, t, failOptions{NS: ns, BC: "pvc-backup", Directory: "/life"})
	podLogsOnFailure(t, ns)
	// Whatever happens, the tests after this one get the usual release.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := release.Upgrade(ctx); err != nil {
			t.Errorf("back to the usual release: %v", err)
		}
	})

	t.Run("upgrade to a new image tag", func(t *testing.T) {
		next := env.Version() + "-next"
		// The new release's images, as a push would bring them.
		for _, c := range []string{"apiserver", "controller", "agent"} {
			require.NoError(t, env.Node.TagImage(ctx, chartImage(c, env.Version()), chartImage(c, next)))
		}
		old := podNames(ctx, t, "")
		loop := startKubectlLoop(ctx, t, ns)
		require.NoError(t, release.Upgrade(ctx, "apiserver.image.tag="+next, "controller.image.tag="+next, "agent.image.tag="+next))
		// Until the old pods are gone (the catalog server keeps serving
		// for its shutdown delay after SIGTERM), and a little after.
		require.Eventually(t, func() bool {
			return !slices.ContainsFunc(podNames(ctx, t, ""), func(n string) bool { return slices.Contains(old, n) })
		}, 2*time.Minute, 500*time.Millisecond, "the old pods go")
		time.Sleep(2 * time.Second)
		ok, failures := loop.stop()
		t.Logf("kubectl get snapshots through the roll: %d answered, %d failed", ok, len(failures))
		assert.Empty(t, failures, "kubectl saw errors while the chart rolled")
		assert.GreaterOrEqual(t, ok, 10, "kubectl ran through the roll")
		for _, c := range framework.ChartComponents {
			pods, err := release.Pods(ctx, c)
			require.NoError(t, err)
			require.NotEmpty(t, pods)
			for _, p := range pods {
				assert.Equal(t, chartImage(c, next), p.Spec.Containers[0].Image, "pod %s", p.Name)
			}
		}
		// The new controller runs the new agent.
		session := e.sessionName(1)
		e.backupNow(session)
		require.Equal(t, catalogv1alpha1.BackupSessionSucceeded, e.waitSession(session))
		pods, err := env.KubeClient.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + session})
		require.NoError(t, err)
		require.NotEmpty(t, pods.Items, "the backup's pod")
		assert.Equal(t, chartImage("agent", next), pods.Items[0].Spec.Containers[0].Image)
	})

	t.Run("two catalog server replicas", func(t *testing.T) {
		require.NoError(t, release.Upgrade(ctx, "apiserver.replicas=2"))
		_, err := env.KubeClient.PolicyV1().PodDisruptionBudgets(release.Namespace).Get(ctx, release.DeploymentName("apiserver"), metav1.GetOptions{})
		require.NoError(t, err, "a PodDisruptionBudget keeps one replica through drains")
		// The replicas of the previous release serve out their shutdown
		// delay over the connections kube-apiserver holds: wait them out.
		var pods []corev1.Pod
		require.Eventually(t, func() bool {
			pods = livePods(ctx, t, "apiserver")
			return len(pods) == 2 && len(podNames(ctx, t, "apiserver")) == 2
		}, 2*time.Minute, 500*time.Millisecond, "two replicas run, and no other")
		direct := make([]versioned.Interface, 2)
		metrics := make([]kubernetes.Interface, 2)
		for i := range pods {
			cfg, err := release.DirectConfig(ctx, &pods[i], "chart-e2e", "system:masters", "system:authenticated")
			require.NoError(t, err)
			direct[i], err = versioned.NewForConfig(cfg)
			require.NoError(t, err)
			metrics[i], err = kubernetes.NewForConfig(cfg)
			require.NoError(t, err)
		}

		// Both serve the same catalog.
		want := snapshotNames(ctx, t, e.client, ns)
		for i, c := range direct {
			assert.Equal(t, want, snapshotNames(ctx, t, c, ns), "replica %s", pods[i].Name)
		}

		// Two writers of one Repository, one through each replica, from
		// the same version: the second is refused (If-Match), nothing is
		// lost, and the other replica sees the winner.
		repos := direct[0].CatalogV1alpha1().Repositories(ns)
		a, err := repos.Get(ctx, failRepo, metav1.GetOptions{})
		require.NoError(t, err)
		b, err := direct[1].CatalogV1alpha1().Repositories(ns).Get(ctx, failRepo, metav1.GetOptions{})
		require.NoError(t, err)
		a.Labels = map[string]string{"written-by": "a"}
		_, err = repos.Update(ctx, a, metav1.UpdateOptions{})
		require.NoError(t, err)
		b.Labels = map[string]string{"written-by": "b"}
		_, err = direct[1].CatalogV1alpha1().Repositories(ns).Update(ctx, b, metav1.UpdateOptions{})
		require.True(t, apierrors.IsConflict(err), "the second writer gets 409 Conflict, got %v", err)
		file := readObject(ctx, t, ns+"/life/repository.yaml")
		assert.Contains(t, file, "written-by: a", "the bucket holds the first write")
		assert.NotContains(t, file, "written-by: b")
		require.Eventually(t, func() bool {
			r, err := direct[1].CatalogV1alpha1().Repositories(ns).Get(ctx, failRepo, metav1.GetOptions{})
			return err == nil && r.Labels["written-by"] == "a"
		}, time.Minute, 500*time.Millisecond, "the other replica serves the write after its poll")

		// The Service is sticky: all of kube-apiserver's requests go to one
		// replica, so a client never mixes two replicas' resourceVersions.
		before := []int{repositoryGets(ctx, t, metrics[0]), repositoryGets(ctx, t, metrics[1])}
		for range 20 {
			_, err := e.client.CatalogV1alpha1().Repositories(ns).Get(ctx, failRepo, metav1.GetOptions{})
			require.NoError(t, err)
		}
		served := -1
		for i := range pods {
			d := repositoryGets(ctx, t, metrics[i]) - before[i]
			t.Logf("replica %s served %d of the 20 GETs through kube-apiserver", pods[i].Name, d)
			switch d {
			case 0:
			case 20:
				served = i
			default:
				t.Errorf("replica %s served %d of 20 GETs: the Service is not sticky", pods[i].Name, d)
			}
		}
		require.GreaterOrEqual(t, served, 0, "one replica served every GET")

		// A watch through the APIService outlives the replica serving it:
		// the informer relists (410) on the other one and sees what comes
		// after.
		inf := externalversions.NewSharedInformerFactoryWithOptions(e.client, 0, externalversions.WithNamespace(ns))
		var mu sync.Mutex
		seen := map[string]bool{}
		_, err = inf.Catalog().V1alpha1().Snapshots().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) {
				mu.Lock()
				defer mu.Unlock()
				seen[obj.(*catalogv1alpha1.Snapshot).Name] = true
			},
		})
		require.NoError(t, err)
		stop := make(chan struct{})
		defer close(stop)
		inf.Start(stop)
		inf.WaitForCacheSync(stop)
		require.NoError(t, env.KubeClient.CoreV1().Pods(release.Namespace).Delete(ctx, pods[served].Name, metav1.DeleteOptions{}))
		session := e.sessionName(2)
		e.backupNow(session)
		require.Equal(t, catalogv1alpha1.BackupSessionSucceeded, e.waitSession(session))
		snap := catalogv1alpha1.GenerateSnapshotName(failRepo, session)
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return seen[snap]
		}, 2*time.Minute, 500*time.Millisecond, "the watch sees Snapshot %s after replica %s was deleted", snap, pods[served].Name)
	})

	t.Run("uninstall and install again", func(t *testing.T) {
		files := bucketFiles(ctx, t, ns+"/")
		snaps := snapshotNames(ctx, t, e.client, ns)
		require.NotEmpty(t, snaps)
		deletions := watchDeletions(ctx, t)
		require.NoError(t, release.Uninstall(ctx))
		order := deletions()
		t.Logf("helm uninstall deleted, in order: %s", strings.Join(order, ", "))
		require.NotEmpty(t, order)
		assert.Equal(t, "APIService/"+framework.CatalogAPIService, order[0], "the APIService goes first: discovery never points at a missing server")
		_, err := env.KubeClient.Discovery().ServerResourcesForGroupVersion("catalog.kubestash.com/v1alpha1")
		assert.True(t, apierrors.IsNotFound(err), "the catalog group left discovery: %v", err)
		groups, err := env.KubeClient.Discovery().ServerGroups()
		require.NoError(t, err, "discovery works without the catalog")
		for _, g := range groups.Groups {
			assert.NotEqual(t, "catalog.kubestash.com", g.Name)
		}
		assert.Equal(t, files, bucketFiles(ctx, t, ns+"/"), "every file in the bucket is left as it was")
		_, _, err = env.Kubectl(ctx, "", "get", "backupconfiguration", "-n", ns, "pvc-backup")
		assert.NoError(t, err, "the CRDs and their objects stay (helm never deletes crds/)")

		old := release
		old.StopLogs()
		release, err = install(ctx, env)
		require.NoError(t, err)
		// At once: no sync step, the first list after install has them all.
		assert.Equal(t, snaps, snapshotNames(ctx, t, e.client, ns), "installing again serves every Snapshot at once")
	})
}

// chartImage is our image of a component at tag.
func chartImage(component, tag string) string {
	return "ghcr.io/kubestash-catalog/" + component + ":" + tag
}

// podNames lists the release's pods of a component (all: empty).
func podNames(ctx context.Context, t *testing.T, component string) []string {
	pods, err := release.Pods(ctx, component)
	require.NoError(t, err)
	var names []string
	for _, p := range pods {
		names = append(names, p.Name)
	}
	return names
}

// livePods lists the running, not terminating, pods of a component.
func livePods(ctx context.Context, t *testing.T, component string) []corev1.Pod {
	pods, err := release.Pods(ctx, component)
	require.NoError(t, err)
	var live []corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			live = append(live, p)
		}
	}
	return live
}

func snapshotNames(ctx context.Context, t *testing.T, c versioned.Interface, ns string) []string {
	t.Helper()
	l, err := c.CatalogV1alpha1().Snapshots(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var names []string
	for _, s := range l.Items {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	return names
}

// repositoryGets is how many GETs of repositories a catalog server has
// answered (its apiserver_request_total).
func repositoryGets(ctx context.Context, t *testing.T, c kubernetes.Interface) int {
	t.Helper()
	b, err := c.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	require.NoError(t, err)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "apiserver_request_total{") && strings.Contains(l, `resource="repositories"`) && strings.Contains(l, `verb="GET"`) {
			var v float64
			f := strings.Fields(l)
			_, err := fmt.Sscan(f[len(f)-1], &v)
			require.NoError(t, err, l)
			n += int(v)
		}
	}
	return n
}

// bucketFiles maps every object under prefix to its ETag.
func bucketFiles(ctx context.Context, t *testing.T, prefix string) map[string]string {
	t.Helper()
	mc, err := env.MinIO.Client()
	require.NoError(t, err)
	files := map[string]string{}
	for o := range mc.ListObjects(ctx, env.MinIO.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		require.NoError(t, o.Err)
		files[o.Key] = o.ETag
	}
	require.NotEmpty(t, files, "objects under %s", prefix)
	return files
}

func readObject(ctx context.Context, t *testing.T, key string) string {
	t.Helper()
	mc, err := env.MinIO.Client()
	require.NoError(t, err)
	obj, err := mc.GetObject(ctx, env.MinIO.Bucket, key, minio.GetObjectOptions{})
	require.NoError(t, err)
	defer obj.Close()
	b, err := io.ReadAll(obj)
	require.NoError(t, err, key)
	return string(b)
}

// watchDeletions records, in order, the deletions of the APIService and
// of the release's Deployments, Services and ServiceAccounts, until the
// returned function is called.
func watchDeletions(ctx context.Context, t *testing.T) func() []string {
	t.Helper()
	dyn, err := dynamic.NewForConfig(env.Config)
	require.NoError(t, err)
	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	wctx, cancel := context.WithCancel(ctx)
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release.Name}
	for _, w := range []struct {
		kind string
		gvr  schema.GroupVersionResource
		ns   string
		opts metav1.ListOptions
	}{
		{"APIService", schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}, "", metav1.ListOptions{FieldSelector: "metadata.name=" + framework.CatalogAPIService}},
		{"Deployment", schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, release.Namespace, sel},
		{"Service", schema.GroupVersionResource{Version: "v1", Resource: "services"}, release.Namespace, sel},
		{"ServiceAccount", schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, release.Namespace, sel},
	} {
		wi, err := dyn.Resource(w.gvr).Namespace(w.ns).Watch(wctx, w.opts)
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer wi.Stop()
			for ev := range wi.ResultChan() {
				if ev.Type != watch.Deleted {
					continue
				}
				o, ok := ev.Object.(interface{ GetName() string })
				if !ok {
					continue
				}
				mu.Lock()
				order = append(order, w.kind+"/"+o.GetName())
				mu.Unlock()
			}
		}()
	}
	return func() []string {
		// Deletion events trail the deletes a little.
		time.Sleep(2 * time.Second)
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(order)
	}
}

// kubectlLoop runs `kubectl get snapshots` over and over, each time with
// an empty discovery cache, and counts the answers and the failures (any
// error or anything on stderr, such as a discovery error).
type kubectlLoop struct {
	cancel   context.CancelFunc
	done     chan struct{}
	ok       int
	failures []string
}

func startKubectlLoop(ctx context.Context, t *testing.T, ns string) *kubectlLoop {
	t.Helper()
	root, err := framework.RepoRoot()
	require.NoError(t, err)
	dir := t.TempDir()
	lctx, cancel := context.WithCancel(ctx)
	l := &kubectlLoop{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for i := 0; lctx.Err() == nil; i++ {
			cmd := exec.CommandContext(lctx, filepath.Join(root, "bin", "kubectl"), "--kubeconfig", env.Kubeconfig,
				"--cache-dir", filepath.Join(dir, fmt.Sprint(i)), "get", "snapshots", "-n", ns, "-o", "name")
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			if lctx.Err() != nil {
				return
			}
			if err != nil || errb.Len() > 0 || !strings.Contains(out.String(), "snapshot.catalog.kubestash.com/") {
				l.failures = append(l.failures, fmt.Sprintf("%s: %v: %s%s", time.Now().Format("15:04:05.000"), err, errb.String(), out.String()))
				continue
			}
			l.ok++
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return l
}

func (l *kubectlLoop) stop() (int, []string) {
	l.cancel()
	<-l.done
	return l.ok, l.failures
}

package backup

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/restic/restictest"
)

// BenchmarkIdleController counts the API requests the controller makes per
// minute while nothing happens: 50 BackupConfigurations (KUBESTASH_IDLE_CONFIGS
// overrides), each after its initial backup, the controller restarted with
// the production resync (30s). The figure is the counter
// kubestash_controller_api_requests_total of its /metrics, over a window of
// two minutes per iteration, after a minute for the start-up lists:
//
//	go test ./test/e2e/backup -run '^$' -bench BenchmarkIdleController -benchtime 1x -timeout 40m
func BenchmarkIdleController(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Minute)
	defer cancel()
	require.NoError(b, startSystem(ctx))
	logsOnFailure(b)
	n := 50
	if v := os.Getenv("KUBESTASH_IDLE_CONFIGS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err)
	}
	const ns = "idle-bench"
	client, err := versioned.NewForConfig(env.Config)
	require.NoError(b, err)
	_, err = env.KubeClient.CoreV1().Namespaces().Create(ctx, tenantNamespace(ns), metav1.CreateOptions{})
	require.NoError(b, err)
	data := b.TempDir()
	_, err = restictest.Generate(data, restictest.Dataset{SmallFiles: 5, SmallMax: 1 << 10, Seed: 3})
	require.NoError(b, err)
	pvClaim(ctx, b, ns, "target-pvc", data)

	m := env.MinIO
	var manifest strings.Builder
	fmt.Fprintf(&manifest, `apiVersion: v1
kind: Secret
metadata: {name: s3-secret, namespace: %[1]s}
stringData: {AWS_ACCESS_KEY_ID: %[2]s, AWS_SECRET_ACCESS_KEY: %[3]s}
---
apiVersion: v1
kind: Secret
metadata: {name: encrypt-secret, namespace: %[1]s}
stringData: {RESTIC_PASSWORD: idle-bench}
---
apiVersion: storage.kubestash.com/v1alpha1
kind: BackupStorage
metadata: {name: s3-storage, namespace: %[1]s}
spec:
  storage:
    provider: s3
    s3: {endpoint: %[4]s, bucket: %[5]s, region: us-east-1, prefix: %[1]s, secretName: s3-secret}
---
apiVersion: storage.kubestash.com/v1alpha1
kind: RetentionPolicy
metadata: {name: keep, namespace: %[1]s}
spec:
  successfulSnapshots: {last: 5}
`, ns, m.AccessKey, m.SecretKey, m.Endpoint, m.Bucket)
	for i := range n {
		fmt.Fprintf(&manifest, `---
apiVersion: core.kubestash.com/v1alpha1
kind: BackupConfiguration
metadata: {name: bc-%02[2]d, namespace: %[1]s}
spec:
  target: {apiGroup: "", kind: PersistentVolumeClaim, name: target-pvc, namespace: %[1]s}
  backends:
  - name: s3
    storageRef: {name: s3-storage}
    retentionPolicy: {name: keep}
  sessions:
  - name: daily
    scheduler: {schedule: "0 0 1 1 *"}
    repositories:
    - name: repo-%02[2]d
      backend: s3
      directory: /idle/bc-%02[2]d
      encryptionSecret: {name: encrypt-secret}
    addon:
      name: pvc-addon
      tasks:
      - name: logical-backup
`, ns, i)
	}
	_, _, err = env.Kubectl(ctx, manifest.String(), "apply", "-f", "-")
	require.NoError(b, err)
	start := time.Now()
	require.Eventually(b, func() bool {
		l, err := client.CatalogV1alpha1().BackupSessions(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		done := 0
		for _, s := range l.Items {
			if s.Status.Phase == catalogv1alpha1.BackupSessionSucceeded {
				done++
			}
		}
		return done == n
	}, 25*time.Minute, 5*time.Second, "the %d initial backups succeed", n)
	benchLog("%d configurations: initial backups done in %s", n, time.Since(start).Round(time.Second))

	addr := restartController(b, "controller.resync=30s")
	time.Sleep(time.Minute) // start-up lists and the first resync
	before := scrapeRequests(b, addr)
	const window = 2 * time.Minute
	b.ResetTimer()
	for range b.N {
		time.Sleep(window)
	}
	b.StopTimer()
	after := scrapeRequests(b, addr)
	minutes := float64(b.N) * window.Minutes()
	var total float64
	type row struct {
		key string
		n   float64
	}
	var rows []row
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			total += d
			rows = append(rows, row{k, d / minutes})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].n > rows[j].n })
	benchLog("idle controller, %d BackupConfigurations, resync 30s: %.1f API requests per minute", n, total/minutes)
	for _, r := range rows {
		benchLog("  %7.1f/min  %s", r.n, r.key)
	}
	b.ReportMetric(total/minutes, "requests/min")
}

// scrapeRequests reads kubestash_controller_api_requests_total from the
// controller's /metrics: "verb group/resource" -> count.
func scrapeRequests(t testing.TB, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	const name = "kubestash_controller_api_requests_total{"
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		labels, value, ok := strings.Cut(strings.TrimPrefix(line, name), "} ")
		if !ok {
			continue
		}
		l := map[string]string{}
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			l[k] = strings.Trim(v, `"`)
		}
		v, err := strconv.ParseFloat(value, 64)
		require.NoError(t, err)
		out[l["verb"]+" "+strings.TrimPrefix(l["group"]+"/"+l["resource"], "/")] += v
	}
	require.NoError(t, sc.Err())
	return out
}

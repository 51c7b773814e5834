// The whole-system benchmark (issue item 7). Run it alone; one iteration
// takes several minutes on two cores:
//
//	go test -run '^$' -bench BackupRestore -benchtime 1x -timeout 40m ./test/e2e/backup/
//
// KUBESTASH_BENCH_SMALL=1 uses a dataset a tenth of the size, to try the
// benchmark itself out. A plain `go test ./test/e2e/backup` runs no
// benchmark.

package backup

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	"kubestash.dev/kubestash/pkg/controller/backupconfiguration"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/generated/informers/externalversions"
	"kubestash.dev/kubestash/pkg/restic/restictest"
)

// benchDataset is about 500 MB: 6,000 files of 0-64 KiB (about 190 MiB)
// in 120 folders two levels deep, three files of 100 MiB, and a few
// symlinks and empty folders; random, incompressible content.
var benchDataset = restictest.Dataset{SmallFiles: 6000, SmallMax: 64 << 10, LargeFiles: 3, LargeSize: 100 << 20, Seed: 500}

// smallBenchDataset is a tenth of it, to try the benchmark out.
var smallBenchDataset = restictest.Dataset{SmallFiles: 600, SmallMax: 64 << 10, LargeFiles: 3, LargeSize: 10 << 20, Seed: 500}

// bigFileDataset is one file of 1 GiB (and a few small ones): the memory
// case of downloads.
var bigFileDataset = restictest.Dataset{SmallFiles: 10, SmallMax: 1 << 10, LargeFiles: 1, LargeSize: 1 << 30, Seed: 7}

// What the agent passes to restic (pkg/restic, pkg/agent): the pvc-addon
// enables the cache in the Pod's scratch folder, and every backup carries
// the same --host.
const (
	benchHost      = "host-0"
	benchRetryLock = "1m0s"
	benchPassword  = "bench-password"
)

// BenchmarkBackupRestore backs up and restores a mixed dataset of about
// 500 MB through the whole system (BackupSession creation to Succeeded,
// RestoreSession creation to Succeeded) and with the same restic binary run
// by hand on the same data against the same MinIO, and reports both times,
// their ratios, files per second and the peak memory of the agent and of
// restic.
func BenchmarkBackupRestore(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 38*time.Minute)
	defer cancel()
	require.NoError(b, startSystem(ctx))
	logsOnFailure(b)
	client, err := versioned.NewForConfig(env.Config)
	require.NoError(b, err)

	ds := benchDataset
	if os.Getenv("KUBESTASH_BENCH_SMALL") != "" {
		ds = smallBenchDataset
	}
	work := b.TempDir()
	stage := filepath.Join(work, "data")
	genStart := time.Now()
	st, err := restictest.Generate(stage, ds)
	require.NoError(b, err)
	want, err := restictest.Digest(stage)
	require.NoError(b, err)
	benchLog("dataset: %d regular files, %.1f MB (%.1f MiB), generated in %s", st.Files, float64(st.Bytes)/1e6, mib(st.Bytes), time.Since(genStart).Round(time.Millisecond))

	var sum benchResult
	b.ResetTimer()
	for i := range b.N {
		sum.add(benchOnce(ctx, b, client, i, work, stage, want))
	}
	b.StopTimer()
	sum.report(b, b.N)
}

// benchResult holds one iteration's figures; add sums them.
type benchResult struct {
	files, bytes int64
	// End to end through the system, and restic by hand.
	backup, handBackup, handInit    time.Duration
	restore, handRestore            time.Duration
	sysResticBackup, checkStats     time.Duration
	backupPre, backupPost           time.Duration
	sysResticRestore                time.Duration
	restorePre, restorePost         time.Duration
	agentKiB, resticKiB, handKiB    int64
	rAgentKiB, rResticKiB, rHandKiB int64
	// From the session's creation to the agent's container starting.
	containerStart, rContainerStart time.Duration
	// The node's daemons' peak resident memory after the run.
	kubeletKiB, containerdKiB int64
}

func (r *benchResult) add(o benchResult) {
	r.files += o.files
	r.bytes += o.bytes
	r.backup += o.backup
	r.handBackup += o.handBackup
	r.handInit += o.handInit
	r.restore += o.restore
	r.handRestore += o.handRestore
	r.sysResticBackup += o.sysResticBackup
	r.checkStats += o.checkStats
	r.backupPre += o.backupPre
	r.backupPost += o.backupPost
	r.sysResticRestore += o.sysResticRestore
	r.restorePre += o.restorePre
	r.restorePost += o.restorePost
	r.containerStart += o.containerStart
	r.rContainerStart += o.rContainerStart
	r.kubeletKiB = max(r.kubeletKiB, o.kubeletKiB)
	r.containerdKiB = max(r.containerdKiB, o.containerdKiB)
	// Peaks are the highest of all iterations.
	r.agentKiB = max(r.agentKiB, o.agentKiB)
	r.resticKiB = max(r.resticKiB, o.resticKiB)
	r.handKiB = max(r.handKiB, o.handKiB)
	r.rAgentKiB = max(r.rAgentKiB, o.rAgentKiB)
	r.rResticKiB = max(r.rResticKiB, o.rResticKiB)
	r.rHandKiB = max(r.rHandKiB, o.rHandKiB)
}

func (r *benchResult) report(b *testing.B, n int) {
	avg := func(d time.Duration) float64 { return d.Seconds() / float64(n) }
	ratio := func(a, b time.Duration) float64 { return a.Seconds() / b.Seconds() }
	// What the system adds around its own restic process: orchestration,
	// check and stats. Unlike restic's own run time, which varies by tens
	// of percent from run to run on a shared machine, it is steady.
	backupOverhead, restoreOverhead := r.backup-r.sysResticBackup, r.restore-r.sysResticRestore
	b.ReportMetric(0, "ns/op") // the loop's own time means nothing here
	b.ReportMetric(avg(r.backup), "backup_s")
	b.ReportMetric(avg(r.handBackup), "restic_backup_s")
	b.ReportMetric(ratio(r.backup, r.handBackup), "backup_ratio")
	b.ReportMetric(avg(r.restore), "restore_s")
	b.ReportMetric(avg(r.handRestore), "restic_restore_s")
	b.ReportMetric(ratio(r.restore, r.handRestore), "restore_ratio")
	b.ReportMetric(float64(r.files)/r.backup.Seconds(), "files_per_s")
	b.ReportMetric(float64(r.files)/r.restore.Seconds(), "restore_files_per_s")
	b.ReportMetric(avg(backupOverhead), "backup_overhead_s")
	b.ReportMetric(avg(r.checkStats), "check_stats_s")
	b.ReportMetric(avg(restoreOverhead), "restore_overhead_s")
	b.ReportMetric(mib(r.agentKiB<<10), "agent_peak_MiB")
	b.ReportMetric(mib(r.resticKiB<<10), "restic_peak_MiB")
	b.ReportMetric(mib(r.handKiB<<10), "restic_hand_peak_MiB")
	b.ReportMetric(mib(r.rAgentKiB<<10), "restore_agent_peak_MiB")
	b.ReportMetric(avg(r.containerStart), "backup_container_start_s")
	b.ReportMetric(avg(r.rContainerStart), "restore_container_start_s")
	b.ReportMetric(mib(r.kubeletKiB<<10), "kubelet_peak_MiB")
	b.ReportMetric(mib(r.containerdKiB<<10), "containerd_peak_MiB")

	var s strings.Builder
	fmt.Fprintf(&s, "summary over %d run(s), %d files, %.1f MB per run; restic by hand is the mean of a run before and one after the system:\n", n, r.files/int64(n), float64(r.bytes)/1e6/float64(n))
	fmt.Fprintf(&s, "  backup   system %6.2fs   restic by hand %6.2fs (+ init %.2fs)   ratio %.3f   %.0f files/s, %.1f MB/s\n",
		avg(r.backup), avg(r.handBackup), avg(r.handInit), ratio(r.backup, r.handBackup), float64(r.files)/r.backup.Seconds(), float64(r.bytes)/1e6/r.backup.Seconds())
	fmt.Fprintf(&s, "           system = %.2fs before restic + restic backup %.2fs + %.2fs after (check+stats %.2fs)\n",
		avg(r.backupPre), avg(r.sysResticBackup), avg(r.backupPost), avg(r.checkStats))
	fmt.Fprintf(&s, "           the system adds %.2fs to its restic: ratio %.3f if its restic ran as fast as by hand, %.3f also without check+stats\n",
		avg(backupOverhead), ratio(r.handBackup+backupOverhead, r.handBackup), ratio(r.handBackup+backupOverhead-r.checkStats, r.handBackup))
	fmt.Fprintf(&s, "  restore  system %6.2fs   restic by hand %6.2fs   ratio %.3f   %.0f files/s, %.1f MB/s\n",
		avg(r.restore), avg(r.handRestore), ratio(r.restore, r.handRestore), float64(r.files)/r.restore.Seconds(), float64(r.bytes)/1e6/r.restore.Seconds())
	fmt.Fprintf(&s, "           system = %.2fs before restic restore + %.2fs restic restore + %.2fs after; adds %.2fs (ratio %.3f if its restic ran as fast as by hand)\n",
		avg(r.restorePre), avg(r.sysResticRestore), avg(r.restorePost), avg(restoreOverhead), ratio(r.handRestore+restoreOverhead, r.handRestore))
	fmt.Fprintf(&s, "  peak memory (VmHWM): backup agent %.1f MiB, its restic %.1f MiB, restic by hand %.1f MiB (max RSS); restore agent %.1f MiB, its restic %.1f MiB, restic by hand %.1f MiB",
		mib(r.agentKiB<<10), mib(r.resticKiB<<10), mib(r.handKiB<<10), mib(r.rAgentKiB<<10), mib(r.rResticKiB<<10), mib(r.rHandKiB<<10))
	fmt.Fprintf(&s, "\n  the node: session created to the agent's container started: backup %.2fs, restore %.2fs; peak RSS kubelet %.1f MiB, containerd %.1f MiB",
		avg(r.containerStart), avg(r.rContainerStart), mib(r.kubeletKiB<<10), mib(r.containerdKiB<<10))
	b.Log(s.String())
}

// benchOnce runs one iteration in namespace bench-<i>: a configuration
// whose initial backup (of an empty folder) is waited out, then the
// dataset is moved into the PVC's folder. restic by hand backs it up into a
// fresh repository, the system backs it up through a BackupSession, restic
// by hand backs it up once more into another fresh repository; then each
// restores its snapshot into an empty folder in the same order.
func benchOnce(ctx context.Context, b *testing.B, client versioned.Interface, i int, work, stage string, want map[string]restictest.Entry) benchResult {
	var res benchResult
	ns := fmt.Sprintf("bench-%d", i)
	_, _, err := env.Kubectl(ctx, s3StorageManifest(ns, ns, benchPassword)+fmt.Sprintf(`---
apiVersion: storage.kubestash.com/v1alpha1
kind: RetentionPolicy
metadata: {name: keep, namespace: %s}
spec:
  successfulSnapshots: {last: 5}
`, ns), "apply", "-f", "-")
	require.NoError(b, err)
	target := filepath.Join(work, fmt.Sprintf("target-%d", i))
	require.NoError(b, os.Mkdir(target, 0o755))
	pvClaim(ctx, b, ns, "target-pvc", target)
	_, _, err = env.Kubectl(ctx, fmt.Sprintf(`apiVersion: core.kubestash.com/v1alpha1
kind: BackupConfiguration
metadata: {name: pvc-backup, namespace: %[1]s}
spec:
  target: {apiGroup: "", kind: PersistentVolumeClaim, name: target-pvc, namespace: %[1]s}
  backends:
  - name: s3
    storageRef: {name: s3-storage}
    retentionPolicy: {name: keep}
  sessions:
  - name: manual
    # Only the initial backup and the session the benchmark creates run.
    scheduler: {schedule: "0 0 1 1 *"}
    repositories:
    - name: s3-repo
      backend: s3
      directory: /bench
      encryptionSecret: {name: encrypt-secret}
    addon:
      name: pvc-addon
      tasks:
      - name: logical-backup
`, ns), "apply", "-f", "-")
	require.NoError(b, err)

	// The initial backup, of the still empty folder: it initializes the
	// repository and leaves an empty parent snapshot, so the measured
	// backup uploads everything, as a first backup does.
	var initial catalogv1alpha1.BackupSession
	ok := assert.Eventually(b, func() bool {
		l, err := client.CatalogV1alpha1().BackupSessions(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) == 0 {
			return false
		}
		initial = l.Items[0]
		return initial.Status.Phase.IsTerminal()
	}, 5*time.Minute, 500*time.Millisecond, "the initial backup ends")
	if !ok {
		bc, err := client.CoreV1alpha1().BackupConfigurations(ns).Get(ctx, "pvc-backup", metav1.GetOptions{})
		if err == nil {
			b.Logf("BackupConfiguration status: %+v", bc.Status)
		}
		b.Fatalf("initial BackupSession %q: %+v", initial.Name, initial.Status)
	}
	require.Equal(b, catalogv1alpha1.BackupSessionSucceeded, initial.Status.Phase, "initial backup: %+v", initial.Status)

	// The data into the PVC's folder (one rename), and back at the end.
	require.NoError(b, os.Remove(target))
	require.NoError(b, os.Rename(stage, target))
	defer func() {
		if err := os.Rename(target, stage); err != nil {
			b.Errorf("move the dataset back: %v", err)
		}
	}()

	// restic by hand, twice, before and after the system (each into a
	// fresh repository with a fresh cache): their mean is the baseline,
	// so that a machine getting busier or quieter during the run tilts
	// the ratio less.
	hands := [2]*handSide{newHandSide(work, ns, i, "before"), newHandSide(work, ns, i, "after")}
	hands[0].backup(ctx, b, target)
	res.files, res.bytes = hands[0].sum.TotalFilesProcessed, hands[0].sum.TotalBytesProcessed

	// The system: a BackupSession as the CronJob's trigger makes it,
	// timed from its creation to Succeeded.
	bc, err := client.CoreV1alpha1().BackupConfigurations(ns).Get(ctx, "pvc-backup", metav1.GetOptions{})
	require.NoError(b, err)
	bs := backupconfiguration.NewBackupSession(bc, &bc.Spec.Sessions[0], time.Now())
	if bs.Name == initial.Name {
		bs.Name += "-bench"
	}
	obs := observeBackup(ctx, b, client, ns, bs.Name)
	agent := startProcSampler(agentProc(ns, "backup", "--backupsession="+bs.Name))
	syscall.Sync()
	obs.tl.start()
	_, err = client.CatalogV1alpha1().BackupSessions(ns).Create(ctx, bs, metav1.CreateOptions{})
	require.NoError(b, err)
	phase := obs.waitDone(ctx, b, 20*time.Minute, func(ctx context.Context) (bool, error) {
		s, err := client.CatalogV1alpha1().BackupSessions(ns).Get(ctx, bs.Name, metav1.GetOptions{})
		return err == nil && s.Status.Phase.IsTerminal(), err
	})
	agent.wait(time.Minute)
	obs.stop()
	snapName := catalogv1alpha1.GenerateSnapshotName("s3-repo", bs.Name)
	snap, err := client.CatalogV1alpha1().Snapshots(ns).Get(ctx, snapName, metav1.GetOptions{})
	require.NoError(b, err)
	require.Equal(b, "Succeeded", phase, "BackupSession %s; Snapshot status %+v", bs.Name, snap.Status)
	require.Equal(b, catalogv1alpha1.SnapshotSucceeded, snap.Status.Phase)
	require.True(b, snap.Status.Integrity != nil && *snap.Status.Integrity, "integrity")
	dump := snap.Status.Components["dump"]
	require.Len(b, dump.ResticStats, 1)
	require.NotNil(b, dump.ResticStats[0].Summary)
	if p := dump.ResticStats[0].Progress; p != nil && p.TotalFiles != 0 {
		require.Equal(b, res.files, p.TotalFiles, "the system backed up as many files as restic by hand")
	}
	tl := obs.tl
	tl.addProcs(agent)
	res.backup = tl.since("session Succeeded")
	res.agentKiB = agent.root.hwmKiB
	res.containerStart = agent.root.start.Sub(tl.t0)
	if p := agent.child("backup"); p != nil {
		res.resticKiB = p.hwmKiB
		res.sysResticBackup = p.end.Sub(p.start)
		res.backupPre = p.start.Sub(tl.t0)
		res.backupPost = tl.at("session Succeeded").Sub(p.end)
	}
	if first, last, ok := agent.span("check", "stats"); ok {
		res.checkStats = last.Sub(first)
	}
	benchLog("system backup %s: %s from creation to Succeeded (Snapshot duration %s, uploaded %s)\n%s",
		bs.Name, res.backup.Round(time.Millisecond), dump.Duration, dump.ResticStats[0].Summary.Uploaded, tl.String())

	hands[1].backup(ctx, b, target)
	require.Equal(b, res.files, hands[1].sum.TotalFilesProcessed)
	res.handInit = (hands[0].init.dur + hands[1].init.dur) / 2
	res.handBackup = (hands[0].bk.dur + hands[1].bk.dur) / 2
	res.handKiB = max(hands[0].bk.maxRSSKiB, hands[1].bk.maxRSSKiB)

	// Restores, each into an empty folder, verified file for file; by
	// hand again before and after the system.
	hands[0].restore(ctx, b, target, want)

	sysTarget := filepath.Join(work, fmt.Sprintf("restore-system-%d", i))
	require.NoError(b, os.Mkdir(sysTarget, 0o755))
	pvClaim(ctx, b, ns, "restored-pvc", sysTarget)
	rs := &catalogv1alpha1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-restore", Namespace: ns},
		Spec: catalogv1alpha1.RestoreSessionSpec{
			Target: &kmapi.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "restored-pvc"},
			DataSource: catalogv1alpha1.RestoreDataSource{
				Repository: "s3-repo", Snapshot: snapName, EncryptionSecret: &kmapi.ObjectReference{Name: "encrypt-secret"},
			},
			Addon: &corev1alpha1.AddonInfo{Name: "pvc-addon", Tasks: []corev1alpha1.TaskReference{{Name: "logical-backup-restore"}}},
		},
	}
	robs := observeRestore(ctx, b, client, ns, rs.Name)
	ragent := startProcSampler(agentProc(ns, "restore", "--restoresession="+rs.Name))
	syscall.Sync()
	robs.tl.start()
	_, err = client.CatalogV1alpha1().RestoreSessions(ns).Create(ctx, rs, metav1.CreateOptions{})
	require.NoError(b, err)
	phase = robs.waitDone(ctx, b, 20*time.Minute, func(ctx context.Context) (bool, error) {
		s, err := client.CatalogV1alpha1().RestoreSessions(ns).Get(ctx, rs.Name, metav1.GetOptions{})
		return err == nil && s.Status.Phase.IsTerminal(), err
	})
	ragent.wait(time.Minute)
	robs.stop()
	got, err := client.CatalogV1alpha1().RestoreSessions(ns).Get(ctx, rs.Name, metav1.GetOptions{})
	require.NoError(b, err)
	require.Equal(b, "Succeeded", phase, "RestoreSession status %+v", got.Status)
	rtl := robs.tl
	rtl.addProcs(ragent)
	res.restore = rtl.since("session Succeeded")
	res.rAgentKiB = ragent.root.hwmKiB
	res.rContainerStart = ragent.root.start.Sub(rtl.t0)
	if p := ragent.child("restore"); p != nil {
		res.rResticKiB = p.hwmKiB
		res.sysResticRestore = p.end.Sub(p.start)
		res.restorePre = p.start.Sub(rtl.t0)
		res.restorePost = rtl.at("session Succeeded").Sub(p.end)
	}
	benchLog("system restore %s: %s from creation to Succeeded (status duration %s)\n%s",
		rs.Name, res.restore.Round(time.Millisecond), got.Status.Duration, rtl.String())
	verifyRestore(b, want, sysTarget, "the system")
	hands[1].restore(ctx, b, target, want)
	res.handRestore = (hands[0].rs.dur + hands[1].rs.dur) / 2
	res.rHandKiB = max(hands[0].rs.maxRSSKiB, hands[1].rs.maxRSSKiB)
	benchLog("request latencies now (median / max of 10): %s", probeLatencies(ctx, b, client, ns, bs.Name))

	res.kubeletKiB, res.containerdKiB = readHWM(env.Node.Kubelet.Pid()), readHWM(env.Node.Containerd.Pid())

	for _, d := range []string{sysTarget, hands[0].dir, hands[1].dir} {
		require.NoError(b, os.RemoveAll(d))
	}
	return res
}

// probeLatencies measures the single requests the controller and the agent
// chain up around restic, to explain the timelines: a read of a catalog
// object (through kube-apiserver's aggregation layer and the catalog
// server's index), a read from etcd, a catalog write (a metadata patch of the
// finished BackupSession: one conditional PUT of its file) and a plain
// 1 KiB PUT to MinIO.
func probeLatencies(ctx context.Context, b *testing.B, client versioned.Interface, ns, bsName string) string {
	mc, err := env.MinIO.Client()
	require.NoError(b, err)
	probes := []struct {
		name string
		fn   func(i int) error
	}{
		{"catalog get", func(int) error {
			_, err := client.CatalogV1alpha1().BackupSessions(ns).Get(ctx, bsName, metav1.GetOptions{})
			return err
		}},
		{"etcd get", func(int) error {
			_, err := env.KubeClient.CoreV1().Secrets(ns).Get(ctx, "encrypt-secret", metav1.GetOptions{})
			return err
		}},
		{"catalog write", func(i int) error {
			patch := fmt.Sprintf(`{"metadata":{"annotations":{"bench.kubestash.com/probe":"%d"}}}`, i)
			_, err := client.CatalogV1alpha1().BackupSessions(ns).Patch(ctx, bsName, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			return err
		}},
		{"MinIO PUT 1KiB", func(i int) error {
			_, err := mc.PutObject(ctx, env.MinIO.Bucket, fmt.Sprintf("%s-probe/%d", ns, i), bytes.NewReader(make([]byte, 1024)), 1024, minio.PutObjectOptions{})
			return err
		}},
	}
	var out []string
	for _, p := range probes {
		var ds []time.Duration
		for i := range 10 {
			start := time.Now()
			require.NoError(b, p.fn(i), p.name)
			ds = append(ds, time.Since(start))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		out = append(out, fmt.Sprintf("%s %.0f/%.0fms", p.name, ds[len(ds)/2].Seconds()*1000, ds[len(ds)-1].Seconds()*1000))
	}
	return strings.Join(out, ", ")
}

// verifyRestore compares a restored tree with the dataset: content,
// modes, times, links, empty folders.
func verifyRestore(b *testing.B, want map[string]restictest.Entry, dir, who string) {
	got, err := restictest.Digest(dir)
	require.NoError(b, err)
	require.Empty(b, restictest.Diff(want, got, 10), "the tree restored by %s differs", who)
}

// benchLog prints details on stdout: a benchmark's own log (b.Log) is cut
// after ten lines, which the summary takes.
func benchLog(format string, args ...any) {
	fmt.Printf("bench: "+format+"\n", args...)
}

func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }

// handSide is one run of restic by hand: init, backup and restore, into
// and from a repository of its own.
type handSide struct {
	*handRestic
	tag          string
	init, bk, rs handRun
	sum          resticJSON
}

func newHandSide(work, ns string, i int, tag string) *handSide {
	m := env.MinIO
	return &handSide{tag: tag, handRestic: newHandRestic(filepath.Join(binDir, "restic"), filepath.Join(work, fmt.Sprintf("hand-%d-%s", i, tag)),
		fmt.Sprintf("s3:%s/%s/%s-hand-%s/repo", m.Endpoint, m.Bucket, ns, tag))}
}

// backup runs restic init, then the backup command the agent runs.
func (h *handSide) backup(ctx context.Context, b *testing.B, target string) {
	var err error
	syscall.Sync()
	h.init, err = h.run(ctx, "init", "--no-cache")
	require.NoError(b, err)
	syscall.Sync()
	h.bk, err = h.run(ctx, "backup", "--json", "--retry-lock", benchRetryLock, "--host", benchHost,
		"--cache-dir", h.cacheDir("backup"), "--cleanup-cache", "--", target)
	require.NoError(b, err)
	h.sum, err = resticSummary(h.bk.stdout)
	require.NoError(b, err)
	require.NotEmpty(b, h.sum.SnapshotID)
	benchLog("restic by hand (%s the system): init %s, backup %s (restic says %.2fs): %d files, %.1f MB, %.1f MB added; max RSS %.1f MiB (sampled VmHWM %.1f MiB)",
		h.tag, h.init.dur.Round(time.Millisecond), h.bk.dur.Round(time.Millisecond), h.sum.TotalDuration, h.sum.TotalFilesProcessed,
		float64(h.sum.TotalBytesProcessed)/1e6, float64(h.sum.DataAdded)/1e6, mib(h.bk.maxRSSKiB<<10), mib(h.bk.hwmKiB<<10))
}

// restore restores the folder the backup read into an empty folder, as
// the agent does, and verifies it.
func (h *handSide) restore(ctx context.Context, b *testing.B, source string, want map[string]restictest.Entry) {
	dst := filepath.Join(h.dir, "restored")
	require.NoError(b, os.Mkdir(dst, 0o755))
	syscall.Sync()
	var err error
	h.rs, err = h.run(ctx, "restore", "--json", "--retry-lock", benchRetryLock, "--target", dst,
		"--cache-dir", h.cacheDir("restore"), "--", h.sum.SnapshotID+":"+source)
	require.NoError(b, err)
	sum, err := resticSummary(h.rs.stdout)
	require.NoError(b, err)
	benchLog("restic by hand (%s the system): restore %s: %d files, %.1f MB restored; max RSS %.1f MiB (sampled VmHWM %.1f MiB)",
		h.tag, h.rs.dur.Round(time.Millisecond), sum.FilesRestored, float64(sum.BytesRestored)/1e6, mib(h.rs.maxRSSKiB<<10), mib(h.rs.hwmKiB<<10))
	verifyRestore(b, want, dst, "restic by hand")
	require.NoError(b, os.RemoveAll(dst))
}

// handRestic runs restic by hand, as a person would, with what the agent
// gives it: the repository, password and S3 keys in the environment,
// progress once a second, temporary files in a scratch folder.
type handRestic struct {
	bin string
	dir string
	env []string
}

func newHandRestic(bin, dir, repo string) *handRestic {
	m := env.MinIO
	return &handRestic{bin: bin, dir: dir, env: []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"RESTIC_REPOSITORY=" + repo,
		"RESTIC_PASSWORD=" + benchPassword,
		"RESTIC_PROGRESS_FPS=1",
		"TMPDIR=" + filepath.Join(dir, "tmp"),
		"AWS_ACCESS_KEY_ID=" + m.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + m.SecretKey,
		"AWS_DEFAULT_REGION=us-east-1",
	}}
}

// cacheDir is a fresh cache folder: the agent's scratch folder is a new
// emptyDir in every Pod.
func (h *handRestic) cacheDir(name string) string { return filepath.Join(h.dir, "cache-"+name) }

type handRun struct {
	dur       time.Duration
	maxRSSKiB int64 // from the kernel's rusage of the process
	hwmKiB    int64 // sampled like the agent's, for comparison
	stdout    []byte
}

func (h *handRestic) run(ctx context.Context, args ...string) (handRun, error) {
	if err := os.MkdirAll(filepath.Join(h.dir, "tmp"), 0o700); err != nil {
		return handRun{}, err
	}
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Env = h.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return handRun{}, err
	}
	pid := cmd.Process.Pid
	// The same sampling as for the agent, so that both sides carry it.
	s := startProcSampler(func(p int, _ procStat, _ func() []string) bool { return p == pid })
	err := cmd.Wait()
	r := handRun{dur: time.Since(start), stdout: stdout.Bytes()}
	s.wait(5 * time.Second)
	if s.root != nil {
		r.hwmKiB = s.root.hwmKiB
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSSKiB = ru.Maxrss
	}
	if err != nil {
		return r, fmt.Errorf("restic %s: %w\n%s", args[0], err, stderr.String())
	}
	return r, nil
}

// resticJSON is the summary line of restic backup or restore --json.
type resticJSON struct {
	MessageType         string  `json:"message_type"`
	SnapshotID          string  `json:"snapshot_id"`
	TotalFilesProcessed int64   `json:"total_files_processed"`
	TotalBytesProcessed int64   `json:"total_bytes_processed"`
	DataAdded           int64   `json:"data_added"`
	TotalDuration       float64 `json:"total_duration"`
	FilesRestored       int64   `json:"files_restored"`
	BytesRestored       int64   `json:"bytes_restored"`
}

func resticSummary(out []byte) (resticJSON, error) {
	var last resticJSON
	found := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var m resticJSON
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.MessageType == "summary" {
			last, found = m, true
		}
	}
	if !found {
		return last, fmt.Errorf("no summary in restic's output:\n%s", out)
	}
	return last, nil
}

// timeline records when things were first seen, relative to t0.
type timeline struct {
	mu      sync.Mutex
	t0      time.Time
	marks   map[string]time.Time
	changed chan struct{}
}

func newTimeline() *timeline {
	return &timeline{marks: map[string]time.Time{}, changed: make(chan struct{}, 1)}
}

func (tl *timeline) start() {
	tl.mu.Lock()
	tl.t0 = time.Now()
	tl.mu.Unlock()
}

func (tl *timeline) mark(name string) { tl.markAt(name, time.Now()) }

// markAt records the first time of name.
func (tl *timeline) markAt(name string, at time.Time) {
	tl.mu.Lock()
	if _, ok := tl.marks[name]; !ok && !tl.t0.IsZero() {
		tl.marks[name] = at
	}
	tl.mu.Unlock()
	select {
	case tl.changed <- struct{}{}:
	default:
	}
}

func (tl *timeline) at(name string) time.Time {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.marks[name]
}

func (tl *timeline) since(name string) time.Duration {
	t := tl.at(name)
	if t.IsZero() {
		return 0
	}
	return t.Sub(tl.t0)
}

// addProcs adds what a sampler saw of the agent and its restic commands.
func (tl *timeline) addProcs(s *procSampler) {
	if s.root == nil {
		return
	}
	tl.markAt("agent process started", s.root.start)
	if !s.root.end.IsZero() {
		tl.markAt(fmt.Sprintf("agent process exited (VmHWM %.1f MiB)", mib(s.root.hwmKiB<<10)), s.root.end)
	}
	for n, c := range s.children {
		op := strings.Join(c.op(), " ")
		tl.markAt(fmt.Sprintf("restic %s started (#%d)", op, n+1), c.start)
		if !c.end.IsZero() {
			tl.markAt(fmt.Sprintf("restic %s exited after %.2fs (#%d, VmHWM %.1f MiB)", op, c.end.Sub(c.start).Seconds(), n+1, mib(c.hwmKiB<<10)), c.end)
		}
	}
}

// String is the timeline, one event a line, with the time since t0 and
// since the previous event.
func (tl *timeline) String() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	type ev struct {
		name string
		at   time.Time
	}
	var evs []ev
	for n, t := range tl.marks {
		evs = append(evs, ev{n, t})
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
	var s strings.Builder
	fmt.Fprintf(&s, "  %9s %9s  created\n", "+0.000s", "")
	prev := tl.t0
	for _, e := range evs {
		fmt.Fprintf(&s, "  %+8.3fs %+8.3fs  %s\n", e.at.Sub(tl.t0).Seconds(), e.at.Sub(prev).Seconds(), e.name)
		prev = e.at
	}
	return strings.TrimRight(s.String(), "\n")
}

// observer watches a session's objects through informers and marks its
// milestones on a timeline.
type observer struct {
	tl       *timeline
	stopCh   chan struct{}
	catalog  externalversions.SharedInformerFactory
	kube     kubeinformers.SharedInformerFactory
	stopOnce sync.Once
}

func newObserver(client versioned.Interface, ns, session string) *observer {
	o := &observer{tl: newTimeline(), stopCh: make(chan struct{})}
	o.catalog = externalversions.NewSharedInformerFactoryWithOptions(client, 0, externalversions.WithNamespace(ns))
	o.kube = kubeinformers.NewSharedInformerFactoryWithOptions(env.KubeClient, 0, kubeinformers.WithNamespace(ns))
	// Backup and restore Jobs and their Pods carry the session's name.
	ours := func(m metav1.Object) bool { return m.GetLabels()[catalogv1alpha1.LabelInvokerName] == session }
	_, _ = o.kube.Batch().V1().Jobs().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { o.job(obj, ours) },
		UpdateFunc: func(_, obj any) { o.job(obj, ours) },
		DeleteFunc: func(obj any) {
			if j, ok := obj.(*batchv1.Job); ok && !ours(j) {
				o.tl.mark("older session's Job deleted (history limit)")
			}
		},
	})
	_, _ = o.kube.Core().V1().Pods().Informer().AddEventHandler(phaseHandler(func(obj any) {
		if p, ok := obj.(*corev1.Pod); ok && ours(p) {
			o.tl.mark("Pod created")
			if p.Spec.NodeName != "" {
				o.tl.mark("Pod bound")
			}
			if p.Status.Phase != corev1.PodPending {
				o.tl.mark("Pod " + string(p.Status.Phase))
			}
		}
	}))
	return o
}

func (o *observer) job(obj any, ours func(metav1.Object) bool) {
	if j, ok := obj.(*batchv1.Job); ok && ours(j) {
		o.tl.mark("Job created")
		if j.Status.Succeeded > 0 {
			o.tl.mark("Job complete")
		}
	}
}

func observeBackup(ctx context.Context, b *testing.B, client versioned.Interface, ns, session string) *observer {
	o := newObserver(client, ns, session)
	inf := o.catalog.Catalog().V1alpha1()
	_, _ = inf.BackupSessions().Informer().AddEventHandler(phaseHandler(func(obj any) {
		if s, ok := obj.(*catalogv1alpha1.BackupSession); ok && s.Name == session && s.Status.Phase != "" {
			o.tl.mark("session " + string(s.Status.Phase))
			if s.Status.Phase.IsTerminal() {
				o.tl.mark("done")
			}
		}
	}))
	_, _ = inf.BackupSessions().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if s, ok := obj.(*catalogv1alpha1.BackupSession); ok && s.Name != session {
			o.tl.mark("older session deleted (history limit)")
		}
	}})
	_, _ = inf.Repositories().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{UpdateFunc: func(_, obj any) {
		o.tl.mark("Repository status updated")
	}})
	_, _ = inf.Snapshots().Informer().AddEventHandler(phaseHandler(func(obj any) {
		if s, ok := obj.(*catalogv1alpha1.Snapshot); ok && s.Spec.BackupSession == session {
			o.tl.mark("Snapshot created")
			if s.Status.Phase != "" {
				o.tl.mark("Snapshot " + string(s.Status.Phase))
			}
			for name, c := range s.Status.Components {
				if c.Phase != "" {
					o.tl.mark(fmt.Sprintf("component %s %s (agent's status)", name, c.Phase))
				}
			}
		}
	}))
	o.run(ctx, b)
	return o
}

func observeRestore(ctx context.Context, b *testing.B, client versioned.Interface, ns, session string) *observer {
	o := newObserver(client, ns, session)
	_, _ = o.catalog.Catalog().V1alpha1().RestoreSessions().Informer().AddEventHandler(phaseHandler(func(obj any) {
		if s, ok := obj.(*catalogv1alpha1.RestoreSession); ok && s.Name == session {
			if s.Status.Phase != "" {
				o.tl.mark("session " + string(s.Status.Phase))
			}
			for name, c := range s.Status.Components {
				if c.Phase != "" {
					o.tl.mark(fmt.Sprintf("component %s %s (agent's status)", name, c.Phase))
				}
			}
			if s.Status.Phase.IsTerminal() {
				o.tl.mark("done")
			}
		}
	}))
	o.run(ctx, b)
	return o
}

func phaseHandler(fn func(obj any)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{AddFunc: fn, UpdateFunc: func(_, obj any) { fn(obj) }}
}

// run starts the informers and waits for their caches, so that nothing
// after t0 goes unseen.
func (o *observer) run(ctx context.Context, b *testing.B) {
	o.catalog.Start(o.stopCh)
	o.kube.Start(o.stopCh)
	for typ, ok := range o.catalog.WaitForCacheSync(ctx.Done()) {
		require.True(b, ok, "informer of %v synced", typ)
	}
	for typ, ok := range o.kube.WaitForCacheSync(ctx.Done()) {
		require.True(b, ok, "informer of %v synced", typ)
	}
}

func (o *observer) stop() {
	o.stopOnce.Do(func() {
		close(o.stopCh)
		o.catalog.Shutdown()
		o.kube.Shutdown()
	})
}

// waitDone waits for the session to end and returns its phase. The
// informers see it at once; poll is a slow safety net that marks the end
// late if a watch ever missed it.
func (o *observer) waitDone(ctx context.Context, b *testing.B, timeout time.Duration, poll func(context.Context) (bool, error)) string {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		if !o.tl.at("done").IsZero() {
			for _, p := range []string{"Succeeded", "Failed", "Skipped", "Invalid"} {
				if !o.tl.at("session " + p).IsZero() {
					return p
				}
			}
			return "unknown"
		}
		select {
		case <-ctx.Done():
			b.Fatalf("the session did not end in %s; timeline:\n%s", timeout, o.tl)
		case <-o.tl.changed:
		case <-tick.C:
			if done, _ := poll(ctx); done {
				time.Sleep(2 * time.Second) // let the informer deliver it
				if o.tl.at("done").IsZero() {
					benchLog("the informer missed the end of the session; it is timed by a poll")
					o.tl.mark("done")
				}
			}
		}
	}
}

// procStat is what /proc/<pid>/stat says of a process.
type procStat struct {
	comm  string
	state byte
	ppid  int
	start uint64 // clock ticks after boot
}

func readProcStat(pid int) (procStat, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, false
	}
	open, closing := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
	if open < 0 || closing < open {
		return procStat{}, false
	}
	f := strings.Fields(string(raw[closing+1:]))
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[19] field 22 (starttime).
	if len(f) < 20 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	start, _ := strconv.ParseUint(f[19], 10, 64)
	return procStat{comm: string(raw[open+1 : closing]), state: f[0][0], ppid: ppid, start: start}, true
}

func readCmdline(pid int) []string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
}

// readHWM is VmHWM of /proc/<pid>/status in KiB: the peak resident set.
func readHWM(pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				return v
			}
		}
	}
	return 0
}

// agentProc matches the agent process of one session: its command line
// holds the subcommand, the namespace and the session's name.
func agentProc(ns, sub, sessionArg string) func(int, procStat, func() []string) bool {
	return func(_ int, st procStat, cmdline func() []string) bool {
		if st.comm != "agent" {
			return false
		}
		args := cmdline()
		return contains(args, sub) && contains(args, "--namespace="+ns) && contains(args, sessionArg)
	}
}

func contains(args []string, a string) bool {
	for _, x := range args {
		if x == a {
			return true
		}
	}
	return false
}

// procRecord is one process a sampler saw.
type procRecord struct {
	pid    int
	tick   uint64
	args   []string
	start  time.Time
	end    time.Time // first seen gone (or a zombie)
	hwmKiB int64
}

// op is restic's subcommand and its first argument ("cat config").
func (p *procRecord) op() []string {
	var op []string
	for _, a := range p.args[1:] {
		if strings.HasPrefix(a, "-") || len(op) == 2 {
			break
		}
		op = append(op, a)
	}
	if len(op) == 2 && op[0] != "cat" && op[0] != "list" {
		op = op[:1]
	}
	return op
}

// procSampler follows one process (the root) and its direct children
// through /proc every 50ms: when each started (the kernel's start time),
// when it was first seen gone, and its VmHWM. Nothing on this machine
// reports the children of a process directly, so each round reads
// /proc/*/stat.
type procSampler struct {
	isRoot   func(pid int, st procStat, cmdline func() []string) bool
	boot     time.Time
	root     *procRecord
	rootComm string
	children []*procRecord
	stopCh   chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

const clockTicks = 100 // USER_HZ

func startProcSampler(isRoot func(pid int, st procStat, cmdline func() []string) bool) *procSampler {
	s := &procSampler{isRoot: isRoot, stopCh: make(chan struct{}), done: make(chan struct{})}
	if raw, err := os.ReadFile("/proc/uptime"); err == nil {
		if f := strings.Fields(string(raw)); len(f) > 0 {
			up, _ := strconv.ParseFloat(f[0], 64)
			s.boot = time.Now().Add(-time.Duration(up * float64(time.Second)))
		}
	}
	go s.loop()
	return s
}

func (s *procSampler) loop() {
	defer close(s.done)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	// Processes known not to be the root. A process between fork and
	// exec still has its parent's name, so the name is part of the key.
	seen := map[int]string{}
	for {
		s.scan(seen)
		if s.finished() {
			return
		}
		select {
		case <-s.stopCh:
			return
		case <-tick.C:
		}
	}
}

func (s *procSampler) finished() bool {
	if s.root == nil || s.root.end.IsZero() {
		return false
	}
	for _, c := range s.children {
		if c.end.IsZero() {
			return false
		}
	}
	return true
}

func (s *procSampler) scan(notRoot map[int]string) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	now := time.Now()
	alive := map[*procRecord]bool{}
	known := map[int]*procRecord{}
	if s.root != nil {
		known[s.root.pid] = s.root
	}
	for _, c := range s.children {
		known[c.pid] = c
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, ok := readProcStat(pid)
		if !ok {
			continue
		}
		if r := known[pid]; r != nil && r.tick == st.start {
			if st.state != 'Z' {
				alive[r] = true
				r.hwmKiB = max(r.hwmKiB, readHWM(pid))
			}
			continue
		}
		switch {
		case s.root == nil:
			key := fmt.Sprintf("%d/%s", st.start, st.comm)
			if notRoot[pid] == key {
				continue
			}
			if st.state != 'Z' && s.isRoot(pid, st, func() []string { return readCmdline(pid) }) {
				s.root, s.rootComm = s.record(pid, st), st.comm
				alive[s.root] = true
			} else {
				notRoot[pid] = key
			}
		case st.ppid == s.root.pid && s.root.end.IsZero() && st.state != 'Z' && st.comm != s.rootComm:
			// (A child that still has the root's name has not exec'd
			// yet: its command line is not restic's. The next round
			// takes it.)
			c := s.record(pid, st)
			s.children = append(s.children, c)
			alive[c] = true
		}
	}
	for _, r := range known {
		if !alive[r] && r.end.IsZero() {
			r.end = now
		}
	}
}

func (s *procSampler) record(pid int, st procStat) *procRecord {
	return &procRecord{
		pid: pid, tick: st.start, args: readCmdline(pid), hwmKiB: readHWM(pid),
		start: s.boot.Add(time.Duration(st.start) * time.Second / clockTicks),
	}
}

// wait waits until the root and its children have ended, at most d.
func (s *procSampler) wait(d time.Duration) {
	select {
	case <-s.done:
	case <-time.After(d):
		s.stopOnce.Do(func() { close(s.stopCh) })
		<-s.done
	}
}

// child is the last child whose restic subcommand is op.
func (s *procSampler) child(op string) *procRecord {
	for i := len(s.children) - 1; i >= 0; i-- {
		c := s.children[i]
		if o := c.op(); len(o) > 0 && o[0] == op && !c.end.IsZero() {
			return c
		}
	}
	return nil
}

// span is from the first start to the last end of the children whose
// subcommand is one of ops.
func (s *procSampler) span(ops ...string) (first, last time.Time, ok bool) {
	for _, c := range s.children {
		o := c.op()
		if len(o) == 0 || !contains(ops, o[0]) || c.end.IsZero() {
			continue
		}
		if !ok || c.start.Before(first) {
			first = c.start
		}
		if !ok || c.end.After(last) {
			last = c.end
		}
		ok = true
	}
	return first, last, ok
}

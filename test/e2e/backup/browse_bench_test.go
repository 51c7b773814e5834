package backup

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kubestash.dev/kubestash/pkg/restic"
)

// TestBrowseFigures measures issue 14 item 5 and is skipped unless
// KUBESTASH_BROWSE_BENCH=1 (KUBESTASH_BENCH_SMALL=1 for a tenth of the
// data, KUBESTASH_BROWSE_BIG=1 for one file of 1 GiB instead):
//
//	KUBESTASH_BROWSE_BENCH=1 go test ./test/e2e/backup -run TestBrowseFigures -count=1 -v -timeout 40m
//
// It backs up the ~500 MB mixed dataset of BenchmarkBackupRestore through
// the system, then times listing the root of the Snapshot and downloading
// it all as tar through the API (kube-apiserver, aggregation, catalog
// server) against `restic ls` and `restic dump` by hand on the same
// repository (both with a warm cache), and samples the catalog server's
// RSS during the download.
func TestBrowseFigures(t *testing.T) {
	if os.Getenv("KUBESTASH_BROWSE_BENCH") == "" {
		t.Skip("set KUBESTASH_BROWSE_BENCH=1 to measure browsing the ~500 MB dataset")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	const ns = "browse-bench"
	podLogsOnFailure(t, ns)
	ds := benchDataset
	switch {
	case os.Getenv("KUBESTASH_BENCH_SMALL") != "":
		ds = smallBenchDataset
	case os.Getenv("KUBESTASH_BROWSE_BIG") != "":
		ds = bigFileDataset
	}
	e := newFailEnv(ctx, t, failOptions{NS: ns, BC: "pvc-backup", Directory: "/browse-bench", Data: ds})
	snap := e.snapshot(e.first)
	sum := snap.Status.Components["dump"].ResticStats[0].Summary
	at := sum.ID + ":" + sum.HostPath
	bindRole(ctx, t, ns, "ed", "edit")
	ed := userClient(t, "ed")

	// By hand: the same restic, the same repository, a cache of its own.
	m := env.MinIO
	hand, err := restic.New(restic.Options{
		Binary: filepath.Join(binDir, "restic"), Password: e.o.Password, EnableCache: true, ScratchDir: t.TempDir(),
		Location: restic.Location{Provider: restic.ProviderS3, Path: strings.TrimPrefix(e.o.Directory, "/") + "/repository/v1/" + failSession + "/dump",
			S3: &restic.S3{Endpoint: m.Endpoint, Bucket: m.Bucket, Prefix: ns, Region: "us-east-1", AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey}},
	})
	require.NoError(t, err)

	const rounds = 3
	best := func(f func() (int64, error)) (time.Duration, int64) {
		var min time.Duration
		var n int64
		for i := 0; i < rounds; i++ {
			start := time.Now()
			c, err := f()
			require.NoError(t, err)
			if d := time.Since(start); i == 0 || d < min {
				min = d
			}
			n = c
		}
		return min, n
	}
	apiLs, apiN := best(func() (int64, error) {
		l, err := files(ctx, ed, ns, snap.Name, "/", false, "")
		if err != nil {
			return 0, err
		}
		return int64(len(l.Items)), nil
	})
	handLs, handN := best(func() (int64, error) {
		var n int64
		err := hand.Ls(ctx, at, "/", false, func(restic.Node) error { n++; return nil })
		return n, err
	})
	require.Equal(t, handN, apiN, "both list the same root")

	pid, err := release.ContainerPID(ctx, "apiserver")
	require.NoError(t, err)
	var peak, base int64
	apiDump, apiBytes := best(func() (int64, error) {
		base = rssKiB(pid)
		stop := sampleRSS(pid, &peak)
		defer stop()
		h := sha256.New()
		n, err := downloadTo(ctx, ed, ns, snap.Name, "/", h)
		return n, err
	})
	// The same download with the catalog server serving HTTP/2 as well
	// (the aggregation proxy then speaks HTTP/2 to it), in this run.
	h2Dump := withCatalogServer(t, []string{"apiserver.extraArgs={--disable-http2-serving=false}"}, func() time.Duration {
		d, _ := best(func() (int64, error) { return downloadTo(ctx, ed, ns, snap.Name, "/", sha256.New()) })
		return d
	})
	handDump, handBytes := best(func() (int64, error) {
		cw := &countingWriter{w: sha256.New()}
		err := hand.Dump(ctx, at, "/", cw)
		return cw.n, err
	})
	require.Equal(t, handBytes, apiBytes, "both dump the same tar")

	t.Logf("browse figures: dataset %d small files up to %d KiB + %d x %d MiB; snapshot %s",
		ds.SmallFiles, ds.SmallMax>>10, ds.LargeFiles, ds.LargeSize>>20, snap.Name)
	t.Logf("list root (%d entries):   API %v   restic ls by hand %v   ratio %.2f", apiN, apiLs.Round(time.Millisecond), handLs.Round(time.Millisecond), float64(apiLs)/float64(handLs))
	t.Logf("download / as tar (%.1f MiB): API %v   restic dump by hand %v   ratio %.2f", float64(apiBytes)/(1<<20),
		apiDump.Round(time.Millisecond), handDump.Round(time.Millisecond), float64(apiDump)/float64(handDump))
	t.Logf("  the same with the catalog server on HTTP/2: API %v   ratio %.2f", h2Dump.Round(time.Millisecond), float64(h2Dump)/float64(handDump))
	t.Logf("catalog server RSS: %d MiB before a download, peak %d MiB during (growth %d MiB)", base>>10, peak>>10, (peak-base)>>10)
}

// withCatalogServer rolls env's catalog server with chart values set on
// top of its usual ones for f, then back, and returns f's result.
func withCatalogServer[T any](t *testing.T, set []string, f func() T) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	require.NoError(t, release.Upgrade(ctx, set...))
	defer func() { require.NoError(t, release.Upgrade(ctx)) }()
	return f()
}

// downloadTo streams a download into w and returns its length.
func downloadTo(ctx context.Context, c user, ns, snap, p string, w hash.Hash) (int64, error) {
	u := c.CatalogV1alpha1().RESTClient().Get().Namespace(ns).Resource("snapshots").Name(snap).SubResource("download").
		Param("path", p).URL()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, err
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return 0, fmt.Errorf("HTTP %d: %s", res.StatusCode, b)
	}
	return io.Copy(w, res.Body)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// rssKiB is a process's resident set size.
func rssKiB(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// sampleRSS keeps the highest RSS of pid in *peak until stopped.
func sampleRSS(pid int, peak *int64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if r := rssKiB(pid); r > *peak {
				*peak = r
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

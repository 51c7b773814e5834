package catalogstore

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
	"k8s.io/apiserver/pkg/storage"
	"sigs.k8s.io/yaml"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	"kubestash.dev/kubestash/pkg/layout"
)

// The targets of the catalog store issue: a cold build of 10,000 snapshots
// in 20 repositories in at most 5 s against MinIO on loopback, a list of
// 10,000 from the index in at most 20 ms, and at most 50 MB of index.
const (
	benchRepos     = 20
	benchSnapshots = 10000
)

var (
	benchOnce   sync.Once
	benchPrefix string
)

// fillBucket writes, once per run, metadata.yaml, 20 repository.yaml and
// 10,000 snapshot files straight into MinIO, as another cluster would leave
// them.
func fillBucket(b *testing.B) string {
	benchOnce.Do(func() {
		ctx := context.Background()
		benchPrefix = "bench-" + fmt.Sprint(time.Now().UnixNano())
		mc, err := env.MinIO.Client()
		require.NoError(b, err)
		codec := layout.NewFileCodec(scheme)
		put := func(key string, data []byte) error {
			_, err := mc.PutObject(ctx, env.MinIO.Bucket, benchPrefix+"/"+key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
			return err
		}
		meta := layout.BackendMeta{APIVersion: layout.MetaAPIVersion, Kind: layout.MetaKind}
		g, _ := errgroup.WithContext(ctx)
		g.SetLimit(32)
		for r := range benchRepos {
			name, path := fmt.Sprintf("repo-%02d", r), fmt.Sprintf("bench/repo-%02d", r)
			meta.Repositories = append(meta.Repositories, layout.RepositoryInfo{Name: name, Namespace: "demo", Path: path})
			var buf bytes.Buffer
			require.NoError(b, codec.Encode(repository(name, path), &buf))
			data := buf.Bytes()
			g.Go(func() error { return put(path+"/repository.yaml", data) })
		}
		for i := range benchSnapshots {
			r := i % benchRepos
			s := snapshot(fmt.Sprintf("repo-%02d-pvc-backup-frequent-backup-%d", r, 1700000000+i), fmt.Sprintf("repo-%02d", r))
			s.Status.Phase = "Succeeded"
			s.Status.Size = "806 B"
			var buf bytes.Buffer
			require.NoError(b, codec.Encode(s, &buf))
			data, key := buf.Bytes(), fmt.Sprintf("bench/repo-%02d/snapshots/%s.yaml", r, s.Name)
			g.Go(func() error { return put(key, data) })
		}
		metaYAML, err := yaml.Marshal(meta)
		require.NoError(b, err)
		g.Go(func() error { return put(layout.MetadataFile, metaYAML) })
		require.NoError(b, g.Wait())
	})
	return benchPrefix
}

// BenchmarkColdIndexBuild measures a store's start over the filled bucket:
// discovery, 20 lists and 10,000 reads; it reports the heap the index holds.
func BenchmarkColdIndexBuild(b *testing.B) {
	prefix := fillBucket(b)
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		st := newStores(b, newS3(b, prefix), 0)
		b.StopTimer()
		require.Equal(b, benchSnapshots, st.snaps.Len())
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "index-MB")
		st.repos.Stop()
		st.snaps.Stop()
		b.StartTimer()
	}
}

// BenchmarkList10k lists every snapshot from the index.
func BenchmarkList10k(b *testing.B) {
	st := newStores(b, newS3(b, fillBucket(b)), 0)
	ctx := context.Background()
	for b.Loop() {
		var l catalog.SnapshotList
		require.NoError(b, st.snaps.GetList(ctx, snapPrefix+"/demo", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, &l))
		if len(l.Items) != benchSnapshots {
			b.Fatalf("listed %d", len(l.Items))
		}
	}
}

// BenchmarkUpdateRoundTrip is one conditional update of a Snapshot: the
// write to MinIO, the index and the event.
func BenchmarkUpdateRoundTrip(b *testing.B) {
	st := newStores(b, newS3(b, newBucketPrefix()), 0)
	st.createRepo(b, repository("r", "bench/r"))
	st.createSnap(b, snapshot("s", "r"))
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		if _, err := setPhase(ctx, st.snaps, "s", "", fmt.Sprintf("Running-%d", i)); err != nil {
			b.Fatal(err)
		}
	}
}

package store

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/component-base/metrics/testutil"

	"kubestash.dev/kubestash/pkg/backend"
)

// logBuffer collects a store's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) config(cfg *Config) {
	cfg.Logger = funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.buf.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 10})
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// getCounter counts Gets of one key and bytes returned by them; it has no
// GetLimit, so limited reads go through Stat first.
type getCounter struct {
	backend.Backend
	mu    sync.Mutex
	gets  map[string]int
	bytes int64
}

func (g *getCounter) Get(ctx context.Context, key string) ([]byte, backend.Object, error) {
	data, o, err := g.Backend.Get(ctx, key)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gets == nil {
		g.gets = map[string]int{}
	}
	g.gets[key]++
	g.bytes += int64(len(data))
	return data, o, err
}

func (g *getCounter) count(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gets[key]
}

// bigPod is a Pod whose file is about size bytes (one long annotation).
func bigPod(ns, name string, size int, fill byte) *example.Pod {
	p := pod(ns, name)
	p.Annotations = map[string]string{"big": strings.Repeat(string(fill), size)}
	return p
}

// TestMaxObjectSize: files over the limit are skipped without being read,
// counted and logged with their size and the limit; files at the limit are
// served.
func TestMaxObjectSize(t *testing.T) {
	const limit = 8 << 10
	for _, tc := range []struct {
		name   string
		size   int // annotation bytes
		served bool
	}{
		{"small", 100, true},
		{"just under the limit", limit - 400, true},
		{"over the limit", limit + 1, false},
		{"far over the limit", 4 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			local := localBackend(t)
			data := encodePod(t, bigPod("ns", "p", tc.size, 'x'))
			if tc.served {
				require.LessOrEqual(t, len(data), limit)
			}
			writeFile(t, local, "pods/ns/p.yaml", data)
			writeFile(t, local, "pods/ns/ok.yaml", encodePod(t, pod("ns", "ok")))
			b := &getCounter{Backend: local}
			var logs logBuffer
			cfg := podConfig(backends{"a": b}, "a")
			cfg.MaxObjectSize = limit
			logs.config(&cfg)
			before, _ := testutil.GetCounterMetricValue(skippedFiles.WithLabelValues("pods", skipTooLarge))
			s := startStore(t, cfg)
			after, _ := testutil.GetCounterMetricValue(skippedFiles.WithLabelValues("pods", skipTooLarge))
			if tc.served {
				assert.Equal(t, []string{"ns/ok", "ns/p"}, listNames(t, s))
				assert.Equal(t, before, after)
				return
			}
			assert.Equal(t, []string{"ns/ok"}, listNames(t, s))
			assert.Equal(t, before+1, after, "counted as too-large")
			assert.Zero(t, b.count("pods/ns/p.yaml"), "never read")
			out := logs.String()
			assert.Contains(t, out, `"file"="pods/ns/p.yaml"`)
			assert.Contains(t, out, fmt.Sprintf(`"size"=%d`, len(data)))
			assert.Contains(t, out, fmt.Sprintf(`"limit"=%d`, limit))
			assert.NotContains(t, out, "xxxxxxxx", "the log never quotes the file")

			// Unchanged, it is neither read nor counted again.
			require.NoError(t, s.Poll(ctx))
			again, _ := testutil.GetCounterMetricValue(skippedFiles.WithLabelValues("pods", skipTooLarge))
			assert.Equal(t, after, again)
			assert.Zero(t, b.count("pods/ns/p.yaml"))
		})
	}
}

// TestFileGrownOverTheLimit: a served file replaced by a huge one leaves
// the index (DELETED to watchers), is read no further than the limit + 1
// byte when the listing did not tell (a repair after a conflict), and the
// watch keeps working.
func TestFileGrownOverTheLimit(t *testing.T) {
	ctx := context.Background()
	const limit = 8 << 10
	b := &getCounter{Backend: localBackend(t)}
	writeFile(t, b, "pods/ns/p.yaml", encodePod(t, pod("ns", "p")))
	cfg := podConfig(backends{"a": b}, "a")
	cfg.MaxObjectSize = limit
	s := startStore(t, cfg)
	w, err := s.Watch(ctx, "/pods", storage.ListOptions{ResourceVersion: mustRV(t, s), Recursive: true, Predicate: storage.Everything})
	require.NoError(t, err)
	defer w.Stop()

	reads := b.count("pods/ns/p.yaml")
	writeFile(t, b, "pods/ns/p.yaml", encodePod(t, bigPod("ns", "p", 1<<20, 'y')))
	require.NoError(t, s.Poll(ctx))
	evs := nextEvents(t, w, 1)
	assert.Equal(t, watch.Deleted, evs[0].Type)

	require.NoError(t, s.Create(ctx, podKey("ns", "q"), pod("ns", "q"), &example.Pod{}, 0))
	evs = nextEvents(t, w, 1)
	assert.Equal(t, watch.Added, evs[0].Type, "the watch keeps working")

	// A limited read (no listing size) through a backend without GetLimit.
	r := s.tooLarge(Location{Storage: "a", Key: "x"}, backend.Object{Size: 5})
	assert.Equal(t, skipTooLarge, r.skip)
	_, _, err = backend.GetLimit(ctx, b, "pods/ns/p.yaml", limit)
	assert.ErrorIs(t, err, backend.ErrTooLarge)
	assert.Equal(t, reads, b.count("pods/ns/p.yaml"), "refused by its size, before any read")
}

// TestWritesOverTheLimitAre413: creates and updates whose file would be
// over the limit are refused with 413 naming the limit; nothing is written.
func TestWritesOverTheLimitAre413(t *testing.T) {
	ctx := context.Background()
	const limit = 8 << 10
	b := localBackend(t)
	cfg := podConfig(backends{"a": b}, "a")
	cfg.MaxObjectSize = limit
	s := startStore(t, cfg)
	for _, tc := range []struct {
		name  string
		write func() error
	}{
		{"create", func() error {
			return s.Create(ctx, podKey("ns", "big"), bigPod("ns", "big", limit, 'z'), &example.Pod{}, 0)
		}},
		{"update", func() error {
			require.NoError(t, s.Create(ctx, podKey("ns", "grows"), pod("ns", "grows"), &example.Pod{}, 0))
			return s.GuaranteedUpdate(ctx, podKey("ns", "grows"), &example.Pod{}, false, nil,
				func(in k8sruntime.Object, _ storage.ResponseMeta) (k8sruntime.Object, *uint64, error) {
					p := in.(*example.Pod)
					p.Annotations = map[string]string{"big": strings.Repeat("z", limit)}
					return p, nil, nil
				}, nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.write()
			require.Error(t, err)
			assert.True(t, apierrors.IsRequestEntityTooLargeError(err), "got %v", err)
			assert.Contains(t, err.Error(), fmt.Sprint(limit), "names the limit")
		})
	}
	res, err := b.List(ctx, "pods/", backend.ListOptions{})
	require.NoError(t, err)
	for _, o := range res.Objects {
		assert.LessOrEqual(t, o.Size, int64(limit), "%s", o.Key)
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestPlantedHugeFileKeepsMemory: a 50 MB file (of 2.5 million keys)
// planted in a storage takes no memory of the server, before or after it
// is deleted.
func TestPlantedHugeFileKeepsMemory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := backend.NewLocal(dir)
	require.NoError(t, err)
	writeFile(t, b, "pods/ns/ok.yaml", encodePod(t, pod("ns", "ok")))
	s := startStore(t, podConfig(backends{"a": b}, "a")) // the default 1 MiB limit
	base := heapAlloc()

	var huge bytes.Buffer
	huge.WriteString("apiVersion: example.apiserver.k8s.io/v1\nkind: Pod\nmetadata:\n  name: huge\n  namespace: ns\n  labels:\n")
	for i := 0; huge.Len() < 50<<20; i++ {
		fmt.Fprintf(&huge, "    k%d: v\n", i)
	}
	writeFile(t, b, "pods/ns/huge.yaml", huge.Bytes())
	huge = bytes.Buffer{}
	require.NoError(t, s.Poll(ctx))
	assert.Equal(t, []string{"ns/ok"}, listNames(t, s))
	grown := int64(heapAlloc()) - int64(base)
	t.Logf("heap grew by %d KiB with the planted file", grown>>10)
	assert.Less(t, grown, int64(16<<20), "the huge file is not held (nor decoded)")

	require.NoError(t, b.Delete(ctx, "pods/ns/huge.yaml", backend.DeleteOptions{}))
	require.NoError(t, s.Poll(ctx))
	grown = int64(heapAlloc()) - int64(base)
	assert.Less(t, grown, int64(16<<20), "nothing is left of it after it is gone")
}

// TestEventLogBytesBound: many versions of big objects are not all kept by
// the event log: it holds at most EventLogBytes of them, and memory goes
// back down after the object is deleted.
func TestEventLogBytesBound(t *testing.T) {
	ctx := context.Background()
	const (
		objSize  = 512 << 10
		logBytes = 4 << 20
	)
	cfg := podConfig(backends{"a": localBackend(t)}, "a")
	cfg.EventLogBytes = logBytes
	s := startStore(t, cfg)
	base := heapAlloc()
	require.NoError(t, s.Create(ctx, podKey("ns", "p"), bigPod("ns", "p", objSize, 'a'), &example.Pod{}, 0))
	for i := range 60 {
		require.NoError(t, s.GuaranteedUpdate(ctx, podKey("ns", "p"), &example.Pod{}, false, nil,
			func(in k8sruntime.Object, _ storage.ResponseMeta) (k8sruntime.Object, *uint64, error) {
				p := in.(*example.Pod)
				p.Annotations["big"] = strings.Repeat(string(rune('a'+i%26)), objSize-i)
				return p, nil, nil
			}, nil))
	}
	s.mu.RLock()
	held, n := s.log.bytes, len(s.log.events)
	s.mu.RUnlock()
	assert.LessOrEqual(t, held, int64(logBytes))
	assert.Less(t, n, 20, "most of the 61 versions were dropped")
	grown := int64(heapAlloc()) - int64(base)
	t.Logf("heap grew by %d KiB for 61 versions of a %d KiB object, log %d KiB in %d events", grown>>10, objSize>>10, held>>10, n)
	// Without the bound: 61 versions of half a MiB, twice (file and object).
	assert.Less(t, grown, int64(24<<20))

	require.NoError(t, s.Delete(ctx, podKey("ns", "p"), &example.Pod{}, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{}))
	// Small changes after the delete push its versions out of the log.
	for i := range 20 {
		require.NoError(t, s.Create(ctx, podKey("ns", fmt.Sprintf("s%d", i)), pod("ns", fmt.Sprintf("s%d", i)), &example.Pod{}, 0))
	}
	_ = s.Len()
	after := int64(heapAlloc()) - int64(base)
	t.Logf("heap after the delete: %d KiB over the start", after>>10)
	assert.Less(t, after, int64(8<<20), "memory returns after the object is deleted")

	// A watcher from before the dropped history is told to relist.
	w, err := s.Watch(ctx, "/pods", storage.ListOptions{ResourceVersion: "1", Recursive: true, Predicate: storage.Everything})
	if err == nil {
		evs := nextEvents(t, w, 1)
		assert.Equal(t, watch.Error, evs[0].Type)
		w.Stop()
	}
}

// TestDecodeErrorsDoNotQuoteFiles: whatever a skipped file holds, the
// warning names the file and the kind of error, never its content.
func TestDecodeErrorsDoNotQuoteFiles(t *testing.T) {
	const secret = "TOP-SECRET-OUTSIDE-CONTENT"
	for _, tc := range []struct {
		name string
		data string
	}{
		{"JSON without kind", `{"password": "` + secret + `"}`},
		{"YAML without kind", "password: " + secret + "\n"},
		{"broken YAML", "password: [" + secret + "\n  - : :\n"},
		{"unknown kind", "apiVersion: " + secret + "/v1\nkind: " + secret + "\n"},
		{"wrong type", "apiVersion: example.apiserver.k8s.io/v1\nkind: Pod\nmetadata:\n  name: [" + secret + "]\n"},
		{"binary", "\x00\x01" + secret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := localBackend(t)
			writeFile(t, b, "pods/ns/bad.yaml", []byte(tc.data))
			var logs logBuffer
			cfg := podConfig(backends{"a": b}, "a")
			logs.config(&cfg)
			s := startStore(t, cfg)
			assert.Empty(t, listNames(t, s))
			out := logs.String()
			assert.Contains(t, out, "pods/ns/bad.yaml")
			assert.Contains(t, out, `"reason"="decode"`)
			assert.NotContains(t, out, secret)
			assert.NotContains(t, out, "password")
		})
	}
}

// canonicalIn marks the files of some storages canonical.
type canonicalIn map[string]bool

func (c canonicalIn) Admit(storageID, file string, obj k8sruntime.Object) (string, error) {
	return pathAdmitter{}.Admit(storageID, file, obj)
}

func (c canonicalIn) Canonical(storageID, _ string, _ k8sruntime.Object) bool { return c[storageID] }

// TestDuplicatesResolvedDeterministically: whichever file of two claiming
// one key is read first, the same one is served: a canonical file, else the
// first by storage and key; the loser is counted.
func TestDuplicatesResolvedDeterministically(t *testing.T) {
	for _, tc := range []struct {
		name      string
		canonical canonicalIn
		firstSeen string // the storage whose file exists first
		want      string
	}{
		{"none canonical, first by storage read first", nil, "a", "a"},
		{"none canonical, first by storage read last", nil, "b", "a"},
		{"canonical second by storage, read first", canonicalIn{"b": true}, "b", "b"},
		{"canonical second by storage, read last", canonicalIn{"b": true}, "a", "b"},
		{"both canonical", canonicalIn{"a": true, "b": true}, "b", "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			bs := backends{"a": localBackend(t), "b": localBackend(t)}
			other := map[string]string{"a": "b", "b": "a"}[tc.firstSeen]
			writeFile(t, bs[tc.firstSeen], "pods/ns/p.yaml", encodePod(t, pod("ns", "p", "from", tc.firstSeen)))
			cfg := podConfig(bs, "a")
			if tc.canonical != nil {
				cfg.Admitter = tc.canonical
			}
			s := startStore(t, cfg)
			before, _ := testutil.GetCounterMetricValue(skippedFiles.WithLabelValues("pods", skipDuplicate))
			writeFile(t, bs[other], "pods/ns/p.yaml", encodePod(t, pod("ns", "p", "from", other)))
			require.NoError(t, s.Poll(ctx))
			after, _ := testutil.GetCounterMetricValue(skippedFiles.WithLabelValues("pods", skipDuplicate))
			assert.Equal(t, before+1, after, "the loser is counted")
			got := &example.Pod{}
			require.NoError(t, s.Get(ctx, podKey("ns", "p"), storage.GetOptions{}, got))
			assert.Equal(t, tc.want, got.Labels["from"])

			// A restart (both files present from the start) agrees.
			for range 3 {
				s2 := startStore(t, cfg)
				require.NoError(t, s2.Get(ctx, podKey("ns", "p"), storage.GetOptions{}, got))
				assert.Equal(t, tc.want, got.Labels["from"])
				s2.Stop()
			}

			// The winner gone, the other is served.
			require.NoError(t, bs[tc.want].Delete(ctx, "pods/ns/p.yaml", backend.DeleteOptions{}))
			require.NoError(t, s.Poll(ctx))
			require.NoError(t, s.Get(ctx, podKey("ns", "p"), storage.GetOptions{}, got))
			assert.Equal(t, other2(tc.want), got.Labels["from"])
		})
	}
}

func other2(s string) string { return map[string]string{"a": "b", "b": "a"}[s] }

// TestBogusResourceVersionIs400: an unparsable resourceVersion (or match)
// is the client's mistake.
func TestBogusResourceVersionIs400(t *testing.T) {
	ctx := context.Background()
	s := startStore(t, podConfig(backends{"a": localBackend(t)}, "a"))
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"watch", func() error {
			w, err := s.Watch(ctx, "/pods", storage.ListOptions{ResourceVersion: "bogus", Recursive: true, Predicate: storage.Everything})
			if w != nil {
				w.Stop()
			}
			return err
		}},
		{"watch of one object", func() error {
			_, err := s.Watch(ctx, podKey("ns", "p"), storage.ListOptions{ResourceVersion: "-1", Predicate: storage.Everything})
			return err
		}},
		{"list", func() error {
			return s.GetList(ctx, "/pods", storage.ListOptions{ResourceVersion: "bogus", Recursive: true, Predicate: storage.Everything}, &example.PodList{})
		}},
		{"list with an unknown match", func() error {
			return s.GetList(ctx, "/pods", storage.ListOptions{ResourceVersion: "1", ResourceVersionMatch: "Sometimes", Recursive: true, Predicate: storage.Everything}, &example.PodList{})
		}},
		{"get", func() error {
			return s.Get(ctx, podKey("ns", "p"), storage.GetOptions{ResourceVersion: "bogus"}, &example.Pod{})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			require.Error(t, err)
			assert.True(t, apierrors.IsBadRequest(err), "got %T %v", err, err)
		})
	}
}

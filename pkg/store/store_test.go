package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/component-base/metrics/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"kubestash.dev/kubestash/pkg/backend"
)

func pod(ns, name string, labels ...string) *example.Pod {
	p := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if len(labels) == 2 {
		p.Labels = map[string]string{labels[0]: labels[1]}
	}
	return p
}

func podKey(ns, name string) string { return "/pods/" + ns + "/" + name }

func localBackend(t *testing.T) backend.Backend {
	b, err := backend.NewLocal(t.TempDir())
	require.NoError(t, err)
	return b
}

// writeFile puts a file in a backend behind the store's back, as another
// cluster or a person would.
func writeFile(t *testing.T, b backend.Backend, key string, data []byte) {
	t.Helper()
	_, err := b.Put(context.Background(), key, data, backend.PutOptions{})
	require.NoError(t, err)
}

func encodePod(t *testing.T, p *example.Pod) []byte {
	t.Helper()
	data, err := runtime.Encode(podCodec, p)
	require.NoError(t, err)
	return data
}

func listNames(t *testing.T, s *Store) []string {
	t.Helper()
	out := &example.PodList{}
	require.NoError(t, s.GetList(context.Background(), "/pods", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, out))
	names := make([]string, 0, len(out.Items))
	for _, p := range out.Items {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	return names
}

// nextEvents reads n events, failing after a timeout.
func nextEvents(t *testing.T, w watch.Interface, n int) []watch.Event {
	t.Helper()
	var evs []watch.Event
	for len(evs) < n {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed after %d of %d events: %v", len(evs), n, evs)
			}
			evs = append(evs, ev)
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d of %d events: %v", len(evs), n, evs)
		}
	}
	return evs
}

type typedName struct {
	Type watch.EventType
	Name string
}

func typedNames(evs []watch.Event) []typedName {
	out := make([]typedName, 0, len(evs))
	for _, ev := range evs {
		p, _ := ev.Object.(*example.Pod)
		name := ""
		if p != nil {
			name = p.Namespace + "/" + p.Name
		}
		out = append(out, typedName{ev.Type, name})
	}
	return out
}

func TestResourceVersions(t *testing.T) {
	base := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		clock  []time.Time // the clock at each allocation
		expect []uint64
	}{{
		name:   "follows the clock",
		clock:  []time.Time{base.Add(time.Second), base.Add(2 * time.Second)},
		expect: []uint64{uint64(base.Add(time.Second).UnixMicro()), uint64(base.Add(2 * time.Second).UnixMicro())},
	}, {
		name:   "clock stands still",
		clock:  []time.Time{base, base, base},
		expect: []uint64{uint64(base.UnixMicro()) + 1, uint64(base.UnixMicro()) + 2, uint64(base.UnixMicro()) + 3},
	}, {
		name:   "clock goes back",
		clock:  []time.Time{base.Add(time.Second), base},
		expect: []uint64{uint64(base.Add(time.Second).UnixMicro()), uint64(base.Add(time.Second).UnixMicro()) + 1},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(base)
			cfg := podConfig(backends{"a": localBackend(t)}, "a")
			cfg.Clock = clk
			s, err := New(cfg)
			require.NoError(t, err)
			var got []uint64
			for _, now := range tt.clock {
				clk.SetTime(now)
				got = append(got, s.nextRVLocked())
			}
			assert.Equal(t, tt.expect, got)
		})
	}
}

func TestSkipsFilesItCannotServe(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		data   []byte
		reason string
	}{
		{"not YAML", "pods/ns/garbage.yaml", []byte("\x00\x01 not yaml {"), skipDecode},
		{"unknown kind", "pods/ns/foreign.yaml", []byte("apiVersion: example.com/v9\nkind: Thing\nmetadata:\n  name: x\n"), skipDecode},
		{"another kind", "pods/ns/options.yaml", []byte("apiVersion: v1\nkind: Status\nmessage: not a pod\n"), skipKind},
		{"refused", "pods/forbidden/p.yaml", nil, skipAdmit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := localBackend(t)
			data := tt.data
			if data == nil {
				data = encodePod(t, pod("forbidden", "p"))
			}
			writeFile(t, b, tt.file, data)
			writeFile(t, b, "pods/ns/good.yaml", encodePod(t, pod("ns", "good")))
			before, _ := testutil.GetCounterMetricValue(skippedFiles.WithLabelValues("pods", tt.reason))

			cfg := podConfig(backends{"a": b}, "a")
			cfg.Admitter = refuseNamespace{"forbidden"}
			s := startStore(t, cfg)

			assert.Equal(t, []string{"ns/good"}, listNames(t, s))
			after, _ := testutil.GetCounterMetricValue(skippedFiles.WithLabelValues("pods", tt.reason))
			assert.Equal(t, before+1, after, "counted as %s", tt.reason)
			got, _, err := b.Get(context.Background(), tt.file)
			require.NoError(t, err, "the file is left alone")
			assert.Equal(t, data, got)

			// Unchanged, it is not read (nor counted) again.
			require.NoError(t, s.Poll(context.Background()))
			again, _ := testutil.GetCounterMetricValue(skippedFiles.WithLabelValues("pods", tt.reason))
			assert.Equal(t, after, again)

			// A create over it is a conflict, and does not overwrite it.
			if tt.reason != skipAdmit {
				key, err := fileToKey(tt.file)
				require.NoError(t, err)
				p := pod("ns", key[len("/pods/ns/"):])
				err = s.Create(context.Background(), key, p, &example.Pod{}, 0)
				assert.True(t, apierrors.IsConflict(err), "got %v", err)
				got, _, err = b.Get(context.Background(), tt.file)
				require.NoError(t, err)
				assert.Equal(t, data, got)
			}
		})
	}
}

// refuseNamespace admits by path, except objects of one namespace.
type refuseNamespace struct{ ns string }

func (r refuseNamespace) Admit(storageID, file string, obj runtime.Object) (string, error) {
	if obj.(*example.Pod).Namespace == r.ns {
		return "", fmt.Errorf("namespace %s is not allowed by storage %s", r.ns, storageID)
	}
	return pathAdmitter{}.Admit(storageID, file, obj)
}

// TestPollSeesOtherWriters: changes made through another store, or by hand,
// reach this store's index and watchers at the next poll; only changed files
// are read.
func TestPollSeesOtherWriters(t *testing.T) {
	for _, bk := range backendKinds() {
		t.Run(bk.name, func(t *testing.T) {
			ctx := context.Background()
			b := bk.new(t)
			counting := &countingBackend{Backend: b}
			other := startStore(t, podConfig(backends{"a": b}, "a"))
			s := startStore(t, podConfig(backends{"a": counting}, "a"))

			w, err := s.Watch(ctx, "/pods", storage.ListOptions{Recursive: true, Predicate: storage.Everything})
			require.NoError(t, err)
			defer w.Stop()

			created := &example.Pod{}
			require.NoError(t, other.Create(ctx, podKey("ns", "a"), pod("ns", "a"), created, 0))
			require.NoError(t, other.Create(ctx, podKey("ns", "b"), pod("ns", "b"), &example.Pod{}, 0))
			require.NoError(t, s.Poll(ctx))
			assert.ElementsMatch(t, []typedName{{watch.Added, "ns/a"}, {watch.Added, "ns/b"}}, typedNames(nextEvents(t, w, 2)))

			counting.gets.Store(0)
			require.NoError(t, other.GuaranteedUpdate(ctx, podKey("ns", "a"), &example.Pod{}, false, nil,
				storage.SimpleUpdate(func(obj runtime.Object) (runtime.Object, error) {
					obj.(*example.Pod).Labels = map[string]string{"v": "2"}
					return obj, nil
				}), nil))
			writeFile(t, b, "pods/ns/c.yaml", encodePod(t, pod("ns", "c"))) // by hand
			require.NoError(t, other.Delete(ctx, podKey("ns", "b"), &example.Pod{}, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{}))
			require.NoError(t, s.Poll(ctx))
			evs := nextEvents(t, w, 3)
			assert.ElementsMatch(t, []typedName{{watch.Modified, "ns/a"}, {watch.Added, "ns/c"}, {watch.Deleted, "ns/b"}}, typedNames(evs))
			assert.EqualValues(t, 2, counting.gets.Load(), "reads only the changed and new files")

			got := &example.Pod{}
			require.NoError(t, s.Get(ctx, podKey("ns", "a"), storage.GetOptions{}, got))
			assert.Equal(t, "2", got.Labels["v"])
			assert.NotEqual(t, created.ResourceVersion, got.ResourceVersion)

			counting.gets.Store(0)
			require.NoError(t, s.Poll(ctx))
			assert.EqualValues(t, 0, counting.gets.Load(), "nothing changed, nothing read")
			assert.Equal(t, []string{"ns/a", "ns/c"}, listNames(t, s))
		})
	}
}

// TestConflictWithOtherWriter: two stores update one object without polling;
// the second's conditional write fails, it reads the file, calls tryUpdate
// on the other's version, and no update is lost.
func TestConflictWithOtherWriter(t *testing.T) {
	for _, bk := range backendKinds() {
		t.Run(bk.name, func(t *testing.T) {
			ctx := context.Background()
			b := bk.new(t)
			s1 := startStore(t, podConfig(backends{"a": b}, "a"))
			require.NoError(t, s1.Create(ctx, podKey("ns", "a"), pod("ns", "a"), &example.Pod{}, 0))
			s2 := startStore(t, podConfig(backends{"a": b}, "a"))

			addLabel := func(k string) storage.UpdateFunc {
				return storage.SimpleUpdate(func(obj runtime.Object) (runtime.Object, error) {
					p := obj.(*example.Pod)
					if p.Labels == nil {
						p.Labels = map[string]string{}
					}
					p.Labels[k] = "yes"
					return p, nil
				})
			}
			require.NoError(t, s1.GuaranteedUpdate(ctx, podKey("ns", "a"), &example.Pod{}, false, nil, addLabel("one"), nil))
			out := &example.Pod{}
			require.NoError(t, s2.GuaranteedUpdate(ctx, podKey("ns", "a"), out, false, nil, addLabel("two"), nil))
			assert.Equal(t, map[string]string{"one": "yes", "two": "yes"}, out.Labels)

			// An update with a stale resourceVersion precondition is a conflict.
			stale := "1"
			err := s1.GuaranteedUpdate(ctx, podKey("ns", "a"), &example.Pod{}, false, &storage.Preconditions{ResourceVersion: &stale}, addLabel("three"), nil)
			assert.True(t, storage.IsInvalidObj(err), "got %v", err)

			// s1 deletes what s2 changed: it learns the change first.
			deleted := &example.Pod{}
			require.NoError(t, s1.Delete(ctx, podKey("ns", "a"), deleted, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{}))
			assert.Equal(t, map[string]string{"one": "yes", "two": "yes"}, deleted.Labels)
			// s2 still indexes it; its delete finds the file gone.
			err = s2.Delete(ctx, podKey("ns", "a"), &example.Pod{}, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{})
			assert.True(t, storage.IsNotFound(err), "got %v", err)
			assert.Empty(t, listNames(t, s2))
		})
	}
}

func TestBackendUnavailable(t *testing.T) {
	ctx := context.Background()
	fb := &flakyBackend{Backend: localBackend(t)}
	s := startStore(t, podConfig(backends{"a": fb}, "a"))
	require.NoError(t, s.Create(ctx, podKey("ns", "a"), pod("ns", "a"), &example.Pod{}, 0))
	before := &example.PodList{}
	require.NoError(t, s.GetList(ctx, "/pods", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, before))

	fb.down.Store(true)
	writes := map[string]func() error{
		"create": func() error { return s.Create(ctx, podKey("ns", "b"), pod("ns", "b"), &example.Pod{}, 0) },
		"update": func() error {
			return s.GuaranteedUpdate(ctx, podKey("ns", "a"), &example.Pod{}, false, nil,
				storage.SimpleUpdate(func(obj runtime.Object) (runtime.Object, error) {
					obj.(*example.Pod).Labels = map[string]string{"x": "y"}
					return obj, nil
				}), nil)
		},
		"delete": func() error {
			return s.Delete(ctx, podKey("ns", "a"), &example.Pod{}, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{})
		},
	}
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			err := write()
			require.Error(t, err)
			assert.True(t, apierrors.IsServiceUnavailable(err), "got %v", err)
			assert.Contains(t, err.Error(), "unavailable")
			after := &example.PodList{}
			require.NoError(t, s.GetList(ctx, "/pods", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, after))
			assert.Equal(t, before, after, "index unchanged, reads still served")
		})
	}
	assert.Error(t, s.Poll(ctx), "a poll fails")
	assert.Equal(t, []string{"ns/a"}, listNames(t, s), "and leaves the index alone")
	assert.Error(t, s.Status()["a"].LastError)

	fb.down.Store(false)
	require.NoError(t, s.Create(ctx, podKey("ns", "b"), pod("ns", "b"), &example.Pod{}, 0))
	require.NoError(t, s.Poll(ctx))
	assert.NoError(t, s.Status()["a"].LastError)
	assert.Equal(t, []string{"ns/a", "ns/b"}, listNames(t, s))
}

func TestAddAndRemoveStorage(t *testing.T) {
	for _, bk := range backendKinds() {
		t.Run(bk.name, func(t *testing.T) {
			ctx := context.Background()
			a, bb := bk.new(t), bk.new(t)
			writeFile(t, a, "pods/ns/a.yaml", encodePod(t, pod("ns", "a")))
			writeFile(t, bb, "pods/ns/b1.yaml", encodePod(t, pod("ns", "b1")))
			writeFile(t, bb, "pods/other/b2.yaml", encodePod(t, pod("other", "b2")))
			bs := backends{"a": a}
			s := startStore(t, podConfig(bs, "a"))
			assert.Equal(t, []string{"ns/a"}, listNames(t, s))

			w, err := s.Watch(ctx, "/pods", storage.ListOptions{Recursive: true, Predicate: storage.Everything, ResourceVersion: mustRV(t, s)})
			require.NoError(t, err)
			defer w.Stop()

			bs["b"] = bb // Backends resolve it from now on
			require.NoError(t, s.AddStorage(ctx, "b"))
			// Files are read in parallel: the order of their events is not fixed.
			assert.ElementsMatch(t, []typedName{{watch.Added, "ns/b1"}, {watch.Added, "other/b2"}}, typedNames(nextEvents(t, w, 2)))
			assert.Equal(t, []string{"ns/a", "ns/b1", "other/b2"}, listNames(t, s))
			assert.True(t, s.Status()["b"].Loaded)

			s.RemoveStorage("b")
			assert.Equal(t, []typedName{{watch.Deleted, "ns/b1"}, {watch.Deleted, "other/b2"}}, typedNames(nextEvents(t, w, 2)))
			assert.Equal(t, []string{"ns/a"}, listNames(t, s))
			_, _, err = bb.Get(ctx, "pods/ns/b1.yaml")
			assert.NoError(t, err, "removing a storage leaves its files")
			_, ok := s.Status()["b"]
			assert.False(t, ok)

			// Writes into a storage the store does not serve are refused.
			s.cfg.Locator = pathLocator{storage: "b"}
			err = s.Create(ctx, podKey("ns", "x"), pod("ns", "x"), &example.Pod{}, 0)
			assert.True(t, apierrors.IsServiceUnavailable(err), "got %v", err)
		})
	}
}

func mustRV(t *testing.T, s *Store) string {
	rv, err := s.GetCurrentResourceVersion(context.Background())
	require.NoError(t, err)
	return fmt.Sprint(rv)
}

func TestWriteErrorsAreClientErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		locator Locator
		key     string
		check   func(error) bool
		message string
	}{
		{"locator error", locatorFunc(func(string, runtime.Object) (Location, error) {
			return Location{}, errors.New("repository demo/repo is unknown")
		}), podKey("ns", "a"), apierrors.IsBadRequest, "repository demo/repo is unknown"},
		{"locator status", locatorFunc(func(string, runtime.Object) (Location, error) {
			return Location{}, apierrors.NewServiceUnavailable("storage not ready")
		}), podKey("ns", "a"), apierrors.IsServiceUnavailable, "storage not ready"},
		{"read back under another key", locatorFunc(func(string, runtime.Object) (Location, error) {
			return Location{Storage: "a", Key: "pods/ns/other.yaml"}, nil
		}), podKey("ns", "a"), apierrors.IsBadRequest, "read back as /pods/ns/other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := localBackend(t)
			cfg := podConfig(backends{"a": b}, "a")
			cfg.Locator = tt.locator
			s := startStore(t, cfg)
			err := s.Create(ctx, tt.key, pod("ns", "a"), &example.Pod{}, 0)
			require.Error(t, err)
			assert.True(t, tt.check(err), "got %v", err)
			assert.Contains(t, err.Error(), tt.message)
			res, err := b.List(ctx, "", backend.ListOptions{})
			require.NoError(t, err)
			assert.Empty(t, res.Objects, "nothing written")
		})
	}

	t.Run("update that moves the object", func(t *testing.T) {
		cfg := podConfig(backends{"a": localBackend(t)}, "a")
		s := startStore(t, cfg)
		require.NoError(t, s.Create(ctx, podKey("ns", "a"), pod("ns", "a"), &example.Pod{}, 0))
		s.cfg.Locator = locatorFunc(func(string, runtime.Object) (Location, error) {
			return Location{Storage: "a", Key: "elsewhere.yaml"}, nil
		})
		err := s.GuaranteedUpdate(ctx, podKey("ns", "a"), &example.Pod{}, false, nil,
			storage.SimpleUpdate(func(obj runtime.Object) (runtime.Object, error) {
				obj.(*example.Pod).Labels = map[string]string{"x": "y"}
				return obj, nil
			}), nil)
		assert.True(t, apierrors.IsBadRequest(err), "got %v", err)
		// A locator that fails does not block updates of existing objects.
		s.cfg.Locator = locatorFunc(func(string, runtime.Object) (Location, error) {
			return Location{}, errors.New("repository gone")
		})
		require.NoError(t, s.GuaranteedUpdate(ctx, podKey("ns", "a"), &example.Pod{}, false, nil,
			storage.SimpleUpdate(func(obj runtime.Object) (runtime.Object, error) {
				obj.(*example.Pod).Finalizers = nil
				obj.(*example.Pod).Labels = map[string]string{"x": "z"}
				return obj, nil
			}), nil))
	})
}

type locatorFunc func(key string, obj runtime.Object) (Location, error)

func (f locatorFunc) Locate(_ context.Context, key string, obj runtime.Object) (Location, error) {
	return f(key, obj)
}

// TestSlowWatcherDoesNotBlockWriters: a watcher whose client does not read
// holds nobody up; once the log has moved past it, it ends with 410 Gone.
func TestSlowWatcherDoesNotBlockWriters(t *testing.T) {
	ctx := context.Background()
	cfg := podConfig(backends{"a": localBackend(t)}, "a")
	cfg.EventLogSize = 10
	s := startStore(t, cfg)
	w, err := s.Watch(ctx, "/pods", storage.ListOptions{Recursive: true, Predicate: storage.Everything, ResourceVersion: mustRV(t, s)})
	require.NoError(t, err)
	defer w.Stop()

	n := watchResultBuffer + watchBatch + 50
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if err := s.Create(ctx, podKey("ns", fmt.Sprintf("p%03d", i)), pod("ns", fmt.Sprintf("p%03d", i)), &example.Pod{}, 0); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("writers were blocked by a watcher")
	}

	var last watch.Event
	count := 0
	for ev := range w.ResultChan() {
		last = ev
		count++
	}
	assert.Less(t, count, n+1, "not everything was delivered")
	require.Equal(t, watch.Error, last.Type)
	assert.EqualValues(t, 410, last.Object.(*metav1.Status).Code)

	// Watching from a version older than the log: 410 at once.
	w2, err := s.Watch(ctx, "/pods", storage.ListOptions{Recursive: true, Predicate: storage.Everything, ResourceVersion: "1"})
	require.NoError(t, err)
	ev := nextEvents(t, w2, 1)[0]
	assert.Equal(t, watch.Error, ev.Type)
	assert.Positive(t, s.CompactRevision())
}

// TestRestartBuildsTheSameIndex: a new store over the same files serves the
// same objects, under new resourceVersions.
func TestRestartBuildsTheSameIndex(t *testing.T) {
	for _, bk := range backendKinds() {
		t.Run(bk.name, func(t *testing.T) {
			ctx := context.Background()
			b := bk.new(t)
			s1 := startStore(t, podConfig(backends{"a": b}, "a"))
			for i := range 30 {
				require.NoError(t, s1.Create(ctx, podKey(fmt.Sprintf("ns%d", i%3), fmt.Sprintf("p%d", i)), pod(fmt.Sprintf("ns%d", i%3), fmt.Sprintf("p%d", i), "i", fmt.Sprint(i)), &example.Pod{}, 0))
			}
			require.NoError(t, s1.Delete(ctx, podKey("ns0", "p0"), &example.Pod{}, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{}))
			before := &example.PodList{}
			require.NoError(t, s1.GetList(ctx, "/pods", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, before))
			s1.Stop()

			s2 := startStore(t, podConfig(backends{"a": b}, "a"))
			after := &example.PodList{}
			require.NoError(t, s2.GetList(ctx, "/pods", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, after))
			assert.Greater(t, after.ResourceVersion, before.ResourceVersion, "versions grow across restarts")
			require.Len(t, after.Items, 29)
			for i := range before.Items {
				before.Items[i].ResourceVersion, after.Items[i].ResourceVersion = "", ""
			}
			assert.Equal(t, before.Items, after.Items)
		})
	}
}

// TestDuplicateKeys: two storages hold a file for the same key; one is
// served, the other counted as a duplicate, and served once the first goes.
func TestDuplicateKeys(t *testing.T) {
	for _, bk := range backendKinds() {
		t.Run(bk.name, func(t *testing.T) {
			ctx := context.Background()
			a, b := bk.new(t), bk.new(t)
			writeFile(t, a, "pods/ns/p.yaml", encodePod(t, pod("ns", "p", "from", "a")))
			writeFile(t, b, "pods/ns/p.yaml", encodePod(t, pod("ns", "p", "from", "b")))
			before, _ := testutil.GetCounterMetricValue(skippedFiles.WithLabelValues("pods", skipDuplicate))
			s := startStore(t, podConfig(backends{"a": a, "b": b}, "a"))
			after, _ := testutil.GetCounterMetricValue(skippedFiles.WithLabelValues("pods", skipDuplicate))
			assert.Equal(t, before+1, after)

			got := &example.Pod{}
			require.NoError(t, s.Get(ctx, podKey("ns", "p"), storage.GetOptions{}, got))
			first := got.Labels["from"]

			served := map[string]backend.Backend{"a": a, "b": b}[first]
			require.NoError(t, served.Delete(ctx, "pods/ns/p.yaml", backend.DeleteOptions{}))
			require.NoError(t, s.Poll(ctx))
			require.NoError(t, s.Get(ctx, podKey("ns", "p"), storage.GetOptions{}, got))
			assert.NotEqual(t, first, got.Labels["from"])
		})
	}
}

func TestExactListFromHistory(t *testing.T) {
	ctx := context.Background()
	s := startStore(t, podConfig(backends{"a": localBackend(t)}, "a"))
	require.NoError(t, s.Create(ctx, podKey("ns", "a"), pod("ns", "a", "v", "1"), &example.Pod{}, 0))
	require.NoError(t, s.Create(ctx, podKey("ns", "b"), pod("ns", "b"), &example.Pod{}, 0))
	at := mustRV(t, s)
	require.NoError(t, s.GuaranteedUpdate(ctx, podKey("ns", "a"), &example.Pod{}, false, nil,
		storage.SimpleUpdate(func(obj runtime.Object) (runtime.Object, error) {
			obj.(*example.Pod).Labels = map[string]string{"v": "2"}
			return obj, nil
		}), nil))
	require.NoError(t, s.Delete(ctx, podKey("ns", "b"), &example.Pod{}, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{}))
	require.NoError(t, s.Create(ctx, podKey("ns", "c"), pod("ns", "c"), &example.Pod{}, 0))

	tests := []struct {
		name  string
		rv    string
		match metav1.ResourceVersionMatch
		want  []string
		label string
	}{
		{"current", "", "", []string{"ns/a", "ns/c"}, "2"},
		{"exact, before the changes", at, metav1.ResourceVersionMatchExact, []string{"ns/a", "ns/b"}, "1"},
		{"not older than, the current state", at, metav1.ResourceVersionMatchNotOlderThan, []string{"ns/a", "ns/c"}, "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &example.PodList{}
			require.NoError(t, s.GetList(ctx, "/pods/ns", storage.ListOptions{Recursive: true, Predicate: storage.Everything, ResourceVersion: tt.rv, ResourceVersionMatch: tt.match}, out))
			var names []string
			for _, p := range out.Items {
				names = append(names, p.Namespace+"/"+p.Name)
			}
			assert.Equal(t, tt.want, names)
			assert.Equal(t, tt.label, out.Items[0].Labels["v"])
			if tt.match == metav1.ResourceVersionMatchExact {
				assert.Equal(t, tt.rv, out.ResourceVersion)
			}
		})
	}
}

func TestStorageDecorator(t *testing.T) {
	var got *Store
	cfg := podConfig(backends{"a": localBackend(t)}, "a")
	cfg.Codec, cfg.NewFunc, cfg.NewListFunc, cfg.ResourcePrefix = nil, nil, nil, ""
	decorator := NewStorageDecorator(cfg, func(s *Store) { got = s })
	rc := &storagebackend.ConfigForResource{Config: storagebackend.Config{Codec: podCodec}}
	si, destroy, err := decorator(rc, "/pods", nil, newPod, newPodList, nil, nil, nil)
	require.NoError(t, err)
	defer destroy()
	require.Same(t, got, si)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, got.WaitReady(ctx))
	require.NoError(t, si.ReadinessCheck())
	require.NoError(t, si.Create(ctx, podKey("ns", "a"), pod("ns", "a"), &example.Pod{}, 0))
	destroy()
	destroy() // twice is fine
}

// flakyBackend fails every call as unavailable while down.
type flakyBackend struct {
	backend.Backend
	down atomic.Bool
}

func (f *flakyBackend) fail(op, key string) error {
	if f.down.Load() {
		return &backend.Error{Op: op, Key: key, Kind: backend.ErrUnavailable, Err: errors.New("connection refused")}
	}
	return nil
}

func (f *flakyBackend) Get(ctx context.Context, key string) ([]byte, backend.Object, error) {
	if err := f.fail("get", key); err != nil {
		return nil, backend.Object{}, err
	}
	return f.Backend.Get(ctx, key)
}

func (f *flakyBackend) Put(ctx context.Context, key string, data []byte, o backend.PutOptions) (backend.Object, error) {
	if err := f.fail("put", key); err != nil {
		return backend.Object{}, err
	}
	return f.Backend.Put(ctx, key, data, o)
}

func (f *flakyBackend) Delete(ctx context.Context, key string, o backend.DeleteOptions) error {
	if err := f.fail("delete", key); err != nil {
		return err
	}
	return f.Backend.Delete(ctx, key, o)
}

func (f *flakyBackend) List(ctx context.Context, prefix string, o backend.ListOptions) (backend.ListResult, error) {
	if err := f.fail("list", prefix); err != nil {
		return backend.ListResult{}, err
	}
	return f.Backend.List(ctx, prefix, o)
}

// countingBackend counts reads.
type countingBackend struct {
	backend.Backend
	gets atomic.Int64
}

func (c *countingBackend) Get(ctx context.Context, key string) ([]byte, backend.Object, error) {
	c.gets.Add(1)
	return c.Backend.Get(ctx, key)
}

// TestVersionsOfAnotherReplica: two stores over one backend (two replicas
// of the catalog server) number their own versions. A version one gave out
// is not the other's: a watch or an exact list from it on the other gets
// 410 Gone, so that its client relists there instead of getting the
// other's events after it, which could skip a change; versions of its own
// still serve.
func TestVersionsOfAnotherReplica(t *testing.T) {
	ctx := context.Background()
	b := backendKinds()[0].new(t)
	replicaB := startStore(t, podConfig(backends{"a": b}, "a"))
	replicaA := startStore(t, podConfig(backends{"a": b}, "a"))
	fromA := &example.Pod{}
	require.NoError(t, replicaA.Create(ctx, podKey("ns", "p1"), pod("ns", "p1", "by", "a"), fromA, 0))
	time.Sleep(time.Millisecond)
	require.NoError(t, replicaB.Create(ctx, podKey("ns", "p2"), pod("ns", "p2", "by", "b"), &example.Pod{}, 0))
	require.NoError(t, replicaB.Poll(ctx))
	listB := &example.PodList{}
	require.NoError(t, replicaB.GetList(ctx, "/pods", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, listB))
	require.Len(t, listB.Items, 2, "B serves A's write after its poll")
	rvA, rvB := fromA.ResourceVersion, listB.ResourceVersion
	require.Less(t, rvA, rvB, "A's version falls inside B's history")

	tests := []struct {
		name, rv string
		expired  bool
	}{
		{name: "A's version on B", rv: rvA, expired: true},
		{name: "B's own version", rv: rvB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := replicaB.Watch(ctx, "/pods", storage.ListOptions{Recursive: true, Predicate: storage.Everything, ResourceVersion: tt.rv})
			require.NoError(t, err)
			defer w.Stop()
			if tt.expired {
				ev := nextEvents(t, w, 1)[0]
				require.Equal(t, watch.Error, ev.Type)
				assert.EqualValues(t, 410, ev.Object.(*metav1.Status).Code)
			} else {
				require.NoError(t, replicaB.Create(ctx, podKey("ns", "p3"), pod("ns", "p3", "by", "b"), &example.Pod{}, 0))
				ev := nextEvents(t, w, 1)[0]
				require.Equal(t, watch.Added, ev.Type, "B's own version watches on")
				assert.Equal(t, "p3", ev.Object.(*example.Pod).Name)
			}
			err = replicaB.GetList(ctx, "/pods", storage.ListOptions{Recursive: true, Predicate: storage.Everything,
				ResourceVersion: tt.rv, ResourceVersionMatch: metav1.ResourceVersionMatchExact}, &example.PodList{})
			if tt.expired {
				assert.True(t, apierrors.IsResourceExpired(err), "exact list at A's version on B: %v", err)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

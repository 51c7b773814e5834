package catalogstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/storage"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/layout"
)

// TestBackendDownMidWrite stops MinIO while a writer updates a Snapshot in a
// loop: writes then fail with a clear error, the index keeps serving what
// was last written, nothing half-written is in the bucket, and writes work
// again once MinIO is back.
func TestBackendDownMidWrite(t *testing.T) {
	ctx := context.Background()
	b := newS3(t, newBucketPrefix())
	st := newStores(t, b, 0)
	st.createRepo(t, repository("s3-repo", "/pvc-backup-demo"))
	st.createSnap(t, snapshot("snap-1", "s3-repo"))

	var acked atomic.Value // the phase of the last acknowledged write
	acked.Store("Pending")
	var writeErr error
	var inDoubt string // the phase of the write that failed
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			phase := fmt.Sprintf("Running-%d", i)
			if _, err := setPhase(ctx, st.snaps, "snap-1", "", phase); err != nil {
				writeErr, inDoubt = err, phase
				return
			}
			acked.Store(phase)
		}
	}()
	time.Sleep(300 * time.Millisecond) // let some writes land
	require.NoError(t, env.MinIO.Stop(10*time.Second))
	wg.Wait() // the writer stops at its first failure
	close(stop)

	require.Error(t, writeErr, "a write with MinIO down fails")
	assert.Contains(t, writeErr.Error(), "unavailable", "the error says the backend is unavailable: %v", writeErr)

	// Reads are served from the index: the last acknowledged write.
	var got catalog.Snapshot
	require.NoError(t, st.snaps.Get(ctx, snapKey("snap-1"), storage.GetOptions{}, &got))
	assert.Equal(t, acked.Load(), string(got.Status.Phase))
	var list catalog.SnapshotList
	require.NoError(t, st.snaps.GetList(ctx, snapPrefix+"/demo", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, &list))
	assert.Len(t, list.Items, 1)

	// A create fails too and leaves the index unchanged.
	err := st.snaps.Create(ctx, snapKey("snap-2"), snapshot("snap-2", "s3-repo"), &catalog.Snapshot{}, 0)
	require.Error(t, err)
	assert.True(t, storage.IsNotFound(st.snaps.Get(ctx, snapKey("snap-2"), storage.GetOptions{}, &catalog.Snapshot{})),
		"a failed create is not in the index")

	require.NoError(t, env.MinIO.Start(ctx))
	// The bucket holds a whole object: the acknowledged state, or the
	// write whose answer was lost when MinIO went down (a failed write's
	// outcome is unknown to any client, as with etcd).
	data, _, err := b.Get(ctx, "pvc-backup-demo/snapshots/snap-1.yaml")
	require.NoError(t, err)
	obj, _, err := layout.NewFileCodec(scheme).Decode(data, nil, nil)
	require.NoError(t, err, "the file decodes: nothing half-written")
	assert.Contains(t, []string{acked.Load().(string), inDoubt}, string(obj.(*catalog.Snapshot).Status.Phase))
	_, err = b.Stat(ctx, "pvc-backup-demo/snapshots/snap-2.yaml")
	assert.ErrorIs(t, err, backend.ErrNotFound)

	// Writes work again; one based on the index's view still lands after
	// an in-doubt write (the store rereads the file on the conflict).
	got2, err := setPhase(ctx, st.snaps, "snap-1", "", "Succeeded")
	require.NoError(t, err, "writes work again once MinIO is back")
	assert.Equal(t, "Succeeded", string(got2.Status.Phase))
	data, _, err = b.Get(ctx, "pvc-backup-demo/snapshots/snap-1.yaml")
	require.NoError(t, err)
	obj, _, err = layout.NewFileCodec(scheme).Decode(data, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "Succeeded", string(obj.(*catalog.Snapshot).Status.Phase), "index and bucket agree again")
}

// TestTwoStoresOneBucket runs two replicas over one bucket: each sees the
// other's writes after one poll, and of two concurrent updates of one object
// exactly one wins; the loser gets a Conflict and, retrying, loses nothing.
func TestTwoStoresOneBucket(t *testing.T) {
	ctx := context.Background()
	prefix := newBucketPrefix()
	a := newStores(t, newS3(t, prefix), 0)
	b := newStores(t, newS3(t, prefix), 0)

	a.createRepo(t, repository("s3-repo", "/shared"))
	require.NoError(t, b.repos.Poll(ctx))

	w, err := b.snaps.Watch(ctx, snapPrefix+"/demo", storage.ListOptions{ResourceVersion: "0", Recursive: true, Predicate: storage.Everything})
	require.NoError(t, err)
	defer w.Stop()

	a.createSnap(t, snapshot("from-a", "s3-repo"))
	require.NoError(t, b.snaps.Poll(ctx))
	select {
	case ev := <-w.ResultChan():
		assert.Equal(t, watch.Added, ev.Type)
		assert.Equal(t, "from-a", ev.Object.(*catalog.Snapshot).Name)
	case <-time.After(10 * time.Second):
		t.Fatal("b saw no event for a's write after a poll")
	}
	b.createSnap(t, snapshot("from-b", "s3-repo"))
	require.NoError(t, a.snaps.Poll(ctx))
	require.NoError(t, a.snaps.Get(ctx, snapKey("from-b"), storage.GetOptions{}, &catalog.Snapshot{}), "a sees b's write after a poll")

	// Concurrent updates: each client read the object from its replica.
	var fromA, fromB catalog.Snapshot
	require.NoError(t, a.snaps.Get(ctx, snapKey("from-a"), storage.GetOptions{}, &fromA))
	require.NoError(t, b.snaps.Get(ctx, snapKey("from-a"), storage.GetOptions{}, &fromB))
	var wg sync.WaitGroup
	var errA, errB error
	wg.Add(2)
	go func() { defer wg.Done(); _, errA = setPhase(ctx, a.snaps, "from-a", fromA.ResourceVersion, "Running") }()
	go func() { defer wg.Done(); _, errB = setPhase(ctx, b.snaps, "from-a", fromB.ResourceVersion, "Failed") }()
	wg.Wait()
	require.True(t, (errA == nil) != (errB == nil), "exactly one update wins: a=%v b=%v", errA, errB)
	loser, lost, won := b, errB, "Running"
	if errA != nil {
		loser, lost, won = a, errA, "Failed"
	}
	assert.True(t, apierrors.IsConflict(lost) || storage.IsConflict(lost), "the loser gets a Conflict, got %v", lost)

	// The loser rereads and applies its change on top: nothing lost.
	require.NoError(t, loser.snaps.Poll(ctx))
	var cur catalog.Snapshot
	require.NoError(t, loser.snaps.Get(ctx, snapKey("from-a"), storage.GetOptions{}, &cur))
	assert.Equal(t, won, string(cur.Status.Phase), "the loser's replica shows the winner's write")
	cur.Labels["retried"] = "true"
	out := &catalog.Snapshot{}
	require.NoError(t, loser.snaps.GuaranteedUpdate(ctx, snapKey("from-a"), out, false, nil,
		func(in runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
			s := in.(*catalog.Snapshot).DeepCopy()
			if s.Labels == nil {
				s.Labels = map[string]string{}
			}
			s.Labels["retried"] = "true"
			return s, nil, nil
		}, nil))
	assert.Equal(t, won, string(out.Status.Phase))
	assert.Equal(t, "true", out.Labels["retried"])
}

// TestRestartRebuildsIndex checks that a store started over a bucket holds
// the same objects as the one that wrote them.
func TestRestartRebuildsIndex(t *testing.T) {
	ctx := context.Background()
	prefix := newBucketPrefix()
	first := newStores(t, newS3(t, prefix), 0)
	first.createRepo(t, repository("r1", "team/r1"))
	first.createRepo(t, repository("r2", "team/r2"))
	for i := range 12 {
		repo := []string{"r1", "r2"}[i%2]
		first.createSnap(t, snapshot(fmt.Sprintf("snap-%02d", i), repo))
	}
	_, err := setPhase(ctx, first.snaps, "snap-03", "", "Succeeded")
	require.NoError(t, err)

	list := func(s *stores) map[string]catalog.Snapshot {
		var l catalog.SnapshotList
		require.NoError(t, s.snaps.GetList(ctx, snapPrefix+"/demo", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, &l))
		m := map[string]catalog.Snapshot{}
		for _, s := range l.Items {
			s.ResourceVersion = "" // versions are per process
			m[s.Name] = s
		}
		return m
	}
	before := list(first)
	second := newStores(t, newS3(t, prefix), 0)
	after := list(second)
	require.Len(t, after, 12)
	assert.Equal(t, before, after)
	var repos catalog.RepositoryList
	require.NoError(t, second.repos.GetList(ctx, repoPrefix+"/demo", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, &repos))
	assert.Len(t, repos.Items, 2)
}

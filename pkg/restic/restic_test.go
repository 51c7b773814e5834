package restic

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kubestash.dev/kubestash/pkg/restic/restictest"
	"kubestash.dev/kubestash/test/framework"
)

// env is the MinIO of this package's real-restic tests (one per package).
var env *framework.ControlPlane

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	framework.RunMain(m, framework.Options{MinIOOnly: true}, &env)
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the real restic; skipped with -short")
	}
}

func localLocation(t *testing.T) Location {
	return Location{Provider: ProviderLocal, LocalDir: t.TempDir(), Path: "demo/repository/v1/frequent-backup/dump"}
}

func s3Location(t *testing.T) Location {
	m := env.MinIO
	return Location{Provider: ProviderS3, Path: "demo/repository/v1/frequent-backup/dump", S3: &S3{
		Endpoint: m.Endpoint, Bucket: m.Bucket, Prefix: fmt.Sprintf("%s-%d", strings.ToLower(t.Name()), time.Now().UnixNano()),
		AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey,
	}}
}

func newRepo(t *testing.T, loc Location, password string) *Repo {
	t.Helper()
	// 10 status lines a second, so that even a short backup shows some.
	r, err := New(Options{Binary: restictest.Binary(t), Location: loc, Password: password, ScratchDir: t.TempDir(), EnableCache: true, ProgressFPS: 10})
	require.NoError(t, err)
	return r
}

func TestRealLocal(t *testing.T) {
	skipShort(t)
	lifecycle(t, localLocation(t))
}

func TestRealS3(t *testing.T) {
	skipShort(t)
	lifecycle(t, s3Location(t))
}

// lifecycle is the whole life of a component repository: init, a full and
// an incremental backup, check, stats, a byte-identical restore, a wrong
// password, forget with prune.
func lifecycle(t *testing.T, loc Location) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	src := filepath.Join(t.TempDir(), "kubestash-data")
	ds, err := restictest.Generate(src, restictest.Dataset{SmallFiles: 1500, SmallMax: 8 << 10, LargeFiles: 2, LargeSize: 6 << 20, Seed: 1})
	require.NoError(t, err)

	r := newRepo(t, loc, "correct horse battery staple")
	ok, err := r.Exists(ctx)
	require.NoError(t, err)
	assert.False(t, ok, "no repository yet")
	created, err := r.EnsureInit(ctx)
	require.NoError(t, err)
	assert.True(t, created)
	created, err = r.EnsureInit(ctx)
	require.NoError(t, err)
	assert.False(t, created, "second EnsureInit finds the repository")

	// Full backup, with progress.
	var mu sync.Mutex
	var progress []Progress
	onProgress := func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		progress = append(progress, p)
	}
	start := time.Now()
	full, err := r.Backup(ctx, []string{src}, nil, "host-0", onProgress)
	require.NoError(t, err)
	took := time.Since(start)
	assert.Len(t, full.SnapshotID, 64)
	assert.Equal(t, uint64(ds.Bytes), full.TotalBytesProcessed)
	assert.Equal(t, uint64(ds.Files), full.FilesNew)
	assert.Greater(t, full.DataAdded, uint64(ds.Bytes))
	require.NotEmpty(t, progress, "restic prints status lines")
	for i := 1; i < len(progress); i++ {
		assert.GreaterOrEqual(t, progress[i].BytesDone, progress[i-1].BytesDone, "progress never goes back")
	}
	t.Logf("full backup: %d files, %s in %v (%.0f files/s), %d status lines, uploaded %s",
		ds.Files, FormatBytes(uint64(ds.Bytes)), took.Round(time.Millisecond), float64(ds.Files)/took.Seconds(), len(progress), FormatBytes(full.DataAdded))

	// Incremental: one small change, one new file.
	require.NoError(t, os.WriteFile(filepath.Join(src, "top.txt"), []byte("changed!!!!"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "new.txt"), []byte(strings.Repeat("n", 100<<10)), 0o644))
	start = time.Now()
	incr, err := r.Backup(ctx, []string{src}, nil, "host-0", nil)
	require.NoError(t, err)
	assert.NotEqual(t, full.SnapshotID, incr.SnapshotID)
	assert.Equal(t, uint64(1), incr.FilesNew)
	assert.Equal(t, uint64(1), incr.FilesChanged)
	assert.Less(t, incr.DataAdded, uint64(ds.Bytes)/20, "incremental upload far below the data size")
	t.Logf("incremental backup: uploaded %s of %s in %v", FormatBytes(incr.DataAdded), FormatBytes(incr.TotalBytesProcessed), time.Since(start).Round(time.Millisecond))

	integrity, err := r.Check(ctx)
	require.NoError(t, err)
	assert.True(t, integrity)

	st, err := r.Stats(ctx)
	require.NoError(t, err)
	assert.Greater(t, st.TotalSize, uint64(ds.Bytes)*9/10)
	assert.Equal(t, uint64(2), st.SnapshotsCount)

	snaps, err := r.Snapshots(ctx)
	require.NoError(t, err)
	require.Len(t, snaps, 2)
	assert.Equal(t, []string{src}, snaps[1].Paths)
	assert.Equal(t, "host-0", snaps[1].Hostname)

	// Restore the folder's content into a new folder.
	dst := filepath.Join(t.TempDir(), "restored")
	progress = nil
	rs, err := r.Restore(ctx, incr.SnapshotID+":"+src, dst, nil, nil, onProgress)
	require.NoError(t, err)
	assert.Equal(t, uint64(ds.Bytes)+100<<10, rs.TotalBytes, "top.txt kept its size; new.txt was added")
	want, err := restictest.Digest(src)
	require.NoError(t, err)
	got, err := restictest.Digest(dst)
	require.NoError(t, err)
	assert.Empty(t, restictest.Diff(want, got, 10), "restore is byte-identical, with modes, times, symlinks, empty folders")
	assert.Len(t, got, len(want))

	// A wrong password is a typed error, and the password never shows.
	bad := newRepo(t, loc, "wrong password 123")
	_, err = bad.Exists(ctx)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrWrongPassword)
	_, err = bad.Backup(ctx, []string{src}, nil, "host-0", nil)
	assert.ErrorIs(t, err, ErrWrongPassword)
	assert.NotContains(t, err.Error(), "wrong password 123")
	assert.Contains(t, err.Error(), "wrong password or no key found")

	// Forget the first snapshot and prune its data.
	require.NoError(t, r.Forget(ctx, []string{full.SnapshotID}, true))
	snaps, err = r.Snapshots(ctx)
	require.NoError(t, err)
	require.Len(t, snaps, 1)
	assert.Equal(t, incr.SnapshotID, snaps[0].ID)
	integrity, err = r.Check(ctx)
	require.NoError(t, err)
	assert.True(t, integrity)
}

func TestRealMissingRepository(t *testing.T) {
	skipShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for name, loc := range map[string]Location{"local": localLocation(t), "s3": s3Location(t)} {
		t.Run(name, func(t *testing.T) {
			r := newRepo(t, loc, "pw-1234")
			_, err := r.Backup(ctx, []string{t.TempDir()}, nil, "", nil)
			assert.ErrorIs(t, err, ErrRepositoryNotFound)
			_, err = r.Check(ctx)
			assert.ErrorIs(t, err, ErrRepositoryNotFound)
		})
	}
}

func TestRealUnreachable(t *testing.T) {
	skipShort(t)
	loc := Location{Provider: ProviderS3, Path: "x", S3: &S3{Endpoint: "http://127.0.0.1:1", Bucket: "bucket", AccessKeyID: "AKIAUNREACH", SecretAccessKey: "unreachable-secret"}}
	r, err := New(Options{Binary: restictest.Binary(t), Location: loc, Password: "pw-unreach", ScratchDir: t.TempDir(), ProbeTimeout: 2 * time.Second})
	require.NoError(t, err)
	start := time.Now()
	_, err = r.Exists(context.Background())
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrBackendUnreachable)
	assert.Contains(t, err.Error(), "connection refused")
	assert.NotContains(t, err.Error(), "unreachable-secret")
	assert.Less(t, time.Since(start), 30*time.Second)
}

// TestRealLocks: a backup killed without cleaning up leaves a stale lock
// that UnlockStale removes, after which backups and check work; the lock
// of a running backup is never removed.
func TestRealLocks(t *testing.T) {
	skipShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	src := filepath.Join(t.TempDir(), "data")
	_, err := restictest.Generate(src, restictest.Dataset{SmallFiles: 200, SmallMax: 4 << 10, LargeFiles: 3, LargeSize: 64 << 20, Seed: 2})
	require.NoError(t, err)
	loc := localLocation(t)
	base := Options{Binary: restictest.Binary(t), Location: loc, Password: "lock-test-pw", ScratchDir: t.TempDir(), EnableCache: true, ProgressFPS: 20}
	r, err := New(base)
	require.NoError(t, err)
	_, err = r.EnsureInit(ctx)
	require.NoError(t, err)

	// Kill a backup mid-run the hard way (SIGKILL: OOM killer, node
	// loss), so restic cannot remove its lock.
	hard := base
	hard.CancelSignal = os.Kill
	killer, err := New(hard)
	require.NoError(t, err)
	kctx, kcancel := context.WithCancel(ctx)
	_, err = killer.Backup(kctx, []string{src}, nil, "host-0", func(p Progress) {
		if p.BytesDone > 0 && p.PercentDone < 1 {
			kcancel()
		}
	})
	kcancel()
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	locks, err := r.Locks(ctx)
	require.NoError(t, err)
	require.Len(t, locks, 1, "the killed backup left its lock")

	require.NoError(t, r.UnlockStale(ctx))
	locks, err = r.Locks(ctx)
	require.NoError(t, err)
	assert.Empty(t, locks, "the dead process's lock is stale and removed")

	sum, err := r.Backup(ctx, []string{src}, nil, "host-0", nil)
	require.NoError(t, err)
	assert.NotEmpty(t, sum.SnapshotID)
	ok, err := r.Check(ctx)
	require.NoError(t, err)
	assert.True(t, ok)

	// A live lock: a backup that takes its time (it reads a command's
	// output, which ends after a few seconds).
	done := make(chan error, 1)
	go func() {
		done <- r.run(ctx, runOpts{op: "backup", args: []string{"backup", "--json", "--no-cache", "--stdin-filename", "slow.txt", "--stdin-from-command", "--", "sh", "-c", "sleep 6; echo slow"}})
	}()
	require.Eventually(t, func() bool {
		l, err := r.Locks(ctx)
		return err == nil && len(l) == 1
	}, 5*time.Second, 100*time.Millisecond, "the running backup holds a lock")
	require.NoError(t, r.UnlockStale(ctx))
	locks, err = r.Locks(ctx)
	require.NoError(t, err)
	assert.Len(t, locks, 1, "a live lock is not removed")
	require.NoError(t, <-done)
	locks, err = r.Locks(ctx)
	require.NoError(t, err)
	assert.Empty(t, locks, "restic removes its own lock when it ends")
}

// TestRealCancelCleansUp: a cancelled backup (SIGTERM, the default) lets
// restic remove its own lock.
func TestRealCancelCleansUp(t *testing.T) {
	skipShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	src := filepath.Join(t.TempDir(), "data")
	_, err := restictest.Generate(src, restictest.Dataset{LargeFiles: 3, LargeSize: 64 << 20, Seed: 3})
	require.NoError(t, err)
	r := newRepo(t, localLocation(t), "cancel-pw")
	_, err = r.EnsureInit(ctx)
	require.NoError(t, err)
	bctx, bcancel := context.WithCancel(ctx)
	_, err = r.Backup(bctx, []string{src}, nil, "", func(p Progress) {
		if p.BytesDone > 0 && p.PercentDone < 1 {
			bcancel()
		}
	})
	bcancel()
	assert.ErrorIs(t, err, context.Canceled)
	locks, err := r.Locks(ctx)
	require.NoError(t, err)
	assert.Empty(t, locks)
}

func TestRealDamagedRepository(t *testing.T) {
	skipShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "a"), []byte("some data"), 0o644))
	loc := localLocation(t)
	r := newRepo(t, loc, "damage-pw")
	_, err := r.EnsureInit(ctx)
	require.NoError(t, err)
	_, err = r.Backup(ctx, []string{src}, nil, "", nil)
	require.NoError(t, err)
	// Losing the index makes the packs unreferenced and the snapshot's
	// blobs missing from any index.
	idx, err := filepath.Glob(filepath.Join(r.URL(), "index", "*"))
	require.NoError(t, err)
	require.NotEmpty(t, idx)
	for _, f := range idx {
		require.NoError(t, os.Remove(f))
	}
	ok, err := r.Check(ctx)
	require.NoError(t, err, "a damaged repository is a result, not an error")
	assert.False(t, ok)
}

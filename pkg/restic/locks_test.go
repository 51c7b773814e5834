package restic

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFakeReadLock: a lock is read without taking one (an exclusive lock
// it reads must not block it) and without the cache, and its JSON parsed.
func TestFakeReadLock(t *testing.T) {
	f := newFake(t, "ok")
	r, err := New(s3Opts(f, t.TempDir()))
	require.NoError(t, err)
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	l, err := r.ReadLock(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, &Lock{
		Time:      time.Date(2024, 1, 3, 11, 25, 5, 123456789, time.UTC),
		Exclusive: true, Hostname: "pvc-backup-x7k2q", Username: "root", PID: 12,
	}, l)
	c := f.calls(t)[0]
	assert.Regexp(t, `^cat lock --no-lock --no-cache -- `+id+`( |$)`, c)

	_, err = r.ReadLock(context.Background(), "")
	assert.Error(t, err)
}

// TestRealReadLock: the lock of a running backup reads as this host's,
// this process's child's, non-exclusive; a lock that is not there is an
// error.
func TestRealReadLock(t *testing.T) {
	skipShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := newRepo(t, localLocation(t), "read-lock-pw")
	_, err := r.EnsureInit(ctx)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		done <- r.run(ctx, runOpts{op: "backup", args: []string{"backup", "--json", "--no-cache", "--stdin-filename", "slow.txt", "--stdin-from-command", "--", "sh", "-c", "sleep 5; echo slow"}})
	}()
	var ids []string
	require.Eventually(t, func() bool {
		ids, err = r.Locks(ctx)
		return err == nil && len(ids) == 1
	}, 5*time.Second, 100*time.Millisecond, "the running backup holds a lock")
	l, err := r.ReadLock(ctx, ids[0])
	require.NoError(t, err)
	host, err := os.Hostname()
	require.NoError(t, err)
	assert.Equal(t, host, l.Hostname)
	assert.False(t, l.Exclusive)
	assert.Positive(t, l.PID)
	assert.WithinDuration(t, time.Now(), l.Time, time.Minute)
	require.NoError(t, <-done)

	_, err = r.ReadLock(ctx, ids[0])
	assert.Error(t, err, "the lock went with its backup")
	_, err = os.Stat(filepath.Join(r.url, "locks", ids[0]))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

package restic

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFakeBrowseArgs(t *testing.T) {
	f := newFake(t, "ok")
	r, err := New(s3Opts(f, t.TempDir()))
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, r.Dir(ctx, "abc:/kubestash-data/dir", func(Node) error { return nil }))
	require.NoError(t, r.Ls(ctx, "abc:/kubestash-data", "/dir", true, func(Node) error { return nil }))
	require.NoError(t, r.Dump(ctx, "abc:/kubestash-data/dir", "file", io.Discard))

	calls := f.calls(t)
	require.Len(t, calls, 3)
	assert.True(t, strings.HasPrefix(calls[0], "cat tree --no-lock "), calls[0])
	assert.Contains(t, calls[0], "-- abc:/kubestash-data/dir")
	assert.True(t, strings.HasPrefix(calls[1], "ls --json --no-lock "), calls[1])
	assert.Contains(t, calls[1], "--recursive -- abc:/kubestash-data /dir")
	assert.True(t, strings.HasPrefix(calls[2], "dump --archive tar --no-lock "), calls[2])
	assert.Contains(t, calls[2], "-- abc:/kubestash-data/dir file")
	for _, c := range calls {
		for _, secret := range []string{testPassword, testSecret, testKeyID} {
			assert.NotContains(t, c, secret, "secrets never reach restic's arguments")
		}
	}
	assert.Equal(t, testPassword, f.env(t)["RESTIC_PASSWORD"], "the password goes by the environment")
}

// A client that goes away cancels the request's context: restic gets
// SIGTERM and the dump ends.
func TestFakeDumpStopsWhenCancelled(t *testing.T) {
	f := newFake(t, "slow")
	o := s3Opts(f, t.TempDir())
	o.KillGrace = 2 * time.Second
	r, err := New(o)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = r.Dump(ctx, "abc:/kubestash-data", "/", io.Discard)
	require.Error(t, err)
	assert.Less(t, time.Since(start), 5*time.Second)
	_, serr := os.Stat(filepath.Join(f.dir, "got-term"))
	assert.NoError(t, serr, "restic got SIGTERM")
}

func TestPathError(t *testing.T) {
	for _, tc := range []struct {
		stderr string
		want   error
	}{
		{"path kubestash-data/a/b: not found", ErrPathNotFound},
		{`cannot dump file: path "/kubestash-data/x" not found in snapshot`, ErrPathNotFound},
		{"path kubestash-data/file: not a directory", ErrNotDirectory},
		{"could not find snapshot: no matching ID found for prefix \"abc\"", ErrSnapshotNotFound},
		{"something else", nil},
	} {
		t.Run(tc.stderr, func(t *testing.T) {
			err := pathError(&Error{Op: "ls", ExitCode: 1, Stderr: []string{tc.stderr}})
			var re *Error
			require.True(t, errors.As(err, &re))
			if tc.want == nil {
				assert.Nil(t, re.Kind)
				return
			}
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

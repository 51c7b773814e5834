package restic

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeRestic is a shell script standing in for restic: it records its
// arguments and environment and behaves as FAKE_MODE says. It checks what
// this package hands to restic, which a real run cannot show.
const fakeRestic = `#!/bin/sh
printf '%s\n' "$*" >> "$FAKE_DIR/calls"
env > "$FAKE_DIR/env"
case "$FAKE_MODE" in
ok)
  case "$1" in
  backup)
    echo '{"message_type":"status","percent_done":0.5,"total_files":2,"files_done":1,"total_bytes":10,"bytes_done":5}'
    echo '{"message_type":"summary","files_new":2,"data_added":10,"total_files_processed":2,"total_bytes_processed":10,"snapshot_id":"abc"}'
    ;;
  stats) echo 'some notice'; echo '{"total_size":1234,"snapshots_count":2}' ;;
  snapshots) echo '[{"id":"abc","paths":["/kubestash-data"],"hostname":"host-0"}]' ;;
  check) echo 'no errors were found' ;;
  cat) echo '{"time":"2024-01-03T11:25:05.123456789Z","exclusive":true,"hostname":"pvc-backup-x7k2q","username":"root","pid":12,"uid":0,"gid":0}' ;;
  esac
  exit 0 ;;
leak)
  echo "Fatal: cannot use $RESTIC_PASSWORD with $AWS_SECRET_ACCESS_KEY" >&2
  exit 1 ;;
damaged)
  echo 'check snapshots, trees and blobs'
  echo 'Fatal: repository contains errors' >&2
  exit 1 ;;
unreachable)
  while true; do
    echo 'Stat(<config/>) returned error, retrying after 1s: dial tcp 127.0.0.1:1: connect: connection refused' >&2
    sleep 0.2
  done ;;
outage)
  echo '{"message_type":"status","percent_done":0.1}'
  while true; do
    echo 'Save(<data/0123abcd>) returned error, retrying after 1s: dial tcp 127.0.0.1:1: connect: connection refused' >&2
    sleep 0.2
  done ;;
blips)
  echo '{"message_type":"status","percent_done":0.1}'
  i=0
  while [ $i -lt 12 ]; do
    echo 'Save(<data/0123abcd>) returned error, retrying after 1s: dial tcp 127.0.0.1:1: connect: connection refused' >&2
    sleep 0.2
    i=$((i+1))
    if [ $((i % 3)) -eq 0 ]; then echo 'Save(<data/0123abcd>) operation successful after 3 retries' >&2; fi
  done
  echo '{"message_type":"summary","total_files_processed":1,"total_bytes_processed":1,"snapshot_id":"abc"}'
  exit 0 ;;
oom)
  echo '{"message_type":"status","percent_done":0.1}'
  kill -9 $$ ;;
slow)
  trap 'echo "signal terminated received, cleaning up" >&2; touch "$FAKE_DIR/got-term"; exit 130' TERM
  echo '{"message_type":"status","percent_done":0.1}'
  while true; do sleep 0.1; done ;;
esac
`

type fake struct {
	dir string
	bin string
}

func newFake(t *testing.T, mode string) *fake {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "restic")
	require.NoError(t, os.WriteFile(bin, []byte(fakeRestic), 0o755))
	t.Setenv("FAKE_DIR", dir)
	t.Setenv("FAKE_MODE", mode)
	// A password file in the agent's own environment must not reach restic.
	t.Setenv("RESTIC_PASSWORD_FILE", "/nonexistent")
	return &fake{dir: dir, bin: bin}
}

func (f *fake) calls(t *testing.T) []string {
	b, err := os.ReadFile(filepath.Join(f.dir, "calls"))
	require.NoError(t, err)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func (f *fake) env(t *testing.T) map[string]string {
	b, err := os.ReadFile(filepath.Join(f.dir, "env"))
	require.NoError(t, err)
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			out[k] = v
		}
	}
	return out
}

const (
	testPassword = "pa55-w0rd-never-logged"
	testKeyID    = "AKIATESTKEYID"
	testSecret   = "s3cr3t-acc3ss-k3y"
)

func s3Opts(f *fake, scratch string) Options {
	return Options{
		Binary:   f.bin,
		Password: testPassword,
		Location: Location{Provider: ProviderS3, Path: "demo/repository/v1/s/dump", S3: &S3{
			Endpoint: "https://minio.example:9000", Bucket: "b", Prefix: "p", Region: "us-east-1",
			AccessKeyID: testKeyID, SecretAccessKey: testSecret, CACertPEM: []byte("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"), InsecureTLS: true,
		}, Connections: 8},
		ScratchDir:  scratch,
		EnableCache: true,
	}
}

func TestFakeSecretsOnlyInEnv(t *testing.T) {
	f := newFake(t, "ok")
	scratch := t.TempDir()
	r, err := New(s3Opts(f, scratch))
	require.NoError(t, err)
	ctx := context.Background()

	var got []Progress
	sum, err := r.Backup(ctx, []string{"/kubestash-data"}, []string{"*.tmp"}, "host-0", func(p Progress) { got = append(got, p) })
	require.NoError(t, err)
	assert.Equal(t, "abc", sum.SnapshotID)
	assert.Equal(t, []Progress{
		{PercentDone: 0.5, TotalFiles: 2, FilesDone: 1, TotalBytes: 10, BytesDone: 5},
		{PercentDone: 1, TotalFiles: 2, FilesDone: 2, TotalBytes: 10, BytesDone: 10}, // from the summary
	}, got)

	ok, err := r.Check(ctx)
	require.NoError(t, err)
	assert.True(t, ok)
	st, err := r.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(1234), st.TotalSize)
	snaps, err := r.Snapshots(ctx, "abc")
	require.NoError(t, err)
	require.Len(t, snaps, 1)
	assert.Equal(t, []string{"/kubestash-data"}, snaps[0].Paths)
	_, err = r.Restore(ctx, "abc:/kubestash-data", "/restore", nil, []string{"/x"}, nil)
	require.NoError(t, err)
	require.NoError(t, r.Forget(ctx, []string{"abc"}, true))

	calls := f.calls(t)
	caFile := filepath.Join(scratch, "ca-")
	for _, c := range calls {
		assert.NotContains(t, c, testPassword, "argv must not hold the password")
		assert.NotContains(t, c, testSecret, "argv must not hold the secret key")
		assert.NotContains(t, c, testKeyID)
		assert.Contains(t, c, "--insecure-tls")
		assert.Contains(t, c, "--cacert "+caFile)
		assert.Contains(t, c, "-o s3.connections=8", "the BackupStorage's maxConnections")
		assert.NotContains(t, c, "--remove-all")
	}
	byCmd := map[string]string{}
	for _, c := range calls {
		byCmd[strings.Fields(c)[0]] = c
	}
	cache := "--cache-dir " + filepath.Join(scratch, "restic-cache")
	assert.Contains(t, byCmd["backup"], "backup --json --retry-lock 1m0s --host host-0 --exclude *.tmp "+cache+" --cleanup-cache")
	assert.True(t, strings.Contains(byCmd["backup"], "-- /kubestash-data"), byCmd["backup"])
	assert.Contains(t, byCmd["restore"], "restore --json --retry-lock 1m0s --target /restore --exclude /x "+cache)
	assert.NotContains(t, byCmd["restore"], "--cleanup-cache")
	assert.Contains(t, byCmd["check"], "check --no-lock")
	assert.Contains(t, byCmd["stats"], "stats --json --mode raw-data --no-lock")
	assert.Contains(t, byCmd["forget"], "forget --retry-lock 1m0s --prune")
	assert.Contains(t, byCmd["unlock"], "unlock")

	env := f.env(t)
	assert.Equal(t, testPassword, env["RESTIC_PASSWORD"])
	assert.Equal(t, "s3:https://minio.example:9000/b/p/demo/repository/v1/s/dump", env["RESTIC_REPOSITORY"])
	assert.Equal(t, testKeyID, env["AWS_ACCESS_KEY_ID"])
	assert.Equal(t, testSecret, env["AWS_SECRET_ACCESS_KEY"])
	assert.Equal(t, "us-east-1", env["AWS_DEFAULT_REGION"])
	assert.Equal(t, filepath.Join(scratch, "tmp"), env["TMPDIR"])
	assert.NotContains(t, env, "RESTIC_PASSWORD_FILE")
	ca, err := filepath.Glob(caFile + "*.crt")
	require.NoError(t, err)
	require.Len(t, ca, 1)
	fi, err := os.Stat(ca[0])
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

func TestFakeNoCache(t *testing.T) {
	f := newFake(t, "ok")
	o := s3Opts(f, t.TempDir())
	o.EnableCache = false
	r, err := New(o)
	require.NoError(t, err)
	_, err = r.Backup(context.Background(), []string{"/d"}, nil, "", nil)
	require.NoError(t, err)
	c := f.calls(t)[0]
	assert.Contains(t, c, "--no-cache")
	assert.NotContains(t, c, "--cache-dir")
	assert.NotContains(t, c, "--host")
}

func TestFakeErrorsAreRedacted(t *testing.T) {
	f := newFake(t, "leak")
	r, err := New(s3Opts(f, t.TempDir()))
	require.NoError(t, err)
	_, err = r.Backup(context.Background(), []string{"/d"}, nil, "", nil)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), testPassword)
	assert.NotContains(t, err.Error(), testSecret)
	assert.Contains(t, err.Error(), "Fatal: cannot use [REDACTED] with [REDACTED]")
	assert.Contains(t, err.Error(), "exit code 1")
}

func TestFakeDamagedIsIntegrityFalse(t *testing.T) {
	f := newFake(t, "damaged")
	r, err := New(s3Opts(f, t.TempDir()))
	require.NoError(t, err)
	ok, err := r.Check(context.Background())
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestFakeUnreachableProbe(t *testing.T) {
	f := newFake(t, "unreachable")
	o := s3Opts(f, t.TempDir())
	o.ProbeTimeout = 500 * time.Millisecond
	o.KillGrace = time.Second
	r, err := New(o)
	require.NoError(t, err)
	start := time.Now()
	_, err = r.Exists(context.Background())
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrBackendUnreachable)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Contains(t, err.Error(), "connection refused")
}

// TestFakeOutageMidRun: a storage that stops answering after restic is
// past opening ends the run once OutageTimeout has passed, instead of
// restic's own quarter of an hour of retries.
func TestFakeOutageMidRun(t *testing.T) {
	f := newFake(t, "outage")
	o := s3Opts(f, t.TempDir())
	o.ProbeTimeout = 100 * time.Millisecond // opening only: not this case
	o.OutageTimeout = time.Second
	o.KillGrace = time.Second
	r, err := New(o)
	require.NoError(t, err)
	start := time.Now()
	_, err = r.Backup(context.Background(), []string{"/d"}, nil, "", nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrBackendUnreachable)
	assert.GreaterOrEqual(t, time.Since(start), time.Second, "mid-run, OutageTimeout applies, not ProbeTimeout")
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Contains(t, err.Error(), "connection refused")
}

// TestFakeOutageBlipsAreRidden: retries that keep succeeding in between
// are no outage, however long the run.
func TestFakeOutageBlipsAreRidden(t *testing.T) {
	f := newFake(t, "blips")
	o := s3Opts(f, t.TempDir())
	o.OutageTimeout = time.Second // the run takes about 2.4s
	r, err := New(o)
	require.NoError(t, err)
	sum, err := r.Backup(context.Background(), []string{"/d"}, nil, "", nil)
	require.NoError(t, err)
	assert.Equal(t, "abc", sum.SnapshotID)
}

// TestFakeKilled: restic killed by a signal nobody here sent says so.
func TestFakeKilled(t *testing.T) {
	f := newFake(t, "oom")
	r, err := New(s3Opts(f, t.TempDir()))
	require.NoError(t, err)
	_, err = r.Backup(context.Background(), []string{"/d"}, nil, "", nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrKilled)
	assert.Equal(t, "restic backup: restic was killed: signal 9 (killed)", err.Error())
}

func TestFakeCancelSendsSIGTERM(t *testing.T) {
	f := newFake(t, "slow")
	o := s3Opts(f, t.TempDir())
	o.KillGrace = 5 * time.Second
	r, err := New(o)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	_, err = r.Backup(ctx, []string{"/d"}, nil, "", func(Progress) { cancel() })
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	assert.FileExists(t, filepath.Join(f.dir, "got-term"), "restic must get SIGTERM to remove its lock")
}

func TestNewValidates(t *testing.T) {
	_, err := New(Options{Binary: "/bin/true", Location: Location{Provider: ProviderLocal, LocalDir: "/x"}})
	assert.ErrorContains(t, err, "empty repository password")
	_, err = New(Options{Binary: "/bin/true", Password: "p", Location: Location{Provider: "gcs"}})
	assert.ErrorContains(t, err, "not supported")
}

func TestURLIsSafeToLog(t *testing.T) {
	f := newFake(t, "ok")
	o := s3Opts(f, t.TempDir())
	o.Location.S3.Endpoint = "https://user:hunter22@minio.example:9000"
	r, err := New(o)
	require.NoError(t, err)
	assert.Equal(t, "s3:https://[REDACTED]@minio.example:9000/b/p/demo/repository/v1/s/dump", r.URL())
}

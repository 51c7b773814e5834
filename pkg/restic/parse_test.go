package restic

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFormatBytes(t *testing.T) {
	for _, tc := range []struct {
		in   uint64
		want string
	}{
		{0, "0 B"},
		{806, "806 B"},
		{1024, "1024 B"}, // strictly greater than the unit, as upstream
		{1025, "1.001 KiB"},
		{2316, "2.262 KiB"},
		{1074, "1.049 KiB"},
		{12815695, "12.222 MiB"},
		{1 << 30, "1024.000 MiB"},
		{5 << 30, "5.000 GiB"},
		{3 << 40, "3.000 TiB"},
	} {
		assert.Equal(t, tc.want, FormatBytes(tc.in), "FormatBytes(%d)", tc.in)
	}
}

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"806 B", 806, false},
		{"2.262 KiB", 2316, false},
		{"12.222 MiB", 12815695, false},
		{"5.000 GiB", 5 << 30, false},
		{"12MB", 0, true},
		{"1 XB", 0, true},
		{"-1 B", 0, true},
	} {
		got, err := ParseBytes(tc.in)
		if tc.wantErr {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		// Three decimals lose up to half a thousandth of the unit.
		assert.InDelta(t, tc.want, got, float64(tc.want)/1000+1, tc.in)
	}
}

func TestFormatDecimalAndPercent(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0, "0B"},
		{999, "999B"},
		{1000, "1kB"},
		{393.9e6, "393.9MB"},
		{5.268e9, "5.268GB"},
		{12e6, "12MB"},
		{1234567, "1.235MB"},
	} {
		assert.Equal(t, tc.want, FormatDecimal(tc.in), "FormatDecimal(%v)", tc.in)
	}
	assert.Equal(t, "12MB/s", FormatSpeed(12e6))
	assert.Equal(t, "7.48%", FormatPercent(0.0748))
	assert.Equal(t, "100.00%", FormatPercent(1))
	assert.Equal(t, "0.64%", FormatPercent(0.006438546666666667))
}

func TestParseBackupLines(t *testing.T) {
	data, err := os.ReadFile("testdata/backup.jsonl")
	require.NoError(t, err)
	var progress []Progress
	var sum *BackupSummary
	require.NoError(t, readLines(bytes.NewReader(data), func(line []byte) {
		m, ok := parseMessage(line)
		require.True(t, ok, string(line))
		switch m.MessageType {
		case "status":
			progress = append(progress, m.backupProgress())
		case "summary":
			sum = m.backupSummary()
		}
	}))
	require.Len(t, progress, 6)
	assert.Equal(t, Progress{PercentDone: 0.006438546666666667, TotalFiles: 3, TotalBytes: 300000000, BytesDone: 1931564}, progress[0])
	assert.Equal(t, Progress{SecondsElapsed: 1, PercentDone: 0.6033373933333334, TotalFiles: 3, TotalBytes: 300000000, BytesDone: 181001218}, progress[3])
	assert.Equal(t, Progress{SecondsElapsed: 3, PercentDone: 1, TotalFiles: 3, FilesDone: 3, TotalBytes: 300000000, BytesDone: 300000000}, progress[5])

	require.NotNil(t, sum)
	assert.Equal(t, "fafe001c1e9cac518a7722a8f06f19087c99100279ee8b9b55f6369ab5fc6f0f", sum.SnapshotID)
	assert.Equal(t, uint64(300014764), sum.DataAdded)
	assert.Equal(t, uint64(300000000), sum.TotalBytesProcessed)
	assert.Equal(t, uint64(3), sum.FilesNew)
	assert.Equal(t, uint64(3), sum.TotalFilesProcessed)
	assert.Equal(t, time.Date(2026, 11, 26, 14, 37, 34, 319097010, time.UTC), sum.BackupStart)
	assert.Equal(t, time.Date(2026, 11, 26, 14, 37, 38, 437787062, time.UTC), sum.BackupEnd)
	assert.InDelta(t, 4.118690062, sum.TotalDuration.Seconds(), 1e-6)
}

func TestParseRestoreLines(t *testing.T) {
	data, err := os.ReadFile("testdata/restore.jsonl")
	require.NoError(t, err)
	var progress []Progress
	var sum *RestoreSummary
	require.NoError(t, readLines(bytes.NewReader(data), func(line []byte) {
		m, ok := parseMessage(line)
		require.True(t, ok)
		switch m.MessageType {
		case "status":
			progress = append(progress, m.restoreProgress())
		case "summary":
			sum = m.restoreSummary()
		}
	}))
	require.Len(t, progress, 3)
	assert.Equal(t, Progress{PercentDone: 0.6856275533333334, TotalFiles: 3, FilesDone: 2, TotalBytes: 300000000, BytesDone: 205688266}, progress[1])
	assert.Equal(t, &RestoreSummary{TotalFiles: 3, FilesRestored: 3, TotalBytes: 300000000, BytesRestored: 300000000}, sum)
}

func TestRenderStderr(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"exit error", `{"message_type":"exit_error","code":12,"message":"Fatal: wrong password or no key found"}`, []string{"Fatal: wrong password or no key found"}},
		{"multi-line exit error", `{"message_type":"exit_error","code":11,"message":"unable to create lock\nthe ` + "`unlock`" + ` command can be used"}`, []string{"unable to create lock", "the `unlock` command can be used"}},
		{"item error", `{"message_type":"error","error":{"message":"open /kubestash-data/secret: permission denied"},"during":"archival","item":"/kubestash-data/secret"}`, []string{"error during archival of /kubestash-data/secret: open /kubestash-data/secret: permission denied"}},
		{"old error shape", `{"message_type":"error","error":"boom","item":"/x"}`, []string{"error on /x: boom"}},
		{"plain text", `Fatal: unable to open config file`, []string{"Fatal: unable to open config file"}},
		{"not restic json", `{"foo":1}`, []string{`{"foo":1}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, renderStderr([]byte(tc.in)))
		})
	}
}

func TestReadLinesDropsHugeLines(t *testing.T) {
	huge := strings.Repeat("x", maxLine+10)
	in := "a\n" + huge + "\nb\r\n\nc"
	var got []string
	require.NoError(t, readLines(strings.NewReader(in), func(l []byte) { got = append(got, string(l)) }))
	assert.Equal(t, []string{"a", "b", "c"}, got)
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int
		text string
		want error
	}{
		{"wrong password by code", 12, "", ErrWrongPassword},
		{"wrong password by text", 1, "Fatal: wrong password or no key found", ErrWrongPassword},
		{"no repo by code", 10, "", ErrRepositoryNotFound},
		{"no repo by text", 1, "Fatal: repository does not exist: unable to open config file", ErrRepositoryNotFound},
		{"locked by code", 11, "", ErrLocked},
		{"locked by text", 1, "unable to create lock in backend: repository is already locked by PID 11398 on vm", ErrLocked},
		{"incomplete", 3, "Warning: at least one source file could not be read", ErrIncomplete},
		{"unreachable", 1, `Stat(<config/>) returned error, retrying after 2s: Get "http://127.0.0.1:1/b/?location=": dial tcp 127.0.0.1:1: connect: connection refused` + "\nFatal: unable to open config file: context canceled\nIs there a repository at the following location?", ErrBackendUnreachable},
		{"dns", 1, "dial tcp: lookup minio.invalid: no such host", ErrBackendUnreachable},
		{"tls", 1, "tls: failed to verify certificate: x509: certificate signed by unknown authority", ErrBackendUnreachable},
		{"other", 1, "Fatal: something else", nil},
		{"file named eof", 1, "error: /data/eof.txt: permission denied", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.code, tc.text)
			if tc.want == nil {
				assert.NoError(t, got)
				return
			}
			assert.ErrorIs(t, got, tc.want)
		})
	}
}

func TestRedactor(t *testing.T) {
	r := newRedactor("s3cr3t-pass", "AKIAKEY123", "ab") // "ab" is too short to redact
	assert.Equal(t, "password [REDACTED] key [REDACTED] ab", r.redact("password s3cr3t-pass key AKIAKEY123 ab"))
	assert.Equal(t, "Get https://[REDACTED]@minio:9000/x", r.redact("Get https://user:pw@minio:9000/x"))
}

func TestErrorText(t *testing.T) {
	e := &Error{Op: "backup", ExitCode: 12, Kind: ErrWrongPassword, Stderr: []string{"Fatal: wrong password or no key found"}}
	assert.Equal(t, "restic backup: wrong password or no key found (exit code 12): Fatal: wrong password or no key found", e.Error())
	assert.ErrorIs(t, e, ErrWrongPassword)
	assert.Equal(t, "Fatal: wrong password or no key found", StderrTail(e))
	var re *Error
	assert.True(t, errors.As(error(e), &re))
	assert.Equal(t, "", StderrTail(errors.New("x")))
}

func TestTailIsBounded(t *testing.T) {
	tl := newTail()
	for i := 0; i < 1000; i++ {
		tl.add(strings.Repeat("y", 2000))
	}
	lines := tl.snapshot()
	assert.Len(t, lines, tailLines)
	assert.LessOrEqual(t, len(lines[0]), tailLineSize+len("…"))
	assert.True(t, tl.retryingSince().IsZero())
	tl.add("Load(<lock/1>) returned error, retrying after 1s: dial tcp: connection refused")
	assert.False(t, tl.retryingSince().IsZero())
}

func TestLocationURL(t *testing.T) {
	for _, tc := range []struct {
		name string
		loc  Location
		want string
	}{
		{"s3 with scheme", Location{Provider: ProviderS3, S3: &S3{Endpoint: "http://127.0.0.1:9000/", Bucket: "kubestash", Prefix: "demo/"}, Path: "/pvc-backup-demo/repository/v1/frequent-backup/dump"},
			"s3:http://127.0.0.1:9000/kubestash/demo/pvc-backup-demo/repository/v1/frequent-backup/dump"},
		{"s3 no prefix", Location{Provider: ProviderS3, S3: &S3{Endpoint: "https://s3.us-west-1.amazonaws.com", Bucket: "b"}, Path: "repo/repository/v1/s/dump"},
			"s3:https://s3.us-west-1.amazonaws.com/b/repo/repository/v1/s/dump"},
		{"s3 aws default", Location{Provider: ProviderS3, S3: &S3{Bucket: "b", Prefix: "p"}, Path: "r"}, "s3:s3.amazonaws.com/b/p/r"},
		{"local", Location{Provider: ProviderLocal, LocalDir: "/mnt/backup", Path: "/demo//repository/v1/s/dump"}, "/mnt/backup/demo/repository/v1/s/dump"},
		{"local, dot-dot inside", Location{Provider: ProviderLocal, LocalDir: "/mnt/backup", Path: "a/../b"}, "/mnt/backup/b"},
		{"s3, dot-dot inside", Location{Provider: ProviderS3, S3: &S3{Bucket: "b", Prefix: "p"}, Path: "tenant-a/x/../repo"}, "s3:s3.amazonaws.com/b/p/tenant-a/repo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.loc.URL()
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	// A path that leads out of the storage, as a planted Repository's
	// spec.path may, is refused: restic never opens it.
	for _, tc := range []struct {
		name string
		loc  Location
	}{
		{"local parent", Location{Provider: ProviderLocal, LocalDir: "/mnt/backup", Path: "../../etc"}},
		{"local parent after a folder", Location{Provider: ProviderLocal, LocalDir: "/mnt/backup", Path: "/a/../../other/repo/repository/v1/s/dump"}},
		{"s3 other tenant's prefix", Location{Provider: ProviderS3, S3: &S3{Bucket: "b", Prefix: "tenant-a"}, Path: "../tenant-b/repo/repository/v1/s/dump"}},
		{"s3 other bucket", Location{Provider: ProviderS3, S3: &S3{Bucket: "b"}, Path: "../other-bucket/repo"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.loc.URL()
			assert.ErrorContains(t, err, "leads out of the storage")
		})
	}
	_, err := Location{Provider: "gcs"}.URL()
	assert.Error(t, err)
	_, err = Location{Provider: ProviderS3}.URL()
	assert.Error(t, err)
}

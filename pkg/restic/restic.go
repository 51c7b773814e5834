// Package restic runs the restic binary (pinned in go.mod, built into bin/)
// against one repository and parses its JSON output. Nothing of restic is
// re-implemented here: every operation is one restic command.
//
// Secrets reach restic only through its environment (RESTIC_PASSWORD,
// AWS_SECRET_ACCESS_KEY), never its arguments, and everything restic prints
// goes through a redactor before it can end up in an error.
package restic

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// Provider is the kind of storage a repository lives in.
type Provider string

const (
	ProviderS3    Provider = "s3"
	ProviderLocal Provider = "local"
)

// S3 is an S3 (or S3-compatible) bucket.
type S3 struct {
	// Endpoint with its scheme ("https://s3.amazonaws.com",
	// "http://127.0.0.1:9000"); empty for AWS.
	Endpoint string
	Bucket   string
	Prefix   string
	Region   string
	// AccessKeyID and SecretAccessKey; both empty for credential-less
	// access (the AWS_* environment of the process, IRSA, instance roles).
	AccessKeyID     string
	SecretAccessKey string
	// CACertPEM, when set, is the CA that signs the endpoint's certificate.
	CACertPEM   []byte
	InsecureTLS bool
}

// Location says where a restic repository is.
type Location struct {
	Provider Provider
	S3       *S3
	// LocalDir is the root of a local backend: the directory where the
	// storage is mounted.
	LocalDir string
	// Path of the repository below the storage root (its prefix for S3):
	// <Repository.spec.path>/<component path>.
	Path string
	// Connections bounds restic's concurrent requests to the backend
	// (the BackupStorage's maxConnections: -o s3.connections or
	// local.connections); 0 keeps restic's default.
	Connections int64
}

// URL is the RESTIC_REPOSITORY of the location: s3:<endpoint>/<bucket>/<prefix>/<path>,
// or <dir>/<path> for a local backend.
//
// Path never leads out of the storage: one that does after cleaning (a
// "../other/repo" read from a planted catalog file, say) is an error, so
// restic never opens another tenant's repository beside this storage.
func (l Location) URL() (string, error) {
	if err := l.checkPath(); err != nil {
		return "", err
	}
	switch l.Provider {
	case ProviderS3:
		if l.S3 == nil || l.S3.Bucket == "" {
			return "", errors.New("s3 location without a bucket")
		}
		endpoint := strings.TrimRight(l.S3.Endpoint, "/")
		if endpoint == "" {
			endpoint = "s3.amazonaws.com"
		}
		// path.Join cleans the leading and doubled slashes a prefix or
		// Repository path may carry ("/pvc-backup-demo").
		base := strings.TrimPrefix(path.Join(l.S3.Bucket, l.S3.Prefix), "/")
		full := strings.TrimPrefix(path.Join(l.S3.Bucket, l.S3.Prefix, l.Path), "/")
		if full != base && !strings.HasPrefix(full, base+"/") {
			return "", fmt.Errorf("repository path %.200q leads out of the storage prefix %q", l.Path, base)
		}
		return "s3:" + endpoint + "/" + full, nil
	case ProviderLocal:
		if l.LocalDir == "" {
			return "", errors.New("local location without a directory")
		}
		return filepath.Join(l.LocalDir, filepath.FromSlash(path.Clean("/"+l.Path))), nil
	case "":
		return "", errors.New("location without a provider")
	default:
		return "", fmt.Errorf("provider %q is not supported (s3 and local are)", l.Provider)
	}
}

// checkPath refuses a Path that leaves the storage root once cleaned.
func (l Location) checkPath() error {
	rel := path.Clean(strings.TrimLeft(l.Path, "/"))
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("repository path %.200q leads out of the storage", l.Path)
	}
	return nil
}

// Options configure a Repo.
type Options struct {
	// Binary is the restic executable; empty: DefaultBinary().
	Binary   string
	Location Location
	// Password of the repository (RESTIC_PASSWORD of the encryption
	// Secret). Passed to restic in its environment only.
	Password string
	// ScratchDir holds restic's temporary files (TMPDIR), its cache and
	// the CA file; empty: <os temp dir>/kubestash-restic.
	ScratchDir string
	// EnableCache keeps restic's cache in <ScratchDir>/restic-cache;
	// otherwise every command runs with --no-cache.
	EnableCache bool
	// RetryLock is restic's --retry-lock for commands that lock; default 1m.
	RetryLock time.Duration
	// ProbeTimeout bounds how long any command may retry a storage that
	// does not answer while opening the repository, before giving up with
	// ErrBackendUnreachable (restic alone retries for about 15 minutes);
	// default 30s.
	ProbeTimeout time.Duration
	// OutageTimeout bounds the same once restic is past opening (it has
	// printed on stdout): how long a running command may keep retrying a
	// storage that stopped answering, with no request succeeding, before
	// it is stopped with ErrBackendUnreachable. Longer than ProbeTimeout,
	// since a long backup should ride out a short outage; default 5m.
	OutageTimeout time.Duration
	// ProgressFPS is how many status lines per second restic prints
	// (RESTIC_PROGRESS_FPS); default 1.
	ProgressFPS float64
	// CancelSignal is sent to restic when the context ends; default
	// SIGTERM, on which restic removes its lock and exits. os.Kill
	// simulates a process that dies without cleaning up.
	CancelSignal os.Signal
	// KillGrace is how long restic may take to exit after CancelSignal
	// before it is killed; default 10s.
	KillGrace time.Duration
}

// Repo runs restic commands against one repository.
type Repo struct {
	bin        string
	url        string
	opts       Options
	env        []string
	global     []string
	cacheDir   string
	redactor   *redactor
	retryLock  string
	cancelSig  os.Signal
	killGrace  time.Duration
	probeAfter time.Duration
	outageMax  time.Duration
}

const (
	defaultRetryLock    = time.Minute
	defaultProbeTimeout = 30 * time.Second
	defaultOutage       = 5 * time.Minute
	defaultKillGrace    = 10 * time.Second
	defaultProgressFPS  = 1
)

// DefaultBinary finds restic: next to the running program (bin/ holds both
// the agent and restic), else on $PATH.
func DefaultBinary() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "restic")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath("restic")
	if err != nil {
		return "", fmt.Errorf("restic not found next to %s nor on PATH: %w", os.Args[0], err)
	}
	return p, nil
}

// New prepares a Repo: resolves the binary, creates the scratch folders and
// the CA file, and builds restic's environment. It runs nothing.
func New(o Options) (*Repo, error) {
	if o.Password == "" {
		return nil, errors.New("restic: empty repository password")
	}
	url, err := o.Location.URL()
	if err != nil {
		return nil, fmt.Errorf("restic: %w", err)
	}
	bin := o.Binary
	if bin == "" {
		if bin, err = DefaultBinary(); err != nil {
			return nil, err
		}
	}
	if o.ScratchDir == "" {
		o.ScratchDir = filepath.Join(os.TempDir(), "kubestash-restic")
	}
	r := &Repo{
		bin:        bin,
		url:        url,
		opts:       o,
		retryLock:  durationOr(o.RetryLock, defaultRetryLock).String(),
		cancelSig:  o.CancelSignal,
		killGrace:  durationOr(o.KillGrace, defaultKillGrace),
		probeAfter: durationOr(o.ProbeTimeout, defaultProbeTimeout),
		outageMax:  durationOr(o.OutageTimeout, defaultOutage),
		cacheDir:   filepath.Join(o.ScratchDir, "restic-cache"),
	}
	if r.cancelSig == nil {
		r.cancelSig = syscall.SIGTERM
	}
	tmp := filepath.Join(o.ScratchDir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("restic: scratch dir: %w", err)
	}
	if o.EnableCache {
		if err := os.MkdirAll(r.cacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("restic: cache dir: %w", err)
		}
	}

	fps := o.ProgressFPS
	if fps <= 0 {
		fps = defaultProgressFPS
	}
	set := map[string]string{
		"RESTIC_REPOSITORY":   url,
		"RESTIC_PASSWORD":     o.Password,
		"RESTIC_PROGRESS_FPS": strconv.FormatFloat(fps, 'f', -1, 64),
		"TMPDIR":              tmp,
	}
	secrets := []string{o.Password}
	staticKeys := false
	if s3 := o.Location.S3; o.Location.Provider == ProviderS3 && s3 != nil {
		if s3.AccessKeyID != "" || s3.SecretAccessKey != "" {
			staticKeys = true
			set["AWS_ACCESS_KEY_ID"] = s3.AccessKeyID
			set["AWS_SECRET_ACCESS_KEY"] = s3.SecretAccessKey
			secrets = append(secrets, s3.SecretAccessKey, s3.AccessKeyID)
		}
		if s3.Region != "" {
			set["AWS_DEFAULT_REGION"] = s3.Region
		}
		if len(s3.CACertPEM) > 0 {
			sum := sha256.Sum256(s3.CACertPEM)
			caFile := filepath.Join(o.ScratchDir, "ca-"+hex.EncodeToString(sum[:6])+".crt")
			if err := os.WriteFile(caFile, s3.CACertPEM, 0o600); err != nil {
				return nil, fmt.Errorf("restic: write CA file: %w", err)
			}
			r.global = append(r.global, "--cacert", caFile)
		}
		if s3.InsecureTLS {
			r.global = append(r.global, "--insecure-tls")
		}
	}
	if n := o.Location.Connections; n > 0 {
		r.global = append(r.global, "-o", fmt.Sprintf("%s.connections=%d", o.Location.Provider, n))
	}
	r.redactor = newRedactor(secrets...)
	r.env = buildEnv(os.Environ(), set, staticKeys)
	return r, nil
}

// buildEnv is the process environment minus every RESTIC_* variable (only
// ours may steer restic: a stray RESTIC_PASSWORD_FILE would override the
// password) and, when static keys are given, minus AWS credentials that
// would conflict with them; plus ours.
func buildEnv(base []string, set map[string]string, staticKeys bool) []string {
	out := make([]string, 0, len(base)+len(set))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ours := set[k]; ours || strings.HasPrefix(k, "RESTIC_") {
			continue
		}
		if staticKeys && (k == "AWS_SESSION_TOKEN" || k == "AWS_PROFILE" || k == "AWS_SHARED_CREDENTIALS_FILE") {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range set {
		out = append(out, k+"="+v)
	}
	return out
}

func durationOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// URL is RESTIC_REPOSITORY, safe to log: credentials someone put into an
// endpoint URL are redacted.
func (r *Repo) URL() string { return r.redactor.redact(r.url) }

// cacheArgs are the cache flags of a command; only backup cleans up old
// cache directories.
func (r *Repo) cacheArgs(cleanup bool) []string {
	if !r.opts.EnableCache {
		return []string{"--no-cache"}
	}
	args := []string{"--cache-dir", r.cacheDir}
	if cleanup {
		args = append(args, "--cleanup-cache")
	}
	return args
}

// runOpts describe one restic run.
type runOpts struct {
	op   string
	args []string
	// onStdout gets each stdout line; onStdoutReader gets the whole
	// stream instead (for one large JSON document). Neither: discarded.
	onStdout       func(line []byte)
	onStdoutReader func(io.Reader) error
	// onStderr sees each stderr line (plain text, JSON lines rendered).
	onStderr func(line string)
}

const maxLine = 4 << 20

// run executes restic and waits for it. stdout and stderr are streamed
// line by line, never buffered whole: a backup of millions of files prints
// for hours.
func (r *Repo) run(ctx context.Context, o runOpts) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	args := append(append([]string{}, o.args...), r.global...)
	klog.V(4).InfoS("Running restic", "op", o.op, "args", args, "repository", r.URL())

	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Env = r.env
	cmd.Cancel = func() error { return cmd.Process.Signal(r.cancelSig) }
	cmd.WaitDelay = r.killGrace
	setSysProcAttr(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return &Error{Op: o.op, ExitCode: -1, Cause: err}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return &Error{Op: o.op, ExitCode: -1, Cause: err}
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return &Error{Op: o.op, ExitCode: -1, Cause: err}
	}

	t := newTail()
	var sawStdout atomic.Bool
	var wg sync.WaitGroup
	var stdoutErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		if o.onStdoutReader != nil {
			stdoutErr = o.onStdoutReader(&markReader{r: stdout, seen: &sawStdout})
			// Drain what the reader left so restic never blocks on
			// a full pipe.
			_, _ = io.Copy(io.Discard, stdout)
			return
		}
		_ = readLines(stdout, func(line []byte) {
			sawStdout.Store(true)
			if o.onStdout != nil {
				o.onStdout(line)
			}
		})
	}()
	go func() {
		defer wg.Done()
		_ = readLines(stderr, func(line []byte) {
			for _, l := range renderStderr(line) {
				t.add(l)
				if o.onStderr != nil {
					o.onStderr(l)
				}
			}
		})
	}()
	// The unreachable probe: restic alone retries a storage that does not
	// answer for about 15 minutes, with the session Running all along.
	// While restic is still opening the repository (it has printed
	// nothing on stdout yet), a storage that keeps failing for longer
	// than ProbeTimeout makes the run give up: a backend that is down when
	// the Job starts fails the Job with that cause, soon. Once restic is
	// past opening, an outage (retries with no request succeeding in
	// between) may last OutageTimeout before the run gives up the same
	// way.
	probeDone := make(chan struct{})
	go func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-probeDone:
				return
			case <-tick.C:
				limit := r.probeAfter
				if sawStdout.Load() {
					limit = r.outageMax
				}
				if since := t.retryingSince(); !since.IsZero() && time.Since(since) > limit {
					cancel(ErrBackendUnreachable)
					return
				}
			}
		}
	}()
	wg.Wait()
	waitErr := cmd.Wait()
	close(probeDone)

	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	klog.V(4).InfoS("Restic finished", "op", o.op, "exitCode", code, "duration", time.Since(start))
	if waitErr == nil && stdoutErr == nil {
		return nil
	}
	lines := t.snapshot()
	e := &Error{Op: o.op, ExitCode: code, Stderr: errorLines(lines, r.redactor)}
	switch {
	case ctx.Err() != nil:
		// Cancelled: by the caller (deadline, signal) or by the probe.
		e.Kind = ctxKind(ctx)
	case waitErr != nil:
		e.Kind = classify(code, strings.Join(lines, "\n"))
		if sig, ok := killedBy(cmd.ProcessState); ok {
			// Not by us (that is a cancelled ctx): the OOM killer, or
			// someone else. restic had no chance to say why it ended.
			if e.Kind == nil {
				e.Kind, e.Cause = ErrKilled, fmt.Errorf("signal %d (%v)", int(sig), sig)
			} else {
				e.Cause = fmt.Errorf("killed by signal %d (%v)", int(sig), sig)
			}
		}
	default:
		e.Cause = fmt.Errorf("reading output: %w", stdoutErr)
	}
	return e
}

// killedBy reports the signal that ended a process, if one did.
func killedBy(ps *os.ProcessState) (syscall.Signal, bool) {
	if ps == nil {
		return 0, false
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return 0, false
	}
	return ws.Signal(), true
}

// renderStderr turns a stderr line into the text lines restic would have
// printed without --json.
func renderStderr(line []byte) []string {
	if m, ok := parseMessage(line); ok {
		if txt := m.errorText(); txt != "" {
			return strings.Split(strings.TrimRight(txt, "\n"), "\n")
		}
	}
	return []string{string(line)}
}

// readLines calls fn for every line of r, without its newline. A line longer
// than maxLine is dropped, not buffered: restic's JSON lines are short, and
// memory must stay flat whatever it prints.
func readLines(r io.Reader, fn func([]byte)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte
	tooLong := false
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if !tooLong && len(long)+len(chunk) <= maxLine {
				long = append(long, chunk...)
			} else {
				tooLong, long = true, long[:0]
			}
			continue
		}
		line := chunk
		if len(long) > 0 {
			long = append(long, chunk...)
			line = long
		}
		line = trimEOL(line)
		if !tooLong && len(line) > 0 && len(line) <= maxLine {
			fn(line)
		}
		long, tooLong = long[:0], false
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// markReader notes that restic printed something on stdout.
type markReader struct {
	r    io.Reader
	seen *atomic.Bool
}

func (m *markReader) Read(b []byte) (int, error) {
	n, err := m.r.Read(b)
	if n > 0 {
		m.seen.Store(true)
	}
	return n, err
}

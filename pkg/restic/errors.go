package restic

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Kinds of failure a caller may want to tell apart. An *Error wraps one of
// them (or a context error) and errors.Is finds it.
var (
	// ErrWrongPassword: no key of the repository opens with the password
	// (restic exit code 12).
	ErrWrongPassword = errors.New("wrong password or no key found")
	// ErrRepositoryNotFound: there is no restic repository at the location
	// (restic exit code 10).
	ErrRepositoryNotFound = errors.New("repository does not exist")
	// ErrLocked: another restic process holds a conflicting lock and it was
	// not released within the --retry-lock time (restic exit code 11).
	ErrLocked = errors.New("repository is locked")
	// ErrBackendUnreachable: the storage did not answer (connection
	// refused, DNS, TLS, timeouts): after restic's own retries, or after
	// Options.ProbeTimeout of retries while opening the repository.
	ErrBackendUnreachable = errors.New("backend unreachable")
	// ErrIncomplete: restic backup could not read some files; the snapshot
	// was still written (restic exit code 3).
	ErrIncomplete = errors.New("backup could not read some source data")
	// ErrKilled: restic was ended by a signal nobody here sent (the
	// out-of-memory killer, a person); it could not clean up, so its lock
	// stays behind until it is stale.
	ErrKilled = errors.New("restic was killed")
	// ErrRepositoryDamaged is never returned by Check (a damaged repository
	// is integrity=false, not an error) but by callers that require a
	// healthy repository.
	ErrRepositoryDamaged = errors.New("repository contains errors")
)

// restic's exit codes (cmd/restic/main.go, 0.17+).
const (
	exitFatal       = 1
	exitIncomplete  = 3
	exitNoRepo      = 10
	exitLocked      = 11
	exitNoKey       = 12
	exitInterrupted = 130
)

// Error is a failed restic run. Its text is safe to log and to put into a
// status: the stderr lines it carries went through the redactor.
type Error struct {
	// Op is the restic command ("backup", "check", ...).
	Op string
	// ExitCode of restic; -1 when it did not start or was killed.
	ExitCode int
	// Kind is one of the Err* values above, a context error, or nil.
	Kind error
	// Stderr holds restic's last lines of error output, redacted.
	Stderr []string
	// Cause is an error of the run itself (could not start, pipe failed).
	Cause error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "restic %s", e.Op)
	if e.Kind != nil {
		fmt.Fprintf(&b, ": %v", e.Kind)
	}
	if e.Cause != nil {
		fmt.Fprintf(&b, ": %v", e.Cause)
	}
	if e.ExitCode >= 0 {
		fmt.Fprintf(&b, " (exit code %d)", e.ExitCode)
	}
	if len(e.Stderr) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(e.Stderr, "\n"))
	}
	return b.String()
}

// Unwrap exposes the kind and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	var out []error
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Cause != nil {
		out = append(out, e.Cause)
	}
	return out
}

// StderrTail returns restic's last error lines, redacted, one per line.
// It is what a component's status shows as its error.
func StderrTail(err error) string {
	var re *Error
	if errors.As(err, &re) {
		return strings.Join(re.Stderr, "\n")
	}
	return ""
}

// classify picks the kind of a failed run from restic's exit code and what
// it printed. The exit codes are authoritative; the texts cover restic
// versions and paths that exit with 1 for the same cause.
func classify(exitCode int, text string) error {
	switch exitCode {
	case exitNoKey:
		return ErrWrongPassword
	case exitNoRepo:
		return ErrRepositoryNotFound
	case exitLocked:
		return ErrLocked
	case exitIncomplete:
		return ErrIncomplete
	}
	lower := strings.ToLower(text)
	switch {
	case strings.Contains(lower, "wrong password or no key found"):
		return ErrWrongPassword
	case strings.Contains(lower, "repository does not exist"),
		strings.Contains(lower, "is there a repository at the following location") && !unreachable(lower):
		return ErrRepositoryNotFound
	case strings.Contains(lower, "repository is already locked"):
		return ErrLocked
	case unreachable(lower):
		return ErrBackendUnreachable
	}
	return nil
}

// unreachable says whether restic's output shows the storage did not
// answer (as opposed to answering with an error).
func unreachable(lower string) bool {
	for _, s := range []string{
		"connection refused", "no such host", "i/o timeout", "network is unreachable",
		"no route to host", "connection reset by peer", "tls handshake timeout",
		"server gave http response to https client", "x509: ", "tls: ",
		"context deadline exceeded (client.timeout", "eof",
	} {
		if s == "eof" {
			// A bare EOF from a dropped connection, not a word in a path.
			if strings.Contains(lower, ": eof") {
				return true
			}
			continue
		}
		if strings.Contains(lower, s) {
			return true
		}
	}
	return false
}

// redactor replaces secrets in text that restic printed. restic never
// prints the password or the keys it was given, but a URL with embedded
// credentials, a library message or a future version might; nothing that
// leaves this package may contain them.
type redactor struct {
	secrets []string
}

// ansiRE matches terminal control sequences restic writes around
// progress lines ("\x1b[2K").
var ansiRE = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

var userinfoRE = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s:]+:[^/@\s]+@`)

const redacted = "[REDACTED]"

func newRedactor(secrets ...string) *redactor {
	r := &redactor{}
	for _, s := range secrets {
		// Very short values would blank out ordinary words; the
		// password and keys are never that short in practice, and the
		// URL rule below still applies.
		if len(s) >= 4 {
			r.secrets = append(r.secrets, s)
		}
	}
	return r
}

func (r *redactor) redact(s string) string {
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, redacted)
	}
	return userinfoRE.ReplaceAllString(s, "${1}"+redacted+"@")
}

// tail keeps the last lines restic wrote to stderr, bounded in count and
// length so a chatty run costs no memory. It also remembers when restic
// first reported a backend retry, for the unreachable probe.
type tail struct {
	mu         sync.Mutex
	max        int
	lines      []string
	firstRetry time.Time
}

const (
	tailLines    = 20
	tailLineSize = 512
)

func newTail() *tail { return &tail{max: tailLines} }

func (t *tail) add(line string) {
	line = ansiRE.ReplaceAllString(strings.TrimRight(line, "\r\n"), "")
	// Progress bars on a terminal use \r; keep the last state only.
	if i := strings.LastIndexByte(line, '\r'); i >= 0 {
		line = line[i+1:]
	}
	if strings.TrimSpace(line) == "" {
		return
	}
	if len(line) > tailLineSize {
		line = line[:tailLineSize] + "…"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case strings.Contains(line, "retrying after") && t.firstRetry.IsZero():
		t.firstRetry = time.Now()
	case strings.Contains(line, "operation successful after"):
		// A request went through after retries: the storage answers
		// again, and an outage that follows is a new one.
		t.firstRetry = time.Time{}
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tail) snapshot() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...)
}

func (t *tail) retryingSince() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.firstRetry
}

// errorLines picks the lines worth showing: restic's retry chatter and
// lock-wait notices are noise once the run has failed.
func errorLines(lines []string, r *redactor) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "repo already locked, waiting") || strings.HasPrefix(l, "using temporary cache") ||
			strings.Contains(l, "operation successful after") {
			continue
		}
		out = append(out, r.redact(l))
	}
	// Retry lines repeat the same failure; keep the last few lines so the
	// final, most specific message is shown.
	const keep = 8
	if len(out) > keep {
		out = out[len(out)-keep:]
	}
	return out
}

func ctxKind(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return ctx.Err()
}

package restic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Exists says whether a repository is initialized at the location. A wrong
// password is an error (ErrWrongPassword), not "missing": the repository is
// there and must not be initialized again.
func (r *Repo) Exists(ctx context.Context) (bool, error) {
	// cat config reads one small file; --no-lock because reading the
	// config needs no lock and must not wait for one.
	err := r.run(ctx, runOpts{op: "cat config", args: []string{"cat", "config", "--no-lock", "--no-cache"}})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrRepositoryNotFound):
		return false, nil
	default:
		return false, err
	}
}

// Init creates the repository. For a local backend the directory is made
// first, as upstream does.
func (r *Repo) Init(ctx context.Context) error {
	if r.opts.Location.Provider == ProviderLocal {
		if err := os.MkdirAll(r.url, 0o755); err != nil {
			return fmt.Errorf("restic init: create %s: %w", r.url, err)
		}
	}
	return r.run(ctx, runOpts{op: "init", args: []string{"init", "--no-cache"}})
}

// EnsureInit initializes the repository unless it exists; created says
// whether it did.
func (r *Repo) EnsureInit(ctx context.Context) (created bool, err error) {
	ok, err := r.Exists(ctx)
	if err != nil || ok {
		return false, err
	}
	if err := r.Init(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// Backup runs `restic backup --json` of paths. progress, if set, gets every
// status line (RESTIC_PROGRESS_FPS per second); it runs on the goroutine
// reading restic's output, so it must be quick. On ErrIncomplete (some
// files unreadable) the snapshot was written and its summary is returned
// with the error.
func (r *Repo) Backup(ctx context.Context, paths, excludes []string, host string, progress func(Progress)) (*BackupSummary, error) {
	if len(paths) == 0 {
		return nil, errors.New("restic backup: no paths")
	}
	args := []string{"backup", "--json", "--retry-lock", r.retryLock}
	if host != "" {
		args = append(args, "--host", host)
	}
	for _, e := range excludes {
		args = append(args, "--exclude", e)
	}
	args = append(args, r.cacheArgs(true)...)
	args = append(args, "--")
	args = append(args, paths...)

	var sum *BackupSummary
	err := r.run(ctx, runOpts{op: "backup", args: args, onStdout: func(line []byte) {
		m, ok := parseMessage(line)
		if !ok {
			return
		}
		switch m.MessageType {
		case "status":
			if progress != nil {
				progress(m.backupProgress())
			}
		case "summary":
			sum = m.backupSummary()
			// restic prints status lines only every 1/FPS seconds and
			// none at the end; the summary is the final state.
			if progress != nil {
				progress(Progress{
					SecondsElapsed: uint64(sum.TotalDuration / time.Second),
					PercentDone:    1,
					TotalFiles:     sum.TotalFilesProcessed,
					FilesDone:      sum.TotalFilesProcessed,
					TotalBytes:     sum.TotalBytesProcessed,
					BytesDone:      sum.TotalBytesProcessed,
				})
			}
		}
	}})
	if err != nil {
		if errors.Is(err, ErrIncomplete) && sum != nil {
			return sum, err
		}
		return nil, err
	}
	if sum == nil || sum.SnapshotID == "" {
		return nil, &Error{Op: "backup", ExitCode: 0, Cause: errors.New("restic printed no summary with a snapshot id")}
	}
	return sum, nil
}

// Check runs `restic check` and reports the repository's integrity: true
// iff restic says "no errors were found". A damaged repository is
// integrity=false with a nil error; errors are for runs that could not
// check at all (wrong password, unreachable storage).
//
// It runs with --no-lock, as upstream: an exclusive lock would make a
// check wait for, or block, a concurrent backup into the same repository.
func (r *Repo) Check(ctx context.Context) (bool, error) {
	var clean, damaged bool
	look := func(line string) {
		l := strings.TrimSpace(line)
		switch {
		case l == "no errors were found":
			clean = true
		case strings.Contains(l, "repository contains errors"),
			strings.Contains(l, "The repository is damaged"):
			damaged = true
		}
	}
	err := r.run(ctx, runOpts{
		op:       "check",
		args:     append([]string{"check", "--no-lock"}, r.cacheArgs(false)...),
		onStdout: func(line []byte) { look(string(line)) },
		onStderr: look,
	})
	if err != nil {
		// restic opened and read the repository to find it damaged;
		// that is a result, not a failure to check.
		if damaged && ctx.Err() == nil {
			return false, nil
		}
		return false, err
	}
	return clean && !damaged, nil
}

// Stats runs `restic stats --json --mode raw-data`; TotalSize is what
// KubeStash reports as a component's size.
func (r *Repo) Stats(ctx context.Context) (*Stats, error) {
	var st Stats
	err := r.run(ctx, runOpts{
		op:             "stats",
		args:           append([]string{"stats", "--json", "--mode", "raw-data", "--no-lock", "--quiet"}, r.cacheArgs(false)...),
		onStdoutReader: func(rd io.Reader) error { return decodeFirstJSON(rd, &st) },
	})
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// Snapshots lists the repository's snapshots, or those with the given ids.
func (r *Repo) Snapshots(ctx context.Context, ids ...string) ([]Snapshot, error) {
	var out []Snapshot
	args := append([]string{"snapshots", "--json", "--no-lock"}, r.cacheArgs(false)...)
	args = append(append(args, "--"), ids...)
	err := r.run(ctx, runOpts{
		op:             "snapshots",
		args:           args,
		onStdoutReader: func(rd io.Reader) error { return decodeFirstJSON(rd, &out) },
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Restore runs `restic restore --json <snapshotID> --target <target>`.
// snapshotID may name a folder of the snapshot ("<id>:/kubestash-data"),
// whose contents are then restored directly into target.
func (r *Repo) Restore(ctx context.Context, snapshotID, target string, includes, excludes []string, progress func(Progress)) (*RestoreSummary, error) {
	if snapshotID == "" || target == "" {
		return nil, errors.New("restic restore: snapshot id and target are required")
	}
	args := []string{"restore", "--json", "--retry-lock", r.retryLock, "--target", target}
	for _, p := range includes {
		args = append(args, "--include", p)
	}
	for _, p := range excludes {
		args = append(args, "--exclude", p)
	}
	args = append(args, r.cacheArgs(false)...)
	args = append(args, "--", snapshotID)

	var sum *RestoreSummary
	err := r.run(ctx, runOpts{op: "restore", args: args, onStdout: func(line []byte) {
		m, ok := parseMessage(line)
		if !ok {
			return
		}
		switch m.MessageType {
		case "status":
			if progress != nil {
				progress(m.restoreProgress())
			}
		case "summary":
			sum = m.restoreSummary()
			if progress != nil {
				progress(Progress{
					SecondsElapsed: sum.SecondsElapsed,
					PercentDone:    1,
					TotalFiles:     sum.TotalFiles,
					FilesDone:      sum.FilesRestored + sum.FilesSkipped,
					TotalBytes:     sum.TotalBytes,
					BytesDone:      sum.BytesRestored + sum.BytesSkipped,
				})
			}
		}
	}})
	if err != nil {
		return nil, err
	}
	if sum == nil {
		sum = &RestoreSummary{}
	}
	return sum, nil
}

// Forget removes snapshots by id, and with prune the data only they used.
// Stale locks are removed first (never live ones), since forget needs an
// exclusive lock that any leftover lock would block.
func (r *Repo) Forget(ctx context.Context, ids []string, prune bool) error {
	if len(ids) == 0 {
		return nil
	}
	if err := r.UnlockStale(ctx); err != nil {
		return err
	}
	args := []string{"forget", "--retry-lock", r.retryLock}
	if prune {
		args = append(args, "--prune")
	}
	args = append(args, r.cacheArgs(false)...)
	args = append(append(args, "--"), ids...)
	return r.run(ctx, runOpts{op: "forget", args: args})
}

// UnlockStale runs `restic unlock`, which removes only stale locks: those
// of a process on this host that is gone, and those not refreshed for 30
// minutes (restic refreshes live locks every 5). A live lock is never
// removed; there is deliberately no way to pass --remove-all.
func (r *Repo) UnlockStale(ctx context.Context) error {
	return r.run(ctx, runOpts{op: "unlock", args: []string{"unlock", "--no-cache"}})
}

// Locks lists the ids of the repository's lock files.
func (r *Repo) Locks(ctx context.Context) ([]string, error) {
	var ids []string
	err := r.run(ctx, runOpts{op: "list locks", args: []string{"list", "locks", "--no-lock", "--no-cache"}, onStdout: func(line []byte) {
		if s := strings.TrimSpace(string(line)); s != "" {
			ids = append(ids, s)
		}
	}})
	return ids, err
}

// decodeFirstJSON decodes the first JSON value of r, skipping any text
// restic printed before it.
func decodeFirstJSON(r io.Reader, v any) error {
	br := newPeekReader(r)
	if err := br.skipTo('{', '['); err != nil {
		return fmt.Errorf("no JSON in output: %w", err)
	}
	return json.NewDecoder(br).Decode(v)
}

// peekReader skips bytes until one of a set.
type peekReader struct {
	r   io.Reader
	buf []byte
}

func newPeekReader(r io.Reader) *peekReader { return &peekReader{r: r} }

func (p *peekReader) skipTo(stops ...byte) error {
	one := make([]byte, 4096)
	for {
		n, err := p.r.Read(one)
		if n > 0 {
			if i := bytes.IndexAny(one[:n], string(stops)); i >= 0 {
				p.buf = append(p.buf[:0], one[i:n]...)
				return nil
			}
		}
		if err != nil {
			return err
		}
	}
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.buf) > 0 {
		n := copy(b, p.buf)
		p.buf = p.buf[n:]
		return n, nil
	}
	return p.r.Read(b)
}

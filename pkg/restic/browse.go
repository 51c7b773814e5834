package restic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// What a snapshot holds, read without restoring it: one directory (Dir),
// a listing that may be recursive (Ls), and the bytes of a file or a tar
// of a directory (Dump). All run with --no-lock: they only read, and a
// browse must neither wait for a backup's lock nor leave a lock behind.

var (
	// ErrPathNotFound: the path is not in the snapshot.
	ErrPathNotFound = errors.New("path not found in snapshot")
	// ErrNotDirectory: Dir was asked for a path that is not a directory.
	ErrNotDirectory = errors.New("not a directory")
	// ErrSnapshotNotFound: the restic snapshot is not in the repository
	// (forgotten, or another repository).
	ErrSnapshotNotFound = errors.New("restic snapshot not found")
	// ErrStop, returned by the callback of Dir or Ls, ends the listing
	// early without an error; restic is stopped.
	ErrStop = errors.New("stop listing")
)

// Node is one entry of a snapshot, as restic stores it.
type Node struct {
	Name string `json:"name"`
	// Type is restic's: file, dir, symlink, dev, chardev, fifo, socket.
	Type string `json:"type"`
	// Path is set by Ls: the entry's path below the listed snapshot
	// (folder).
	Path       string      `json:"path"`
	Mode       os.FileMode `json:"mode"`
	ModTime    time.Time   `json:"mtime"`
	UID        uint32      `json:"uid"`
	GID        uint32      `json:"gid"`
	Size       uint64      `json:"size"`
	LinkTarget string      `json:"linktarget"`
	// LinkTargetRaw holds a link target that is not valid UTF-8.
	LinkTargetRaw []byte `json:"linktarget_raw"`
}

// Target is the node's link target.
func (n *Node) Target() string {
	if n.LinkTargetRaw != nil {
		return string(n.LinkTargetRaw)
	}
	return n.LinkTarget
}

// Dir lists one directory of a snapshot: `restic cat tree <snapshot>`,
// where snapshot is "<id>" or "<id>:<folder>". The tree is decoded node by
// node, never held whole. A folder that is missing is ErrPathNotFound, one
// that is a file ErrNotDirectory.
func (r *Repo) Dir(ctx context.Context, snapshot string, fn func(Node) error) error {
	args := append([]string{"cat", "tree", "--no-lock"}, r.cacheArgs(false)...)
	args = append(args, "--", snapshot)
	return r.listing(ctx, "cat tree", args, func(rd io.Reader, emit func(Node) error) error {
		dec := json.NewDecoder(rd)
		// {"nodes":[ {...}, ... ]}
		if err := expectDelim(dec, '{'); err != nil {
			return err
		}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return err
			}
			if key != "nodes" {
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					return err
				}
				continue
			}
			if err := expectDelim(dec, '['); err != nil {
				return err
			}
			for dec.More() {
				var n Node
				if err := dec.Decode(&n); err != nil {
					return err
				}
				if err := emit(n); err != nil {
					return err
				}
			}
			if err := expectDelim(dec, ']'); err != nil {
				return err
			}
		}
		return nil
	}, fn)
}

// Ls lists dir (absolute, below the snapshot's folder) and, with
// recursive, its whole subtree: `restic ls --json <snapshot> <dir>`. The
// first node is dir itself, unless dir is "/"; a missing dir lists
// nothing. Node.Path is relative to the snapshot's folder. restic's ls
// does not print link targets.
func (r *Repo) Ls(ctx context.Context, snapshot, dir string, recursive bool, fn func(Node) error) error {
	args := append([]string{"ls", "--json", "--no-lock"}, r.cacheArgs(false)...)
	if recursive {
		args = append(args, "--recursive")
	}
	args = append(args, "--", snapshot, dir)
	return r.listing(ctx, "ls", args, func(rd io.Reader, emit func(Node) error) error {
		return readLines(rd, func(line []byte) {
			// readLines has no way to stop; emit's error is kept by
			// listing and ends the run.
			var m struct {
				MessageType string `json:"message_type"`
				Node
			}
			if json.Unmarshal(line, &m) != nil || m.MessageType != "node" {
				return
			}
			_ = emit(m.Node)
		})
	}, fn)
}

// listing runs a restic command whose stdout decode turns into nodes for
// fn. fn returning ErrStop (or any error) stops restic at once: a client
// that wanted 100 entries of a million does not wait for the rest.
func (r *Repo) listing(ctx context.Context, op string, args []string, decode func(io.Reader, func(Node) error) error, fn func(Node) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var fnErr error
	emit := func(n Node) error {
		if fnErr != nil {
			return fnErr
		}
		if err := fn(n); err != nil {
			fnErr = err
			cancel()
			return err
		}
		return nil
	}
	err := r.run(ctx, runOpts{op: op, args: args, onStdoutReader: func(rd io.Reader) error {
		if err := decode(rd, emit); err != nil && fnErr == nil {
			return fmt.Errorf("decode %s output: %w", op, err)
		}
		return nil
	}})
	switch {
	case errors.Is(fnErr, ErrStop):
		return nil
	case fnErr != nil:
		return fnErr
	}
	return pathError(err)
}

// Dump writes a file of a snapshot to w, or a directory as a tar archive
// (paths relative to it; modes, owners, times and symlinks kept): `restic
// dump --archive tar <snapshot> <file>`. It streams through a fixed
// buffer, whatever the size. A missing file is ErrPathNotFound.
func (r *Repo) Dump(ctx context.Context, snapshot, file string, w io.Writer) error {
	args := append([]string{"dump", "--archive", "tar", "--no-lock"}, r.cacheArgs(false)...)
	args = append(args, "--", snapshot, file)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var writeErr error
	err := r.run(ctx, runOpts{op: "dump", args: args, onStdoutReader: func(rd io.Reader) error {
		buf := make([]byte, 256<<10)
		for {
			n, rerr := rd.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					// Nobody reads any more: stop restic rather
					// than drain the rest into nothing.
					writeErr = werr
					cancel()
					return werr
				}
			}
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			if rerr != nil {
				return rerr
			}
		}
	}})
	if writeErr != nil {
		return fmt.Errorf("restic dump: write: %w", writeErr)
	}
	return pathError(err)
}

// pathError gives a failed browse run the kind its stderr tells: restic
// exits 1 for a missing path, a file where a directory was asked, and an
// unknown snapshot alike.
func pathError(err error) error {
	var re *Error
	if !errors.As(err, &re) || re.Kind != nil {
		return err
	}
	text := strings.Join(re.Stderr, "\n")
	switch {
	case strings.Contains(text, ": not a directory"), strings.Contains(text, "should be a dir, but is"):
		re.Kind = ErrNotDirectory
	case strings.Contains(text, ": not found"), strings.Contains(text, "not found in snapshot"):
		re.Kind = ErrPathNotFound
	case strings.Contains(text, "no matching ID found"), strings.Contains(text, "could not find snapshot"),
		strings.Contains(text, "failed to find snapshot"):
		re.Kind = ErrSnapshotNotFound
	}
	return re
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("unexpected %v, want %v", tok, want)
	}
	return nil
}

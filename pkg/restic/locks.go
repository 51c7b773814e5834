package restic

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Lock is the content of a restic lock file (`restic cat lock <id>`), as
// restic writes it (internal/restic/lock.go).
type Lock struct {
	// Time the lock was created or last refreshed; restic refreshes a
	// live lock every 5 minutes and takes one older than 30 minutes for
	// stale.
	Time time.Time `json:"time"`
	// Exclusive locks (prune, forget, unlock --remove-all, check without
	// --no-lock) block every other lock; non-exclusive ones (backup,
	// restore) block only exclusive ones.
	Exclusive bool `json:"exclusive"`
	// Hostname is os.Hostname() of the restic process: in a Pod, the Pod's
	// name. restic's --host does not change it.
	Hostname string `json:"hostname"`
	Username string `json:"username"`
	// PID of the restic process, in its own PID namespace.
	PID int    `json:"pid"`
	UID uint32 `json:"uid,omitempty"`
	GID uint32 `json:"gid,omitempty"`
}

// ReadLock reads lock file id (an id from Locks). It takes no lock itself
// (--no-lock): reading a lock must not wait for, or be blocked by, the
// exclusive lock it may be reading. A lock removed meanwhile is an error
// like any other; the caller tells it apart by looking for the file.
func (r *Repo) ReadLock(ctx context.Context, id string) (*Lock, error) {
	if id == "" {
		return nil, fmt.Errorf("restic cat lock: empty id")
	}
	var l Lock
	err := r.run(ctx, runOpts{
		op:             "cat lock",
		args:           []string{"cat", "lock", "--no-lock", "--no-cache", "--", id},
		onStdoutReader: func(rd io.Reader) error { return decodeFirstJSON(rd, &l) },
	})
	if err != nil {
		return nil, err
	}
	return &l, nil
}

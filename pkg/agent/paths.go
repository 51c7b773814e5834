package agent

import (
	"path"
	"path/filepath"
	"strings"
)

// Paths: the agent works with container paths (/kubestash-data, the
// mountPath of a local BackupStorage, /kubestash-tmp), as a Job's Pod
// mounts them. What it records keeps them (summary.hostPath is
// "/kubestash-data"), so a Snapshot restores into any Pod that mounts its
// target there. restic itself records the folder it read; a restore
// therefore takes the folder restic stored (from `restic snapshots`) and
// puts its content at hostPath, which in a Pod is exactly upstream's
// `restic restore <id> --target /`.

// onDisk is where container path p is on this machine: p itself in a Pod,
// below Agent.Root when one is set (unit tests). A relative path (a
// relative restic exclude pattern matches anywhere) stays as it is.
func (a *Agent) onDisk(p string) string {
	if a.Root == "" || !path.IsAbs(p) {
		return p
	}
	return filepath.Join(a.Root, filepath.FromSlash(path.Clean(p)))
}

// within reports whether p is base or inside it, and the rest of p.
func within(p, base string) (string, bool) {
	p, base = path.Clean(p), path.Clean(base)
	switch {
	case p == base:
		return "", true
	case base == "/":
		return strings.TrimPrefix(p, "/"), true
	case strings.HasPrefix(p, base+"/"):
		return p[len(base)+1:], true
	}
	return "", false
}

package agent

import (
	"path"
	"strings"

	"kubestash.dev/kubestash/pkg/pathmap"
)

// Paths: the agent works with in-Pod paths (/kubestash-data, the mountPath
// of a local BackupStorage, /kubestash-tmp) and passes each through the
// Agent's pathmap.Map before touching the disk. In a Pod the map is empty;
// under the local node (pkg/pathmap) it points at the host folders.
//
// What the agent records keeps the in-Pod path (summary.hostPath is
// "/kubestash-data"), so a Snapshot taken through a map reads like any
// other and restores anywhere. restic itself records the folder it read;
// a restore therefore takes the folder restic stored (from `restic
// snapshots`) and puts its content at the mapped hostPath, which without a
// map is exactly upstream's `restic restore <id> --target /`.

// localPattern maps a restic exclude pattern: an absolute one is an in-Pod
// path; a relative one matches anywhere and stays.
func localPattern(m pathmap.Map, p string) string {
	if !path.IsAbs(p) {
		return p
	}
	return m.Translate(p)
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

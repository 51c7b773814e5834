// Package layout knows where the catalog lives in a backend:
//
//	metadata.yaml                     BackendMeta, with the list of repositories
//	R/repository.yaml                 Repository
//	R/snapshots/<name>.yaml           Snapshot
//	R/backupsessions/<name>.yaml      BackupSession
//	R/restoresessions/<name>.yaml     RestoreSession
//	R/<sessions>/history/<name>-<t>.yaml  a session of an earlier namespace
//	                                  incarnation, replaced by a new one of
//	                                  its name (see HistoryKey); not served
//	R/forget/<snapshot>.yaml          restic data to forget (see ForgetDir)
//	R/repository/v1/<session>/<comp>/ restic data, never listed
//
// Keys are relative to the BackupStorage's prefix (or local directory); R is
// a Repository's spec.path.
package layout

import (
	"fmt"
	"path"
	"strings"
)

// Fixed names of the layout.
const (
	MetadataFile       = "metadata.yaml"
	RepositoryFile     = "repository.yaml"
	SnapshotsDir       = "snapshots"
	BackupSessionsDir  = "backupsessions"
	RestoreSessionsDir = "restoresessions"
	// ResticDir holds the restic repositories of a Repository; discovery
	// never descends into it (it can hold millions of objects).
	ResticDir = "repository"
	// HistoryDir, inside a sessions folder, keeps the sessions replaced by
	// a later incarnation of their namespace; scans never list it.
	HistoryDir = "history"
	fileExt    = ".yaml"
)

// Kind of catalog file, by the folder it sits in.
type Kind int

const (
	KindRepository Kind = iota
	KindSnapshot
	KindBackupSession
	KindRestoreSession
)

func (k Kind) dir() string {
	switch k {
	case KindSnapshot:
		return SnapshotsDir
	case KindBackupSession:
		return BackupSessionsDir
	case KindRestoreSession:
		return RestoreSessionsDir
	}
	return ""
}

func (k Kind) String() string {
	switch k {
	case KindRepository:
		return "Repository"
	case KindSnapshot:
		return "Snapshot"
	case KindBackupSession:
		return "BackupSession"
	case KindRestoreSession:
		return "RestoreSession"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// RepoDir validates a Repository path and returns it as a key prefix without
// leading or trailing slashes. Upstream paths often start with "/".
func RepoDir(repoPath string) (string, error) {
	p := strings.Trim(repoPath, "/")
	if p == "" {
		return "", fmt.Errorf("repository path %q is empty", repoPath)
	}
	for _, el := range strings.Split(p, "/") {
		switch el {
		case "", ".", "..":
			return "", fmt.Errorf("repository path %q: empty, \".\" or \"..\" element", repoPath)
		case ResticDir, SnapshotsDir, BackupSessionsDir, RestoreSessionsDir, ForgetDir:
			// A repository inside another's catalog folders would be
			// found by neither discovery nor its parent.
			return "", fmt.Errorf("repository path %q: %q is reserved by the layout", repoPath, el)
		}
	}
	return path.Clean(p), nil
}

// Key returns the file key of an object of kind k named name in the
// repository at repoPath (name is ignored for KindRepository).
func Key(k Kind, repoPath, name string) (string, error) {
	dir, err := RepoDir(repoPath)
	if err != nil {
		return "", err
	}
	if k == KindRepository {
		return dir + "/" + RepositoryFile, nil
	}
	if name == "" || strings.ContainsAny(name, "/\\") || name == "." || name == ".." {
		return "", fmt.Errorf("%s name %q is not a valid file name", k, name)
	}
	return dir + "/" + k.dir() + "/" + name + fileExt, nil
}

// Parse is the inverse of Key: it tells which kind of file key is and in
// which repository it sits. ok is false for keys that are not catalog files.
func Parse(key string) (k Kind, repoDir, name string, ok bool) {
	if strings.HasSuffix(key, "/"+RepositoryFile) {
		return KindRepository, strings.TrimSuffix(key, "/"+RepositoryFile), "", true
	}
	dir, file := path.Split(key)
	if !strings.HasSuffix(file, fileExt) || dir == "" {
		return 0, "", "", false
	}
	name = strings.TrimSuffix(file, fileExt)
	parent, sub := path.Split(strings.TrimSuffix(dir, "/"))
	repoDir = strings.TrimSuffix(parent, "/")
	if repoDir == "" || name == "" {
		return 0, "", "", false
	}
	for _, kk := range []Kind{KindSnapshot, KindBackupSession, KindRestoreSession} {
		if sub == kk.dir() {
			return kk, repoDir, name, true
		}
	}
	return 0, "", "", false
}

// HistoryKey returns where the session file fileKey (a BackupSession or
// RestoreSession, see Key) is kept once a session of a later incarnation of
// its namespace takes its name: in the history folder next to it, named
// after the session and stamp (its creation time, for people to read).
func HistoryKey(fileKey, stamp string) (string, error) {
	k, _, name, ok := Parse(fileKey)
	if !ok || (k != KindBackupSession && k != KindRestoreSession) {
		return "", fmt.Errorf("%q is not a session file", fileKey)
	}
	if stamp == "" || strings.ContainsAny(stamp, "/\\") {
		return "", fmt.Errorf("history stamp %q is not valid in a file name", stamp)
	}
	dir, _ := path.Split(fileKey)
	return dir + HistoryDir + "/" + name + "-" + stamp + fileExt, nil
}

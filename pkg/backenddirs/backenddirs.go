// Package backenddirs decides which directories may hold a local backend.
//
// A BackupStorage with provider local names a directory that the catalog
// server and the controller open as themselves (root on the node, in the
// development environment) and that backup Jobs mount: a host path for a
// hostPath volume, else the mountPath at which an administrator mounted the
// volume into the servers. A BackupStorage is written by namespace users,
// so the directory must be one an administrator allowed (the servers' flag
// --local-backend-dirs) and never a system directory, whatever the flag
// says: otherwise a tenant's storage on /usr has the servers write
// metadata.yaml there and read every file under it.
package backenddirs

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
)

// System lists directories that never hold a backend, nor anything under
// them: the node's programs, configuration, kernel interfaces, and the
// state of the kubelet and the container runtimes.
var System = []string{
	"/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root",
	"/run", "/sbin", "/sys", "/usr", "/var/run", "/var/lib/kubelet", "/var/lib/containerd",
	"/var/lib/docker", "/var/lib/etcd", "/var/log",
}

// Policy lists the directories under which local backends may be; the
// zero Policy allows none.
type Policy struct {
	Allowed []string
}

// Parse reads a comma-separated list of absolute directories.
func Parse(list string) (Policy, error) {
	var p Policy
	for _, d := range strings.Split(list, ",") {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		if !path.IsAbs(d) {
			return Policy{}, fmt.Errorf("local backend directory %q is not an absolute path", d)
		}
		p.Allowed = append(p.Allowed, path.Clean(d))
	}
	return p, nil
}

// String is the flag's form of p.
func (p Policy) String() string { return strings.Join(p.Allowed, ",") }

// Check returns an error naming the field of spec.storage.local that puts
// the backend where p does not allow it.
func (p Policy) Check(l *storagev1alpha1.LocalSpec) *field.Error {
	local := field.NewPath("spec", "storage", "local")
	if sp := l.SubPath; sp != "" && (path.IsAbs(sp) || hasDotDot(sp)) {
		return field.Invalid(local.Child("subPath"), sp, "must be a relative path without '..'")
	}
	if l.HostPath != nil {
		return p.checkDir(local.Child("hostPath", "path"), l.HostPath.Path, path.Join(l.HostPath.Path, l.SubPath))
	}
	// The servers open the volume where it is mounted into them.
	return p.checkDir(local.Child("mountPath"), l.MountPath, l.MountPath)
}

// CheckResolved checks dir, a directory the caller is about to open, after
// resolving its symbolic links: an allowed directory that is a link to /usr
// is /usr. A directory that does not exist yet is checked as written.
func (p Policy) CheckResolved(dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		real = dir
	}
	if err := p.allows(real); err != "" {
		return fmt.Errorf("local backend directory %s resolves to %s, which %s", dir, real, err)
	}
	return nil
}

func (p Policy) checkDir(fld *field.Path, value, dir string) *field.Error {
	if !path.IsAbs(value) || hasDotDot(value) {
		return field.Invalid(fld, value, "must be an absolute path without '..'")
	}
	if why := p.allows(dir); why != "" {
		return field.Forbidden(fld, fmt.Sprintf("%s %s", dir, why))
	}
	return nil
}

// allows says why dir (absolute) may not hold a backend, "" if it may.
func (p Policy) allows(dir string) string {
	dir = path.Clean(dir)
	if dir == "/" {
		return "is the root directory"
	}
	for _, s := range System {
		if under(dir, s) {
			return fmt.Sprintf("is a system directory (under %s)", s)
		}
	}
	for _, a := range p.Allowed {
		if under(dir, a) {
			return ""
		}
	}
	if len(p.Allowed) == 0 {
		return "is not allowed: an administrator allows directories for local backends with the servers' --local-backend-dirs (none are allowed now)"
	}
	return fmt.Sprintf("is not under a directory allowed for local backends (%s)", p)
}

func under(dir, parent string) bool {
	return dir == parent || parent == "/" || strings.HasPrefix(dir, parent+"/")
}

func hasDotDot(p string) bool {
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return true
		}
	}
	return false
}

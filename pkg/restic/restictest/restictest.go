// Package restictest holds helpers for tests that run the real restic: where
// the pinned binary is, a generator of datasets (small and large files,
// symlinks, empty directories, odd modes and times) and a digest of a
// directory tree to prove a restore byte-identical.
package restictest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Binary is bin/restic of this module (built by hack/tools.sh), or
// $KUBESTASH_TEST_RESTIC. The test is skipped when it is missing, with the
// command that builds it.
func Binary(t testing.TB) string {
	t.Helper()
	// KUBESTASH_TEST_RESTIC names another build of the same restic, for
	// running these tests while bin/ is being rebuilt.
	if p := os.Getenv("KUBESTASH_TEST_RESTIC"); p != "" {
		return p
	}
	root, err := repoRoot()
	if err != nil {
		t.Skipf("restic binary: %v", err)
	}
	p := filepath.Join(root, "bin", "restic")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("restic binary %s missing; build it with hack/tools.sh restic", p)
	}
	return p
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module kubestash.dev/kubestash\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("module root not found above the working directory")
		}
		dir = parent
	}
}

// Dataset describes generated test data.
type Dataset struct {
	// SmallFiles of 0..SmallMax bytes, spread over nested directories.
	SmallFiles int
	SmallMax   int
	// LargeFiles of LargeSize bytes each.
	LargeFiles int
	LargeSize  int64
	// Seed makes the content reproducible.
	Seed uint64
}

// Stats of a generated dataset.
type Stats struct {
	Files int
	Bytes int64
}

// Generate writes ds under dir: random (incompressible) content, nested
// folders, symlinks (relative, absolute and dangling), empty folders,
// files with modes 0600/0640/0755, owners other than root's (when run as
// root), and distinct past mtimes on files and folders, so that a restore
// that loses any of these shows.
func Generate(dir string, ds Dataset) (Stats, error) {
	var st Stats
	rng := rand.New(rand.NewChaCha8(seed(ds.Seed)))
	buf := make([]byte, 1<<20)
	base := time.Date(2024, 1, 3, 11, 25, 5, 123456789, time.UTC)
	modes := []fs.FileMode{0o644, 0o600, 0o640, 0o755}

	write := func(p string, size int64, mode fs.FileMode) error {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		for left := size; left > 0; {
			n := min(left, int64(len(buf)))
			fillRandom(rng, buf[:n])
			if _, err := f.Write(buf[:n]); err != nil {
				_ = f.Close()
				return err
			}
			left -= n
		}
		if err := f.Close(); err != nil {
			return err
		}
		st.Files++
		st.Bytes += size
		return os.Chmod(p, mode)
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return st, err
	}
	var dirs []string
	for i := 0; i < ds.SmallFiles; i++ {
		// 50 files per folder, folders two levels deep.
		d := filepath.Join(dir, fmt.Sprintf("d%02d", (i/50)%20), fmt.Sprintf("s%04d", i/50))
		if i%50 == 0 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return st, err
			}
			dirs = append(dirs, d)
		}
		size := int64(0)
		if ds.SmallMax > 0 {
			size = int64(rng.IntN(ds.SmallMax + 1))
		}
		if err := write(filepath.Join(d, fmt.Sprintf("f%05d.dat", i)), size, modes[i%len(modes)]); err != nil {
			return st, err
		}
	}
	if ds.LargeFiles > 0 {
		d := filepath.Join(dir, "large")
		if err := os.MkdirAll(d, 0o750); err != nil {
			return st, err
		}
		dirs = append(dirs, d)
		for i := 0; i < ds.LargeFiles; i++ {
			if err := write(filepath.Join(d, fmt.Sprintf("big%02d.bin", i)), ds.LargeSize, 0o640); err != nil {
				return st, err
			}
		}
	}
	// Special entries.
	if err := os.MkdirAll(filepath.Join(dir, "empty", "nested-empty"), 0o700); err != nil {
		return st, err
	}
	if err := write(filepath.Join(dir, "top.txt"), 11, 0o644); err != nil {
		return st, err
	}
	if err := write(filepath.Join(dir, "empty-file"), 0, 0o600); err != nil {
		return st, err
	}
	for name, target := range map[string]string{
		"link-relative": "top.txt",
		"link-absolute": "/etc/hostname",
		"link-dangling": "does/not/exist",
		"link-dir":      "empty",
	} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			return st, err
		}
	}
	// Owners other than the writer's, when the writer may set them (root):
	// files of two other users, a folder and a symlink of others.
	if os.Geteuid() == 0 {
		owners := [][2]int{{0, 0}, {1001, 1001}, {2002, 3003}}
		n := 0
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Type()&fs.ModeSymlink != 0 {
				return err
			}
			n++
			o := owners[n%len(owners)]
			return os.Lchown(p, o[0], o[1])
		})
		if err != nil {
			return st, err
		}
		if err := os.Lchown(filepath.Join(dir, "empty"), 1234, 5678); err != nil {
			return st, err
		}
		if err := os.Lchown(filepath.Join(dir, "link-relative"), 4321, 4321); err != nil {
			return st, err
		}
	}
	// Times last, deepest first, so that writing a child does not bump
	// the folder's mtime afterwards.
	i := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		i++
		ts := base.Add(time.Duration(i) * time.Minute)
		return os.Chtimes(p, ts, ts)
	})
	if err != nil {
		return st, err
	}
	dirs = append(dirs, filepath.Join(dir, "empty", "nested-empty"), filepath.Join(dir, "empty"))
	for j := len(dirs) - 1; j >= 0; j-- {
		ts := base.Add(-time.Duration(j+1) * time.Hour)
		if err := os.Chtimes(dirs[j], ts, ts); err != nil {
			return st, err
		}
	}
	return st, nil
}

func seed(s uint64) [32]byte {
	var out [32]byte
	for i := range 4 {
		v := s + uint64(i)*0x9E3779B97F4A7C15
		for b := range 8 {
			out[i*8+b] = byte(v >> (8 * b))
		}
	}
	return out
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		v := rng.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(rng.Uint32())
	}
}

// Entry is what a restore must reproduce of one file, folder or symlink.
type Entry struct {
	Type    string // "file", "dir", "symlink"
	Mode    fs.FileMode
	ModTime time.Time // folders and files; symlink times are not compared
	Size    int64
	SHA256  string // files
	Link    string // symlinks
	// UID and GID own the entry.
	UID, GID uint32
}

func (e Entry) String() string {
	return fmt.Sprintf("%s %v %d:%d %s size=%d sha=%.12s link=%q", e.Type, e.Mode, e.UID, e.GID, e.ModTime.Format(time.RFC3339Nano), e.Size, e.SHA256, e.Link)
}

// Digest describes every entry below root (root itself excluded: it is the
// mount point of the volume, whose own mode and times belong to whoever
// mounts it), keyed by slash-separated relative path.
func Digest(root string) (map[string]Entry, error) {
	out := map[string]Entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := Entry{Mode: fi.Mode()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			e.UID, e.GID = st.Uid, st.Gid
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Type = "symlink"
			if e.Link, err = os.Readlink(p); err != nil {
				return err
			}
		case fi.IsDir():
			e.Type, e.ModTime = "dir", fi.ModTime().UTC()
		case fi.Mode().IsRegular():
			e.Type, e.ModTime, e.Size = "file", fi.ModTime().UTC(), fi.Size()
			if e.SHA256, err = hashFile(p); err != nil {
				return err
			}
		default:
			e.Type = "other"
		}
		out[filepath.ToSlash(rel)] = e
		return nil
	})
	return out, err
}

// Diff lists the differences between two digests, at most max of them.
func Diff(want, got map[string]Entry, max int) []string {
	var out []string
	add := func(s string) {
		if len(out) < max {
			out = append(out, s)
		}
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			add("missing " + k)
		case w != g:
			add(fmt.Sprintf("%s: want %v, got %v", k, w, g))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			add("unexpected " + k)
		}
	}
	return out
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

package kubectlplugin

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newDownloadCommand(o *Options) *cobra.Command {
	var out string
	var keepLinks bool
	cmd := &cobra.Command{
		Use:   "download SNAPSHOT PATH [-o FILE|DIR]",
		Short: "Download a file or a directory of a Snapshot",
		Long: `Download a file or a directory of a Snapshot (snapshots/download).

A file is written to FILE (-o), by default its base name in the current
directory; "-o -" writes it (or a directory's tar) to stdout. A directory
comes as a tar, which is
extracted into DIR (-o, by default the directory's base name), with its
modes and mtimes (not owners) and its symlinks. An entry of the tar that
would land outside DIR (an absolute name, "..", a hard link out of DIR, or
a path through a symlink) stops the download with an error. A symlink whose
target is absolute or outside DIR is skipped with a warning, unless
--keep-outside-links; nothing is ever written through a symlink.`,
		Example: `  kubectl kubestash download s3-repo-pvc-backup-daily-1733580000 /config/app.yaml -o app.yaml
  kubectl kubestash download s3-repo-pvc-backup-daily-1733580000 /data -o restored-data`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.clients()
			if err != nil {
				return err
			}
			body, kind, err := openDownload(cmd.Context(), c, args[0], args[1])
			if err != nil {
				return err
			}
			defer body.Close()
			p := cleanPath(args[1])
			dest := out
			if dest == "" {
				dest = path.Base(p)
				if dest == "/" || dest == "." {
					dest = args[0]
				}
			}
			start := time.Now()
			if dest == "-" {
				_, err = io.Copy(o.Out, body)
				return err
			}
			if kind == contentTar {
				warn := func(s string) { fmt.Fprintln(o.ErrOut, "warning: "+s) }
				n, err := ExtractTar(body, dest, ExtractOptions{KeepOutsideLinks: keepLinks, Warn: warn})
				if err != nil {
					return fmt.Errorf("extracting %s into %s: %w", p, dest, err)
				}
				fmt.Fprintf(o.ErrOut, "%s: %d entries extracted into %s in %s\n", p, n, dest, humanDuration(time.Since(start)))
				return nil
			}
			if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
				dest = filepath.Join(dest, path.Base(p))
			}
			n, err := writeFile(dest, body)
			if err != nil {
				return err
			}
			fmt.Fprintf(o.ErrOut, "%s: %d bytes written to %s in %s\n", p, n, dest, humanDuration(time.Since(start)))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", `file or directory to write to ("-": stdout, a directory as tar)`)
	cmd.Flags().BoolVar(&keepLinks, "keep-outside-links", false, "create the directory's symlinks whose target is absolute or outside DIR (skipped by default)")
	return cmd
}

// writeFile writes r to name through a temporary file beside it, so a
// failed download leaves no partial file.
func writeFile(name string, r io.Reader) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".part-*")
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return n, err
	}
	return n, nil
}

// ExtractOptions say what ExtractTar does with symlinks out of the
// directory.
type ExtractOptions struct {
	// KeepOutsideLinks creates symlinks whose target is absolute or
	// outside the directory (nothing is ever written through a symlink).
	// Without it they are skipped, each reported to Warn.
	KeepOutsideLinks bool
	// Warn receives a line per skipped entry.
	Warn func(string)
}

// ExtractTar extracts a tar into dir (created if missing) and returns how
// many entries it wrote. It refuses, with an error naming the entry, an
// entry that would write outside dir: an absolute name or one with "..", a
// hard link whose target leaves dir, and a name through a symlink. A
// symlink whose target is absolute or leaves dir is skipped (and reported)
// unless opts.KeepOutsideLinks. Permission bits (without set-ID and sticky
// bits) and mtimes are kept; owners are not; devices and FIFOs are
// skipped.
func ExtractTar(r io.Reader, dir string, opts ExtractOptions) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return 0, err
	}
	type dirMeta struct {
		path  string
		mode  fs.FileMode
		mtime time.Time
	}
	var dirs []dirMeta
	tr := tar.NewReader(r)
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, err
		}
		rel, err := safeName(h.Name)
		if err != nil {
			return n, err
		}
		if rel == "." {
			if h.Typeflag == tar.TypeDir {
				dirs = append(dirs, dirMeta{root, fs.FileMode(h.Mode) & fs.ModePerm, h.ModTime})
			}
			continue
		}
		target := filepath.Join(root, filepath.FromSlash(rel))
		if err := noSymlinkParents(root, rel); err != nil {
			return n, fmt.Errorf("%s: %w", h.Name, err)
		}
		mode := fs.FileMode(h.Mode) & fs.ModePerm
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return n, err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if fi, err := os.Lstat(target); err == nil && !fi.IsDir() {
				return n, fmt.Errorf("%s: exists and is not a directory", h.Name)
			}
			if err := os.MkdirAll(target, 0o700); err != nil {
				return n, err
			}
			dirs = append(dirs, dirMeta{target, mode, h.ModTime})
		case tar.TypeReg, tar.TypeRegA:
			if err := replace(target); err != nil {
				return n, err
			}
			f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return n, err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = os.Chmod(target, mode)
			}
			if err == nil {
				err = os.Chtimes(target, h.ModTime, h.ModTime)
			}
			if err != nil {
				return n, err
			}
		case tar.TypeSymlink:
			if err := insideLink(rel, h.Linkname); err != nil && !opts.KeepOutsideLinks {
				if opts.Warn != nil {
					opts.Warn(fmt.Sprintf("skipped symlink %s -> %s: %v (--keep-outside-links creates it)", rel, h.Linkname, err))
				}
				continue
			}
			if err := replace(target); err != nil {
				return n, err
			}
			if err := os.Symlink(h.Linkname, target); err != nil {
				return n, err
			}
		case tar.TypeLink:
			lrel, err := safeName(h.Linkname)
			if err != nil {
				return n, fmt.Errorf("hard link %s -> %s: %w", h.Name, h.Linkname, err)
			}
			if err := noSymlinkParents(root, lrel); err != nil {
				return n, fmt.Errorf("hard link %s -> %s: %w", h.Name, h.Linkname, err)
			}
			src := filepath.Join(root, filepath.FromSlash(lrel))
			if fi, err := os.Lstat(src); err != nil || !fi.Mode().IsRegular() {
				return n, fmt.Errorf("hard link %s -> %s: the target is not a file extracted before it", h.Name, h.Linkname)
			}
			if err := replace(target); err != nil {
				return n, err
			}
			if err := os.Link(src, target); err != nil {
				return n, err
			}
		default:
			// Devices, FIFOs and the like are not recreated.
			if opts.Warn != nil {
				opts.Warn(fmt.Sprintf("skipped %s: not a file, directory or link", rel))
			}
			continue
		}
		n++
	}
	// Directories last, deepest first: a read-only directory must not stop
	// its own entries, and writing entries changes a directory's mtime.
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if err := os.Chmod(d.path, d.mode); err != nil {
			return n, err
		}
		if err := os.Chtimes(d.path, d.mtime, d.mtime); err != nil {
			return n, err
		}
	}
	return n, nil
}

// safeName is a tar entry's name cleaned and relative ("." for the top),
// or an error for an absolute name or one with "..".
func safeName(name string) (string, error) {
	if name == "" {
		return "", errors.New("an entry without a name")
	}
	if strings.HasPrefix(name, "/") || filepath.IsAbs(name) || strings.Contains(name, "\\") {
		return "", fmt.Errorf("%s: an absolute name is refused", name)
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", fmt.Errorf("%s: a name with \"..\" is refused", name)
		}
	}
	return path.Clean(name), nil
}

// insideLink says whether a symlink at rel (relative to the top) pointing
// to target stays inside the top.
func insideLink(rel, target string) error {
	if target == "" {
		return errors.New("an empty target")
	}
	if path.IsAbs(target) {
		return errors.New("an absolute target is refused")
	}
	resolved := path.Join(path.Dir(rel), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return errors.New("the target is outside the directory")
	}
	return nil
}

// noSymlinkParents refuses a name whose parent directories, as extracted
// so far, include a symlink: nothing is written through a link.
func noSymlinkParents(root, rel string) error {
	cur := root
	parts := strings.Split(rel, "/")
	for _, el := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, el)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("a path through the symlink %s is refused", strings.TrimPrefix(cur, root+string(filepath.Separator)))
		}
	}
	return nil
}

// replace removes what is at name, unless it is a directory.
func replace(name string) error {
	fi, err := os.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s exists and is a directory", name)
	}
	return os.Remove(name)
}

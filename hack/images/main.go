// Command images writes one container image, built FROM scratch out of
// static binaries, as an OCI image layout tarball (pkg/ociimage) that
// `ctr -n k8s.io images import` loads and tags. It exists so that
// `make images` (hack/images.sh) needs no Docker, no registry and no base
// image: the images hold our binaries and nothing else, and the same
// binaries and flags always give the same image digest.
//
//	go run ./hack/images -name ghcr.io/kubestash-catalog/agent:v0.1.0 -out bin/images/agent.tar \
//	  -file bin/images/bin/agent=/usr/local/bin/agent -file bin/restic=/usr/local/bin/restic:0755 \
//	  -entrypoint /usr/local/bin/agent -user 0:0 -env PATH=/usr/local/bin \
//	  -label org.opencontainers.image.source=https://github.com/kubestash/kubestash-catalog
//
// It prints "NAME DIGEST SIZE" (the manifest digest, the tarball's bytes).
// Every ELF file must be statically linked for the image's architecture: a
// scratch image has no dynamic loader. The layer's mtimes (and the config's
// created time, else left out) come from SOURCE_DATE_EPOCH when it is set.
//
// `images -is-static FILE` only checks FILE: exit 0 if it is a static ELF
// executable for this architecture, 1 with the reason if not.
package main

import (
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"kubestash.dev/kubestash/pkg/ociimage"
)

// list is a repeatable flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	var (
		name, out, user, workdir, isStatic  string
		files, entrypoint, cmd, env, labels list
	)
	flag.StringVar(&name, "name", "", "image reference name:tag, e.g. ghcr.io/kubestash-catalog/agent:v0.1.0")
	flag.StringVar(&out, "out", "", "tarball to write (OCI image layout)")
	flag.Var(&files, "file", "HOST_PATH=IMAGE_PATH[:OCTAL_MODE]; repeatable (mode default: the host file's)")
	flag.Var(&entrypoint, "entrypoint", "one element of the entrypoint; repeatable")
	flag.Var(&cmd, "cmd", "one element of the default arguments; repeatable")
	flag.StringVar(&user, "user", "", "UID:GID the container runs as")
	flag.Var(&env, "env", "KEY=VALUE; repeatable")
	flag.StringVar(&workdir, "workdir", "/", "working directory")
	flag.Var(&labels, "label", "KEY=VALUE config label; repeatable (org.opencontainers.image.title and .version default to the name's last path element and tag)")
	flag.StringVar(&isStatic, "is-static", "", "only check that this file is a static ELF executable for "+runtime.GOARCH)
	flag.Parse()

	if isStatic != "" {
		if err := checkStatic(isStatic); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := run(name, out, user, workdir, files, entrypoint, cmd, env, labels); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(name, out, user, workdir string, files, entrypoint, cmd, env, labels list) error {
	if name == "" || out == "" {
		return errors.New("-name and -out are required")
	}
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	img := ociimage.Image{
		Name: name, Entrypoint: entrypoint, Cmd: cmd, User: user, Env: env, WorkingDir: workdir,
		Labels: map[string]string{},
	}
	for _, f := range files {
		file, err := parseFile(f)
		if err != nil {
			return err
		}
		if err := checkStatic(file.Source); err != nil && !errors.Is(err, errNotELF) {
			return err
		}
		img.Files = append(img.Files, file)
	}
	for _, e := range env {
		if !strings.Contains(e, "=") {
			return fmt.Errorf("-env %q: want KEY=VALUE", e)
		}
	}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return fmt.Errorf("-label %q: want KEY=VALUE", l)
		}
		img.Labels[k] = v
	}
	i := strings.LastIndex(name, ":")
	if i < 0 || strings.Contains(name[i:], "/") {
		return fmt.Errorf("-name %q: want NAME:TAG", name)
	}
	repo, tag := name[:i], name[i+1:]
	if _, ok := img.Labels["org.opencontainers.image.title"]; !ok {
		img.Labels["org.opencontainers.image.title"] = repo[strings.LastIndex(repo, "/")+1:]
	}
	if _, ok := img.Labels["org.opencontainers.image.version"]; !ok {
		img.Labels["org.opencontainers.image.version"] = tag
	}
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
		}
		img.ModTime = time.Unix(sec, 0)
		img.Created = img.ModTime
		img.Labels["org.opencontainers.image.created"] = img.Created.UTC().Format(time.RFC3339)
	}
	res, err := ociimage.WriteFile(out, img)
	if err != nil {
		return err
	}
	fmt.Printf("%s %s %d\n", name, res.Manifest.Digest, res.Size)
	return nil
}

// parseFile reads HOST_PATH=IMAGE_PATH[:OCTAL_MODE].
func parseFile(s string) (ociimage.File, error) {
	src, dst, ok := strings.Cut(s, "=")
	if !ok || src == "" || dst == "" {
		return ociimage.File{}, fmt.Errorf("-file %q: want HOST_PATH=IMAGE_PATH[:OCTAL_MODE]", s)
	}
	f := ociimage.File{Source: src, Path: dst}
	if i := strings.LastIndex(dst, ":"); i >= 0 {
		m, err := strconv.ParseUint(dst[i+1:], 8, 32)
		if err != nil || m > 0o7777 {
			return ociimage.File{}, fmt.Errorf("-file %q: mode %q is not octal permission bits", s, dst[i+1:])
		}
		f.Path = dst[:i]
		f.Mode = fs.FileMode(m & 0o777)
		if m&0o4000 != 0 {
			f.Mode |= fs.ModeSetuid
		}
		if m&0o2000 != 0 {
			f.Mode |= fs.ModeSetgid
		}
		if m&0o1000 != 0 {
			f.Mode |= fs.ModeSticky
		}
		if f.Mode == 0 {
			return ociimage.File{}, fmt.Errorf("-file %q: mode 0 would make the file unusable", s)
		}
	}
	return f, nil
}

var errNotELF = errors.New("not an ELF file")

// machines maps GOARCH to the ELF machine its binaries have.
var machines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "386": elf.EM_386, "arm": elf.EM_ARM,
	"ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390, "riscv64": elf.EM_RISCV,
}

// checkStatic fails when path is an ELF file that needs a dynamic loader or
// is built for another architecture; errNotELF when it is no ELF file.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		var ferr *elf.FormatError
		if errors.As(err, &ferr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%s: %w", path, errNotELF)
		}
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp := "a dynamic loader"
			if b := make([]byte, min(p.Filesz, 4096)); len(b) > 0 {
				if n, err := p.ReadAt(b, 0); err == nil || n > 0 {
					interp = strings.TrimRight(string(b[:n]), "\x00")
				}
			}
			return fmt.Errorf("%s is dynamically linked (needs %s); a FROM scratch image cannot run it: build it with CGO_ENABLED=0", path, interp)
		}
	}
	if m, ok := machines[runtime.GOARCH]; ok && f.Machine != m {
		return fmt.Errorf("%s is built for %s, not %s", path, f.Machine, runtime.GOARCH)
	}
	return nil
}

// Command push pushes the images `make images` (hack/images.sh) wrote to a
// registry. It reads the list hack/images.sh writes, one
// "NAME:TAG<TAB>TARBALL" line per image (bin/images/images.txt), loads each
// OCI image layout tarball and pushes its image to NAME:TAG, which already
// carries the REGISTRY the images were built with:
//
//	REGISTRY=registry.example.com/kubestash hack/images.sh
//	go run ./hack/push -registry registry.example.com/kubestash
//
// It prints "pushed NAME:TAG@DIGEST" per image; the digest is the manifest
// digest of the tarball's index.json, so it is what `ctr images ls` shows
// for the imported tarball and what a pod's imageID shows once pulled. An
// image the registry already holds under that tag with that digest is not
// uploaded again.
//
// Credentials come from the docker config (authn.DefaultKeychain:
// $DOCKER_CONFIG/config.json or ~/.docker/config.json and its credential
// helpers, as `docker login` writes them); they are never printed.
//
// Flags:
//
//	-list FILE      the list (default bin/images/images.txt); relative
//	                tarball paths in it are relative to its folder
//	-registry R     refuse unless every name is R/NAME:TAG (what `make push
//	                REGISTRY=R` passes), so images built for one registry are
//	                never pushed to another by mistake
//	-insecure       allow plain HTTP registries (e.g. registry:5000); off by
//	                default (loopback and private addresses may use HTTP
//	                anyway, as go-containerregistry allows)
package main

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const (
	annotationRefName    = "org.opencontainers.image.ref.name"
	annotationContainerd = "io.containerd.image.name"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "push:", err)
		os.Exit(1)
	}
}

// run is the command: flags in args, "pushed NAME@DIGEST" lines to stdout,
// progress to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	list := fs.String("list", filepath.Join("bin", "images", "images.txt"), `the images to push: "NAME:TAG<TAB>TARBALL" lines, as hack/images.sh writes them`)
	registry := fs.String("registry", "", "when set, refuse unless every name in the list is REGISTRY/NAME:TAG")
	insecure := fs.Bool("insecure", false, "allow plain HTTP registries")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	entries, err := readList(*list)
	if err != nil {
		return err
	}
	if *registry != "" {
		if err := checkRegistry(*list, entries, *registry); err != nil {
			return err
		}
	}
	opts := Options{Insecure: *insecure, Keychain: authn.DefaultKeychain}
	for _, e := range entries {
		fmt.Fprintf(stderr, "pushing %s from %s\n", e.Name, e.Tarball)
		digest, err := Push(ctx, e.Name, e.Tarball, opts)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pushed %s@%s\n", e.Name, digest)
	}
	return nil
}

// Entry is one line of the list.
type Entry struct {
	// Name is the full reference NAME:TAG.
	Name string
	// Tarball is the OCI image layout tarball.
	Tarball string
}

// readList reads "NAME:TAG<TAB>TARBALL" lines; blank lines and lines
// starting with # are skipped. A relative tarball is relative to the list's
// folder.
func readList(file string) ([]Entry, error) {
	f, err := os.Open(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist: build the images first (make images)", file)
		}
		return nil, err
	}
	defer f.Close()
	var entries []Entry
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ref, tarball, ok := strings.Cut(line, "\t")
		ref, tarball = strings.TrimSpace(ref), strings.TrimSpace(tarball)
		if !ok || ref == "" || tarball == "" {
			return nil, fmt.Errorf("%s:%d: want NAME:TAG<TAB>TARBALL, have %q", file, n, line)
		}
		if _, _, err := splitTag(ref); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, n, err)
		}
		if !filepath.IsAbs(tarball) {
			tarball = filepath.Join(filepath.Dir(file), tarball)
		}
		entries = append(entries, Entry{Name: ref, Tarball: tarball})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%s lists no images", file)
	}
	return entries, nil
}

// splitTag splits NAME:TAG; the tag is required (no implied latest).
func splitTag(ref string) (repo, tag string, err error) {
	i := strings.LastIndex(ref, ":")
	if i <= 0 || i == len(ref)-1 || strings.Contains(ref[i:], "/") || strings.Contains(ref, "@") {
		return "", "", fmt.Errorf("image name %q: want NAME:TAG", ref)
	}
	return ref[:i], ref[i+1:], nil
}

// checkRegistry refuses a list whose names are not all registry/NAME:TAG:
// images built for one registry are not pushed to another.
func checkRegistry(list string, entries []Entry, registry string) error {
	registry = strings.TrimSuffix(registry, "/")
	for _, e := range entries {
		repo, _, err := splitTag(e.Name)
		if err != nil {
			return err
		}
		if dir, _ := path.Split(repo); strings.TrimSuffix(dir, "/") != registry {
			return fmt.Errorf("%s names %s, which is not under REGISTRY=%s: the images were built for another registry; "+
				"build them with the same REGISTRY: make images push REGISTRY=%s", list, e.Name, registry, registry)
		}
	}
	return nil
}

// Options of Push.
type Options struct {
	// Insecure allows plain HTTP registries.
	Insecure bool
	// Keychain gives the credentials; nil: anonymous.
	Keychain authn.Keychain
	// Remote are more options of remote.Write (tests: a transport).
	Remote []remote.Option
}

// Push pushes the image of an OCI image layout tarball to ref (NAME:TAG)
// and returns its manifest digest, the one of the tarball's index.json.
// Errors name the image and the tarball.
func Push(ctx context.Context, ref, tarball string, o Options) (v1.Hash, error) {
	digest, err := push(ctx, ref, tarball, o)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("%s (from %s): %w", ref, tarball, err)
	}
	return digest, nil
}

func push(ctx context.Context, ref, tarball string, o Options) (v1.Hash, error) {
	var nameOpts []name.Option
	if o.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	if _, _, err := splitTag(ref); err != nil {
		return v1.Hash{}, err
	}
	tag, err := name.NewTag(ref, nameOpts...)
	if err != nil {
		return v1.Hash{}, err
	}

	dir, err := os.MkdirTemp("", "kubestash-push-*")
	if err != nil {
		return v1.Hash{}, err
	}
	defer os.RemoveAll(dir)
	if err := extract(tarball, dir); err != nil {
		return v1.Hash{}, err
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("not an OCI image layout: %w", err)
	}
	desc, err := pick(idx, ref)
	if err != nil {
		return v1.Hash{}, err
	}
	var t remote.Taggable
	if desc.MediaType.IsIndex() {
		t, err = idx.ImageIndex(desc.Digest)
	} else {
		t, err = idx.Image(desc.Digest)
	}
	if err != nil {
		return v1.Hash{}, err
	}

	opts := append([]remote.Option{remote.WithContext(ctx)}, o.Remote...)
	if o.Keychain != nil {
		opts = append(opts, remote.WithAuthFromKeychain(o.Keychain))
	}
	if err := remote.Push(tag, t, opts...); err != nil {
		return v1.Hash{}, err
	}
	return desc.Digest, nil
}

// pick finds ref's entry in index.json: the one whose name annotation is
// ref (or its tag alone, as the OCI layout allows), else the only entry
// when it carries no name.
func pick(idx v1.ImageIndex, ref string) (v1.Descriptor, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("index.json: %w", err)
	}
	_, tag, _ := splitTag(ref)
	var names []string
	for _, d := range m.Manifests {
		if n := d.Annotations[annotationRefName]; n == ref || n == tag || d.Annotations[annotationContainerd] == ref {
			return d, nil
		}
		if n := d.Annotations[annotationRefName]; n != "" {
			names = append(names, n)
		}
	}
	switch {
	case len(m.Manifests) == 0:
		return v1.Descriptor{}, errors.New("index.json lists no image")
	case len(m.Manifests) == 1 && len(names) == 0:
		return m.Manifests[0], nil
	default:
		return v1.Descriptor{}, fmt.Errorf("the tarball holds %q, not %s: rebuild the images (make images)", names, ref)
	}
}

// extract unpacks an OCI layout tarball into dir: regular files and folders
// only, every path inside dir.
func extract(tarball, dir string) error {
	f, err := os.Open(tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReaderSize(f, 1<<20))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the tarball: %w", err)
		}
		clean := path.Clean(h.Name)
		if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return fmt.Errorf("tarball entry %q is outside the layout", h.Name)
		}
		target := filepath.Join(dir, filepath.FromSlash(clean))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := writeFile(target, tr); err != nil {
				return err
			}
		default:
			return fmt.Errorf("tarball entry %q: type %q is not a file or folder", h.Name, h.Typeflag)
		}
	}
}

func writeFile(target string, r io.Reader) error {
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

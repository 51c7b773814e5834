// Package ociimage writes a container image "FROM scratch" as an OCI image
// layout tarball (oci-layout, index.json, blobs/sha256/...) with the standard
// library alone: one gzip layer holding the given host files, its config and
// manifest. `ctr images import` (and `docker load`, podman, skopeo) reads
// it; containerd tags the image with the index entry's
// io.containerd.image.name annotation.
//
// The output depends only on the inputs: entries are sorted, owned by 0:0,
// and carry one fixed mtime; the gzip header has no name or time; JSON maps
// are sorted. The same files and settings therefore give the same manifest
// digest on every build.
package ociimage

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Media types and annotations of the OCI image specification (v1.1) and
// containerd.
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"

	// AnnotationRefName names an index.json entry (OCI image layout).
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// AnnotationContainerdName is the name `ctr images import` gives the
	// image; without it ctr would need --base-name.
	AnnotationContainerdName = "io.containerd.image.name"
	// LayoutVersion is the content of the oci-layout file's imageLayoutVersion.
	LayoutVersion = "1.0.0"
)

// File is one host file copied into the image.
type File struct {
	// Source is the file on the host. It must be a regular file.
	Source string
	// Path is the absolute path in the image, e.g. /usr/local/bin/agent.
	Path string
	// Mode holds the permission bits (fs.ModeSetuid, fs.ModeSetgid and
	// fs.ModeSticky included); 0 takes the source's.
	Mode fs.FileMode
}

// Image is what to build.
type Image struct {
	// Name is the full reference, e.g. ghcr.io/kubestash-catalog/agent:v0.1.0.
	Name string
	// Files go into the single layer, owned by 0:0. Their parent folders are
	// added with mode 0755, and /tmp with mode 1777.
	Files []File

	Entrypoint []string
	Cmd        []string
	// User is "uid:gid" (numeric: a scratch image has no /etc/passwd).
	User string
	// Env holds KEY=VALUE entries.
	Env        []string
	WorkingDir string
	// Labels are the config's labels (org.opencontainers.image.*).
	Labels map[string]string

	// Created goes into the config's created field; zero leaves it out.
	Created time.Time
	// ModTime is every layer entry's mtime; zero is the Unix epoch.
	ModTime time.Time
	// OS and Architecture default to linux and runtime.GOARCH.
	OS, Architecture string
}

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *Platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Platform is a descriptor's platform.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Index is index.json.
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []Descriptor `json:"manifests"`
}

// Manifest is an image manifest.
type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

// Config is an image configuration.
type Config struct {
	Created      *time.Time      `json:"created,omitempty"`
	Architecture string          `json:"architecture"`
	OS           string          `json:"os"`
	Config       ContainerConfig `json:"config"`
	RootFS       RootFS          `json:"rootfs"`
	History      []History       `json:"history,omitempty"`
}

// ContainerConfig is the execution part of Config.
type ContainerConfig struct {
	User       string            `json:"User,omitempty"`
	Env        []string          `json:"Env,omitempty"`
	Entrypoint []string          `json:"Entrypoint,omitempty"`
	Cmd        []string          `json:"Cmd,omitempty"`
	WorkingDir string            `json:"WorkingDir,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
}

// RootFS lists the layers' uncompressed digests.
type RootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// History describes how a layer was made.
type History struct {
	Created   *time.Time `json:"created,omitempty"`
	CreatedBy string     `json:"created_by,omitempty"`
}

// Layout is the oci-layout file.
type Layout struct {
	Version string `json:"imageLayoutVersion"`
}

// Result describes a written image. Manifest.Digest is the image's digest
// (what `ctr images ls` and a pod's imageID show).
type Result struct {
	Manifest, Config, Layer Descriptor
	// DiffID is the sha256 of the uncompressed layer.
	DiffID string
	// Size is the tarball's size in bytes.
	Size int64
}

// WriteFile writes img as an OCI layout tarball to path, through a
// temporary file in the same folder renamed at the end, so path is never
// left half written.
func WriteFile(path string, img Image) (Result, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Result{}, err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return Result{}, err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	res, err := write(f, img, dir)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Result{}, err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return Result{}, err
	}
	return res, os.Rename(f.Name(), path)
}

// Write writes img as an OCI layout tarball to w. The compressed layer is
// staged in a temporary file (a tar header needs the size before the data).
func Write(w io.Writer, img Image) (Result, error) {
	return write(w, img, "")
}

func write(w io.Writer, img Image, tmpDir string) (Result, error) {
	if err := img.defaults(); err != nil {
		return Result{}, err
	}
	entries, err := img.entries()
	if err != nil {
		return Result{}, err
	}

	// The layer: tar -> sha256 (diff id) and gzip -> sha256 (digest) + temp file.
	lf, err := os.CreateTemp(tmpDir, ".layer-*.tar.gz")
	if err != nil {
		return Result{}, err
	}
	defer func() { lf.Close(); os.Remove(lf.Name()) }()
	gzHash := sha256.New()
	gzCount := &countingWriter{w: io.MultiWriter(lf, gzHash)}
	gz, err := gzip.NewWriterLevel(gzCount, gzip.BestCompression)
	if err != nil {
		return Result{}, err
	}
	tarHash := sha256.New()
	if err := writeLayer(io.MultiWriter(gz, tarHash), entries, img.ModTime); err != nil {
		return Result{}, err
	}
	if err := gz.Close(); err != nil {
		return Result{}, err
	}
	layer := Descriptor{MediaType: MediaTypeLayer, Digest: digestOf(gzHash), Size: gzCount.n}
	diffID := digestOf(tarHash)

	cfg := Config{
		Architecture: img.Architecture,
		OS:           img.OS,
		Config: ContainerConfig{
			User:       img.User,
			Env:        img.Env,
			Entrypoint: img.Entrypoint,
			Cmd:        img.Cmd,
			WorkingDir: img.WorkingDir,
			Labels:     img.Labels,
		},
		RootFS:  RootFS{Type: "layers", DiffIDs: []string{diffID}},
		History: []History{{CreatedBy: "kubestash.dev/kubestash/pkg/ociimage"}},
	}
	if !img.Created.IsZero() {
		t := img.Created.UTC()
		cfg.Created, cfg.History[0].Created = &t, &t
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return Result{}, err
	}
	config := Descriptor{MediaType: MediaTypeConfig, Digest: digestBytes(cfgJSON), Size: int64(len(cfgJSON))}

	manJSON, err := json.Marshal(Manifest{SchemaVersion: 2, MediaType: MediaTypeManifest, Config: config, Layers: []Descriptor{layer}})
	if err != nil {
		return Result{}, err
	}
	manifest := Descriptor{MediaType: MediaTypeManifest, Digest: digestBytes(manJSON), Size: int64(len(manJSON))}

	entry := manifest
	entry.Platform = &Platform{Architecture: img.Architecture, OS: img.OS}
	entry.Annotations = map[string]string{AnnotationRefName: img.Name, AnnotationContainerdName: img.Name}
	idxJSON, err := json.Marshal(Index{SchemaVersion: 2, MediaType: MediaTypeIndex, Manifests: []Descriptor{entry}})
	if err != nil {
		return Result{}, err
	}
	layoutJSON, err := json.Marshal(Layout{Version: LayoutVersion})
	if err != nil {
		return Result{}, err
	}

	// The tarball.
	out := &countingWriter{w: w}
	tw := tar.NewWriter(out)
	mt := time.Unix(0, 0)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: mt}); err != nil {
			return Result{}, err
		}
	}
	writeBytes := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: mt}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	if _, err := lf.Seek(0, io.SeekStart); err != nil {
		return Result{}, err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: blobPath(layer.Digest), Mode: 0o644, Size: layer.Size, ModTime: mt}); err != nil {
		return Result{}, err
	}
	if _, err := io.Copy(tw, lf); err != nil {
		return Result{}, err
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{
		{blobPath(config.Digest), cfgJSON},
		{blobPath(manifest.Digest), manJSON},
		{"oci-layout", layoutJSON},
		{"index.json", idxJSON},
	} {
		if err := writeBytes(f.name, f.b); err != nil {
			return Result{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return Result{}, err
	}
	return Result{Manifest: manifest, Config: config, Layer: layer, DiffID: diffID, Size: out.n}, nil
}

func (img *Image) defaults() error {
	if img.Name == "" {
		return errors.New("ociimage: the image needs a name")
	}
	if strings.ContainsAny(img.Name, " \t\n@") || !strings.Contains(img.Name[strings.LastIndex(img.Name, "/")+1:], ":") {
		return fmt.Errorf("ociimage: image name %q: want name:tag", img.Name)
	}
	if img.OS == "" {
		img.OS = "linux"
	}
	if img.Architecture == "" {
		img.Architecture = runtime.GOARCH
	}
	if img.ModTime.IsZero() {
		img.ModTime = time.Unix(0, 0)
	}
	img.ModTime = img.ModTime.UTC().Truncate(time.Second)
	return nil
}

// entry is one member of the layer: a folder (source "") or a file.
type entry struct {
	name   string // relative, no leading slash
	source string
	mode   fs.FileMode
	dir    bool
}

// entries returns the layer's members sorted by name (a folder before what
// it holds), parent folders and /tmp included.
func (img *Image) entries() ([]entry, error) {
	byName := map[string]entry{}
	addDir := func(name string, mode fs.FileMode) error {
		if e, ok := byName[name]; ok {
			if !e.dir {
				return fmt.Errorf("ociimage: /%s is both a file and a folder", name)
			}
			return nil
		}
		byName[name] = entry{name: name, mode: mode, dir: true}
		return nil
	}
	if err := addDir("tmp", 0o777|fs.ModeSticky); err != nil {
		return nil, err
	}
	for _, f := range img.Files {
		p := f.Path
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
			return nil, fmt.Errorf("ociimage: path %q in the image: want a clean absolute file path", p)
		}
		name := p[1:]
		if _, ok := byName[name]; ok {
			return nil, fmt.Errorf("ociimage: %s is given twice", p)
		}
		fi, err := os.Stat(f.Source)
		if err != nil {
			return nil, fmt.Errorf("ociimage: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("ociimage: %s is not a regular file", f.Source)
		}
		mode := f.Mode
		if mode == 0 {
			mode = fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		}
		byName[name] = entry{name: name, source: f.Source, mode: mode}
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if err := addDir(d, 0o755); err != nil {
				return nil, err
			}
		}
	}
	out := make([]entry, 0, len(byName))
	for _, e := range byName {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func writeLayer(w io.Writer, entries []entry, mt time.Time) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: tarMode(e.mode), ModTime: mt}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, e.name+"/"
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		f, err := os.Open(e.source)
		if err != nil {
			return fmt.Errorf("ociimage: %w", err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		h.Typeflag, h.Size = tar.TypeReg, fi.Size()
		if err := tw.WriteHeader(h); err != nil {
			f.Close()
			return err
		}
		n, err := io.Copy(tw, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("ociimage: %s: %w", e.source, err)
		}
		if n != h.Size {
			return fmt.Errorf("ociimage: %s changed while it was read", e.source)
		}
	}
	return tw.Close()
}

// tarMode turns permission bits into a tar header's mode (c_ISUID etc.).
func tarMode(m fs.FileMode) int64 {
	v := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

func blobPath(digest string) string {
	return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:")
}

func digestOf(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

func digestBytes(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

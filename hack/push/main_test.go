package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kubestash.dev/kubestash/pkg/ociimage"
)

// testRegistry is go-containerregistry's in-memory registry on 127.0.0.1,
// counting the requests that write (POST, PUT, PATCH, DELETE).
type testRegistry struct {
	host string

	mu     sync.Mutex
	writes []string
}

func startRegistry(t *testing.T) *testRegistry {
	t.Helper()
	r := &testRegistry{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			r.mu.Lock()
			r.writes = append(r.writes, req.Method+" "+req.URL.Path)
			r.mu.Unlock()
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	// No credentials of this machine's docker config in the tests.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	return r
}

// takeWrites returns the write requests since the last call.
func (r *testRegistry) takeWrites() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.writes
	r.writes = nil
	return w
}

// buildImage writes a tarball the way hack/images does (pkg/ociimage) with
// one small file, and returns the tarball.
func buildImage(t *testing.T, dir, ref, content string) string {
	t.Helper()
	src := filepath.Join(dir, "src-"+strings.NewReplacer("/", "_", ":", "_").Replace(ref))
	require.NoError(t, os.WriteFile(src, []byte(content), 0o755))
	base := ref[strings.LastIndex(ref, "/")+1 : strings.LastIndex(ref, ":")]
	out := filepath.Join(dir, base+".tar")
	_, err := ociimage.WriteFile(out, ociimage.Image{
		Name: ref, Files: []ociimage.File{{Source: src, Path: "/usr/local/bin/" + base, Mode: 0o755}},
		Entrypoint: []string{"/usr/local/bin/" + base}, User: "65532:65532", Env: []string{"PATH=/usr/local/bin"}, WorkingDir: "/",
		Labels: map[string]string{"org.opencontainers.image.title": base},
	})
	require.NoError(t, err)
	return out
}

// fromTarball reads a file of an OCI layout tarball.
func fromTarball(t *testing.T, tarball, file string) []byte {
	t.Helper()
	f, err := os.Open(tarball)
	require.NoError(t, err)
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		require.NoError(t, err, "%s in %s", file, tarball)
		if h.Name == file {
			b, err := io.ReadAll(tr)
			require.NoError(t, err)
			return b
		}
	}
}

// indexDigest is the manifest digest index.json of the tarball gives.
func indexDigest(t *testing.T, tarball string) string {
	t.Helper()
	var idx ociimage.Index
	require.NoError(t, json.Unmarshal(fromTarball(t, tarball, "index.json"), &idx))
	require.Len(t, idx.Manifests, 1)
	return idx.Manifests[0].Digest
}

func writeList(t *testing.T, dir string, lines ...string) string {
	t.Helper()
	list := filepath.Join(dir, "images.txt")
	require.NoError(t, os.WriteFile(list, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	return list
}

func runPush(args ...string) (stdout string, err error) {
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, &out, &errOut)
	return out.String(), err
}

// TestPush: what `make images push REGISTRY=...` does, against a registry:
// every image lands under its tag with the digest of the tarball's
// index.json, the registry serves the very manifest of the tarball, and a
// second push uploads nothing and prints the same digests.
func TestPush(t *testing.T) {
	for _, tc := range []struct {
		name     string
		insecure bool
	}{
		{"https first, http on loopback", false},
		{"insecure", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := startRegistry(t)
			dir := t.TempDir()
			registryName := reg.host + "/kubestash"
			var lines, want []string
			digests := map[string]string{}
			for _, img := range []string{"apiserver", "agent"} {
				ref := registryName + "/" + img + ":v0.1.0"
				tarball := buildImage(t, dir, ref, "#!/bin/true "+img+"\n")
				lines = append(lines, ref+"\t"+tarball)
				digests[ref] = indexDigest(t, tarball)
				want = append(want, fmt.Sprintf("pushed %s@%s", ref, digests[ref]))
			}
			list := writeList(t, dir, lines...)
			args := []string{"-list", list, "-registry", registryName}
			if tc.insecure {
				args = append(args, "-insecure")
			}

			out, err := runPush(args...)
			require.NoError(t, err)
			assert.Equal(t, want, strings.Split(strings.TrimSpace(out), "\n"))
			assert.NotEmpty(t, reg.takeWrites(), "the first push uploads")

			for _, line := range lines {
				ref, tarball, _ := strings.Cut(line, "\t")
				tag, err := name.NewTag(ref)
				require.NoError(t, err)
				head, err := remote.Head(tag)
				require.NoError(t, err, "the tag %s resolves", ref)
				assert.Equal(t, digests[ref], head.Digest.String(), "%s: the registry's digest is index.json's", ref)

				manifest, err := remote.Get(tag.Context().Digest(digests[ref]))
				require.NoError(t, err)
				assert.Equal(t, fromTarball(t, tarball, "blobs/sha256/"+strings.TrimPrefix(digests[ref], "sha256:")), []byte(manifest.Manifest),
					"%s: the registry serves the tarball's manifest byte for byte", ref)
				img, err := manifest.Image()
				require.NoError(t, err)
				layers, err := img.Layers()
				require.NoError(t, err)
				require.Len(t, layers, 1)
				_, err = layers[0].Compressed()
				require.NoError(t, err, "%s: the layer was uploaded", ref)
			}

			out, err = runPush(args...)
			require.NoError(t, err)
			assert.Equal(t, want, strings.Split(strings.TrimSpace(out), "\n"), "a second push gives the same digests")
			assert.Empty(t, reg.takeWrites(), "a second push writes nothing")
		})
	}
}

// TestPushFunction: Push returns the digest of index.json, also when the
// tag moves to another image.
func TestPushFunction(t *testing.T) {
	reg := startRegistry(t)
	ref := reg.host + "/kubestash/controller:v0.1.0"
	for i, content := range []string{"one", "two", "two"} {
		tarball := buildImage(t, t.TempDir(), ref, content)
		digest, err := Push(context.Background(), ref, tarball, Options{})
		require.NoError(t, err, "push %d", i)
		assert.Equal(t, indexDigest(t, tarball), digest.String(), "push %d", i)
		tag, err := name.NewTag(ref)
		require.NoError(t, err)
		head, err := remote.Head(tag)
		require.NoError(t, err)
		assert.Equal(t, digest, head.Digest, "push %d: the tag names the last image pushed", i)
	}
}

// TestPushErrors: what fails says which image, which tarball or which list,
// and pushes nothing.
func TestPushErrors(t *testing.T) {
	reg := startRegistry(t)
	dir := t.TempDir()
	registryName := reg.host + "/kubestash"
	good := registryName + "/agent:v0.1.0"
	goodTar := buildImage(t, dir, good, "agent")
	missing := filepath.Join(dir, "controller.tar")
	other := buildImage(t, t.TempDir(), "ghcr.io/kubestash-catalog/pause:v0.1.0", "pause")

	evil := filepath.Join(dir, "evil.tar")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644}))
	require.NoError(t, tw.Close())
	require.NoError(t, os.WriteFile(evil, buf.Bytes(), 0o644))

	for _, tc := range []struct {
		name  string
		lines []string // nil: no list at all
		flags []string
		want  []string // every one in the error
	}{{
		name:  "missing tarball",
		lines: []string{registryName + "/controller:v0.1.0\t" + missing},
		want:  []string{registryName + "/controller:v0.1.0", missing, "no such file"},
	}, {
		name: "missing list",
		want: []string{"images.txt does not exist", "make images"},
	}, {
		name:  "another registry",
		lines: []string{good + "\t" + goodTar, "ghcr.io/kubestash-catalog/pause:v0.1.0\t" + other},
		flags: []string{"-registry", registryName},
		want:  []string{"ghcr.io/kubestash-catalog/pause:v0.1.0", "not under REGISTRY=" + registryName, "make images push REGISTRY=" + registryName},
	}, {
		name:  "a registry below the given one",
		lines: []string{registryName + "/more/agent:v0.1.0\t" + goodTar},
		flags: []string{"-registry", registryName},
		want:  []string{registryName + "/more/agent:v0.1.0", "not under REGISTRY="},
	}, {
		name:  "no tag",
		lines: []string{registryName + "/agent\t" + goodTar},
		want:  []string{registryName + "/agent", "want NAME:TAG"},
	}, {
		name:  "no tarball",
		lines: []string{good},
		want:  []string{"images.txt:1", "want NAME:TAG<TAB>TARBALL"},
	}, {
		name:  "tarball of another image",
		lines: []string{good + "\t" + other},
		want:  []string{good, other, "ghcr.io/kubestash-catalog/pause:v0.1.0"},
	}, {
		name:  "entry outside the layout",
		lines: []string{good + "\t" + evil},
		want:  []string{good, evil, "outside the layout"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			listDir := t.TempDir()
			list := filepath.Join(listDir, "images.txt")
			if tc.lines != nil {
				list = writeList(t, listDir, tc.lines...)
			}
			out, err := runPush(append([]string{"-list", list}, tc.flags...)...)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.Empty(t, out, "nothing pushed")
			assert.Empty(t, reg.takeWrites(), "nothing written to the registry")
			_, err = os.Stat(filepath.Join(os.TempDir(), "escape"))
			assert.True(t, os.IsNotExist(err), "nothing written outside the layout")
		})
	}
}

// TestRelativeTarball: a relative tarball path is relative to the list.
func TestRelativeTarball(t *testing.T) {
	reg := startRegistry(t)
	dir := t.TempDir()
	ref := reg.host + "/kubestash/pause:v0.1.0"
	tarball := buildImage(t, dir, ref, "pause")
	list := writeList(t, dir, ref+"\t"+filepath.Base(tarball))
	out, err := runPush("-list", list)
	require.NoError(t, err)
	assert.Equal(t, "pushed "+ref+"@"+indexDigest(t, tarball)+"\n", out)
}

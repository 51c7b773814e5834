package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// member is one entry of a tarball, as read back.
type member struct {
	hdr  *tar.Header
	data []byte
}

func readTar(t *testing.T, r io.Reader) (map[string]member, []string) {
	t.Helper()
	tr := tar.NewReader(r)
	m := map[string]member{}
	var order []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return m, order
		}
		require.NoError(t, err)
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		require.NotContains(t, m, h.Name, "duplicate member")
		m[h.Name] = member{hdr: h, data: b}
		order = append(order, h.Name)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// blob returns the blob d points at, after checking its digest and size.
func blob(t *testing.T, layout map[string]member, d Descriptor) []byte {
	t.Helper()
	m, ok := layout[blobPath(d.Digest)]
	require.True(t, ok, "blob %s missing", d.Digest)
	assert.Equal(t, d.Digest, sha(m.data), "digest of %s", d.Digest)
	assert.Equal(t, d.Size, int64(len(m.data)), "size of %s", d.Digest)
	return m.data
}

func writeFile(t *testing.T, dir, name, content string, mode fs.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), mode))
	require.NoError(t, os.Chmod(p, mode)) // umask
	return p
}

func TestWriteFile(t *testing.T) {
	src := t.TempDir()
	agent := writeFile(t, src, "agent", "agent binary", 0o755)
	restic := writeFile(t, src, "restic", "restic binary, a little longer", 0o700)
	conf := writeFile(t, src, "conf", "k=v\n", 0o600)

	type wantFile struct {
		content string
		mode    int64
	}
	cases := []struct {
		name      string
		img       Image
		files     map[string]wantFile // path in the layer -> content, mode
		dirs      []string            // folders besides tmp/, all 0755
		wantMTime time.Time
		created   bool
	}{
		{
			name: "agent with restic, as root",
			img: Image{
				Name: "ghcr.io/kubestash-catalog/agent:v0.1.0",
				Files: []File{
					{Source: agent, Path: "/usr/local/bin/agent"},
					{Source: restic, Path: "/usr/local/bin/restic", Mode: 0o755},
				},
				Entrypoint: []string{"/usr/local/bin/agent"},
				User:       "0:0",
				Env:        []string{"PATH=/usr/local/bin"},
				WorkingDir: "/",
				Labels: map[string]string{
					"org.opencontainers.image.title":   "agent",
					"org.opencontainers.image.version": "v0.1.0",
				},
			},
			files: map[string]wantFile{
				"usr/local/bin/agent":  {"agent binary", 0o755},
				"usr/local/bin/restic": {"restic binary, a little longer", 0o755},
			},
			dirs:      []string{"usr/", "usr/local/", "usr/local/bin/"},
			wantMTime: time.Unix(0, 0),
		},
		{
			name: "non-root, one file at the root, modes kept, fixed time",
			img: Image{
				Name: "example.com:5000/team/pause:v1",
				Files: []File{
					{Source: agent, Path: "/pause"},
					{Source: conf, Path: "/etc/app/conf"},
					{Source: conf, Path: "/etc/app/setgid", Mode: 0o755 | fs.ModeSetgid},
				},
				Entrypoint: []string{"/pause"},
				Cmd:        []string{"--flag"},
				User:       "65535:65535",
				ModTime:    time.Unix(1700000000, 123),
				Created:    time.Unix(1700000000, 0),
			},
			files: map[string]wantFile{
				"pause":          {"agent binary", 0o755},
				"etc/app/conf":   {"k=v\n", 0o600},
				"etc/app/setgid": {"k=v\n", 0o2755},
			},
			dirs:      []string{"etc/", "etc/app/"},
			wantMTime: time.Unix(1700000000, 0),
			created:   true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "img.tar")
			res, err := WriteFile(out, tc.img)
			require.NoError(t, err)
			raw, err := os.ReadFile(out)
			require.NoError(t, err)
			assert.Equal(t, int64(len(raw)), res.Size)
			layout, _ := readTar(t, bytes.NewReader(raw))

			// oci-layout and index.json
			require.Contains(t, layout, "oci-layout")
			assert.JSONEq(t, `{"imageLayoutVersion":"1.0.0"}`, string(layout["oci-layout"].data))
			require.Contains(t, layout, "index.json")
			var idx Index
			require.NoError(t, json.Unmarshal(layout["index.json"].data, &idx))
			assert.Equal(t, 2, idx.SchemaVersion)
			assert.Equal(t, MediaTypeIndex, idx.MediaType)
			require.Len(t, idx.Manifests, 1)
			md := idx.Manifests[0]
			assert.Equal(t, MediaTypeManifest, md.MediaType)
			assert.Equal(t, res.Manifest.Digest, md.Digest)
			assert.Equal(t, &Platform{OS: "linux", Architecture: runtime.GOARCH}, md.Platform)
			assert.Equal(t, map[string]string{
				AnnotationRefName:        tc.img.Name,
				AnnotationContainerdName: tc.img.Name,
			}, md.Annotations)

			// manifest
			var man Manifest
			require.NoError(t, json.Unmarshal(blob(t, layout, md), &man))
			assert.Equal(t, 2, man.SchemaVersion)
			assert.Equal(t, MediaTypeManifest, man.MediaType)
			assert.Equal(t, MediaTypeConfig, man.Config.MediaType)
			assert.Equal(t, res.Config, man.Config)
			require.Len(t, man.Layers, 1)
			assert.Equal(t, MediaTypeLayer, man.Layers[0].MediaType)
			assert.Equal(t, res.Layer, man.Layers[0])

			// config
			var cfg Config
			require.NoError(t, json.Unmarshal(blob(t, layout, man.Config), &cfg))
			assert.Equal(t, "linux", cfg.OS)
			assert.Equal(t, runtime.GOARCH, cfg.Architecture)
			assert.Equal(t, ContainerConfig{
				User: tc.img.User, Env: tc.img.Env, Entrypoint: tc.img.Entrypoint, Cmd: tc.img.Cmd,
				WorkingDir: tc.img.WorkingDir, Labels: tc.img.Labels,
			}, cfg.Config)
			if tc.created {
				require.NotNil(t, cfg.Created)
				assert.True(t, tc.img.Created.Equal(*cfg.Created))
			} else {
				assert.Nil(t, cfg.Created)
			}
			// the raw JSON leaves created out entirely when it is not set
			assert.Equal(t, tc.created, bytes.Contains(blob(t, layout, man.Config), []byte(`"created":`)))

			// layer: diff id, then members
			zr, err := gzip.NewReader(bytes.NewReader(blob(t, layout, man.Layers[0])))
			require.NoError(t, err)
			plain, err := io.ReadAll(zr)
			require.NoError(t, err)
			assert.Equal(t, []string{sha(plain)}, cfg.RootFS.DiffIDs)
			assert.Equal(t, "layers", cfg.RootFS.Type)
			assert.Equal(t, res.DiffID, sha(plain))

			members, order := readTar(t, bytes.NewReader(plain))
			assert.Len(t, members, len(tc.files)+len(tc.dirs)+1)
			assert.IsNonDecreasing(t, order, "members are sorted")
			tmp, ok := members["tmp/"]
			require.True(t, ok, "/tmp missing")
			assert.Equal(t, byte(tar.TypeDir), tmp.hdr.Typeflag)
			assert.Equal(t, int64(0o1777), tmp.hdr.Mode)
			for _, d := range tc.dirs {
				m, ok := members[d]
				require.True(t, ok, "folder %s missing", d)
				assert.Equal(t, byte(tar.TypeDir), m.hdr.Typeflag, d)
				assert.Equal(t, int64(0o755), m.hdr.Mode, d)
			}
			for p, want := range tc.files {
				m, ok := members[p]
				require.True(t, ok, "file %s missing", p)
				assert.Equal(t, byte(tar.TypeReg), m.hdr.Typeflag, p)
				assert.Equal(t, want.mode, m.hdr.Mode, p)
				assert.Equal(t, want.content, string(m.data), p)
			}
			for name, m := range members {
				assert.Zero(t, m.hdr.Uid, name)
				assert.Zero(t, m.hdr.Gid, name)
				assert.Empty(t, m.hdr.Uname, name)
				assert.Empty(t, m.hdr.Gname, name)
				assert.True(t, tc.wantMTime.Equal(m.hdr.ModTime), "%s: mtime %s, want %s", name, m.hdr.ModTime, tc.wantMTime)
			}

			// the same input again: the same bytes, hence the same digest
			again := filepath.Join(t.TempDir(), "again.tar")
			res2, err := WriteFile(again, tc.img)
			require.NoError(t, err)
			assert.Equal(t, res.Manifest.Digest, res2.Manifest.Digest)
			raw2, err := os.ReadFile(again)
			require.NoError(t, err)
			assert.Equal(t, sha(raw), sha(raw2))

			// Write gives the same tarball as WriteFile
			var buf bytes.Buffer
			res3, err := Write(&buf, tc.img)
			require.NoError(t, err)
			assert.Equal(t, res, res3)
			assert.Equal(t, sha(raw), sha(buf.Bytes()))
		})
	}
}

func TestDigestFollowsInput(t *testing.T) {
	src := t.TempDir()
	a := writeFile(t, src, "a", "one", 0o755)
	b := writeFile(t, src, "b", "two", 0o755)
	base := Image{Name: "x/y:v1", Files: []File{{Source: a, Path: "/bin/x"}}, Entrypoint: []string{"/bin/x"}}
	digest := func(img Image) string {
		t.Helper()
		res, err := Write(io.Discard, img)
		require.NoError(t, err)
		return res.Manifest.Digest
	}
	d0 := digest(base)
	for name, mutate := range map[string]func(*Image){
		"content": func(i *Image) { i.Files = []File{{Source: b, Path: "/bin/x"}} },
		"mode":    func(i *Image) { i.Files = []File{{Source: a, Path: "/bin/x", Mode: 0o700}} },
		"user":    func(i *Image) { i.User = "1:1" },
		"mtime":   func(i *Image) { i.ModTime = time.Unix(1, 0) },
		"label":   func(i *Image) { i.Labels = map[string]string{"k": "v"} },
	} {
		img := base
		mutate(&img)
		assert.NotEqual(t, d0, digest(img), name)
	}
	// the name is in index.json only, not in the image
	renamed := base
	renamed.Name = "x/z:v2"
	assert.Equal(t, d0, digest(renamed))
}

func TestWriteErrors(t *testing.T) {
	src := t.TempDir()
	a := writeFile(t, src, "a", "one", 0o755)
	for name, img := range map[string]Image{
		"no name":          {Files: []File{{Source: a, Path: "/a"}}},
		"no tag":           {Name: "ghcr.io/x/agent", Files: []File{{Source: a, Path: "/a"}}},
		"registry port":    {Name: "localhost:5000/agent", Files: []File{{Source: a, Path: "/a"}}},
		"relative path":    {Name: "x:v1", Files: []File{{Source: a, Path: "a"}}},
		"unclean path":     {Name: "x:v1", Files: []File{{Source: a, Path: "/usr/../a"}}},
		"twice":            {Name: "x:v1", Files: []File{{Source: a, Path: "/a"}, {Source: a, Path: "/a"}}},
		"file and folder":  {Name: "x:v1", Files: []File{{Source: a, Path: "/a"}, {Source: a, Path: "/a/b"}}},
		"file over /tmp":   {Name: "x:v1", Files: []File{{Source: a, Path: "/tmp"}}},
		"missing source":   {Name: "x:v1", Files: []File{{Source: filepath.Join(src, "nope"), Path: "/a"}}},
		"folder as a file": {Name: "x:v1", Files: []File{{Source: src, Path: "/a"}}},
	} {
		_, err := Write(io.Discard, img)
		assert.Error(t, err, name)
	}
	// a failed WriteFile leaves nothing behind
	dir := t.TempDir()
	_, err := WriteFile(filepath.Join(dir, "out.tar"), Image{Name: "x:v1", Files: []File{{Source: "/nonexistent", Path: "/a"}}})
	require.Error(t, err)
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, left)
}

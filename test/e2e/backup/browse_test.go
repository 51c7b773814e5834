package backup

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/restic/restictest"
)

// TestBrowse backs up a PVC once and looks inside the Snapshot through
// snapshots/files and snapshots/download as namespace users with the
// built-in roles (edit may, view may not, another namespace's user may
// not), then restores one subtree of it with a RestoreSession's include.
func TestBrowse(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	const ns, other = "browse-e2e", "browse-other"
	podLogsOnFailure(t, ns)
	e := newFailEnv(ctx, t, failOptions{NS: ns, BC: "pvc-backup", Directory: "/browse",
		Data: restictest.Dataset{SmallFiles: 40, SmallMax: 8 << 10, LargeFiles: 1, LargeSize: 3 << 20, Seed: 14}})
	snap := e.snapshot(e.first).Name
	want, err := restictest.Digest(e.data)
	require.NoError(t, err)

	// Users with the built-in roles, whose aggregated rules come from
	// artifacts/apiserver/02-rbac.yaml.
	_, err = env.KubeClient.CoreV1().Namespaces().Create(ctx, tenantNamespace(other), metav1.CreateOptions{})
	require.NoError(t, err)
	bindRole(ctx, t, ns, "ed", "edit")
	bindRole(ctx, t, ns, "viewer", "view")
	bindRole(ctx, t, other, "stranger", "edit")
	editor, viewer, stranger := userClient(t, "ed"), userClient(t, "viewer"), userClient(t, "stranger")
	var lastErr error
	assert.Eventually(t, func() bool {
		_, lastErr = files(ctx, editor, ns, snap, "/", false, "")
		return lastErr == nil
	}, time.Minute, time.Second, "the edit role aggregates snapshots/files and the catalog server may read the Secrets")
	if lastErr != nil {
		t.Fatalf("listing as edit: %v", lastErr)
	}

	t.Run("list root and a subdirectory", func(t *testing.T) {
		root, err := files(ctx, editor, ns, snap, "/", false, "")
		require.NoError(t, err)
		assert.Equal(t, "SnapshotFileList", root.Kind)
		assert.Equal(t, "/", root.Path)
		assertListing(t, e.data, "/", root.Items)

		// Every directory of the source, listed one at a time, has the
		// same entries: names, types, sizes, modes, owners, mtimes and
		// symlink targets.
		dirs := 0
		for p, en := range want {
			if en.Type != "dir" || strings.Count(p, "/") > 2 {
				continue
			}
			l, err := files(ctx, editor, ns, snap, "/"+p, false, "")
			require.NoError(t, err, p)
			assertListing(t, e.data, "/"+p, l.Items)
			dirs++
		}
		assert.Positive(t, dirs)
	})

	t.Run("recursive with limit and continue", func(t *testing.T) {
		var got []catalogv1alpha1.SnapshotFile
		token, pages := "", 0
		for {
			l, err := filesLimit(ctx, editor, ns, snap, "/", token, 25)
			require.NoError(t, err)
			assert.LessOrEqual(t, len(l.Items), 25)
			got = append(got, l.Items...)
			pages++
			if token = l.Continue; token == "" {
				break
			}
		}
		assert.Greater(t, pages, 1, "a limit of 25 cuts the listing into pages")
		seen := map[string]bool{}
		for _, f := range got {
			rel := strings.TrimPrefix(f.Path, "/")
			assert.False(t, seen[rel], "%s listed twice", f.Path)
			seen[rel] = true
			w, ok := want[rel]
			if !assert.True(t, ok, "%s is not in the source", f.Path) {
				continue
			}
			assert.Equal(t, w.Type, f.Type, f.Path)
			assert.Equal(t, fmt.Sprintf("%04o", unixPerm(w.Mode)), f.Mode, f.Path)
			if w.Type == "file" {
				assert.Equal(t, w.Size, f.Size, f.Path)
			}
			assert.Equal(t, w.Link, f.LinkTarget, f.Path)
		}
		assert.Len(t, seen, len(want), "every entry of the source, once")
	})

	t.Run("download a file and a directory", func(t *testing.T) {
		// The largest file, byte for byte.
		var big string
		for p, en := range want {
			if en.Type == "file" && (big == "" || en.Size > want[big].Size) {
				big = p
			}
		}
		body, hdr, err := download(ctx, editor, ns, snap, "/"+big)
		require.NoError(t, err)
		assert.Equal(t, "application/octet-stream", hdr.contentType)
		assert.Equal(t, fmt.Sprint(want[big].Size), hdr.contentLength)
		assert.Equal(t, want[big].SHA256, sha(body), big)

		// A directory, as tar: every file's bytes, modes, mtimes and
		// every symlink's target.
		dir := "initial"
		body, hdr, err = download(ctx, editor, ns, snap, "/"+dir)
		require.NoError(t, err)
		assert.Equal(t, "application/x-tar", hdr.contentType)
		tr := tar.NewReader(strings.NewReader(string(body)))
		n := 0
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			rel := path.Join(dir, strings.TrimSuffix(h.Name, "/"))
			w, ok := want[rel]
			if !assert.True(t, ok, "%s in the tar is not in the source", rel) {
				continue
			}
			n++
			assert.Equal(t, int64(unixPerm(w.Mode)), h.Mode&0o7777, rel)
			switch h.Typeflag {
			case tar.TypeReg:
				b, err := io.ReadAll(tr)
				require.NoError(t, err)
				assert.Equal(t, w.SHA256, sha(b), rel)
				assert.Equal(t, w.ModTime.Unix(), h.ModTime.Unix(), rel)
			case tar.TypeSymlink:
				assert.Equal(t, w.Link, h.Linkname, rel)
			case tar.TypeDir:
				assert.Equal(t, "dir", w.Type, rel)
			}
		}
		below := 0
		for p := range want {
			if strings.HasPrefix(p, dir+"/") {
				below++
			}
		}
		assert.Equal(t, below, n, "every entry below %s is in the tar", dir)
	})

	t.Run("errors", func(t *testing.T) {
		_, err := files(ctx, editor, ns, snap, "/no/such/dir", false, "")
		assert.True(t, apierrors.IsNotFound(err), "missing path: %v", err)
		assert.ErrorContains(t, err, "/no/such/dir", "the 404 names the path")
		t.Logf("files of a missing path: %v", err)
		_, _, err = download(ctx, editor, ns, snap, "/initial/missing.bin")
		assert.True(t, apierrors.IsNotFound(err), "missing file: %v", err)
		assert.ErrorContains(t, err, "/initial/missing.bin")
		_, err = files(ctx, editor, ns, snap, "/initial/../..", false, "")
		assert.True(t, apierrors.IsBadRequest(err), "..: %v", err)
		_, _, err = download(ctx, editor, ns, snap, "/../etc/passwd")
		assert.True(t, apierrors.IsBadRequest(err), "..: %v", err)

		// A Snapshot that has not finished: 409 saying its phase.
		pending := &catalogv1alpha1.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Name: "browse-pending", Namespace: ns},
			Spec:       catalogv1alpha1.SnapshotSpec{Repository: failRepo, Session: failSession},
		}
		_, err = e.client.CatalogV1alpha1().Snapshots(ns).Create(ctx, pending, metav1.CreateOptions{})
		require.NoError(t, err)
		pending, err = e.client.CatalogV1alpha1().Snapshots(ns).Get(ctx, pending.Name, metav1.GetOptions{})
		require.NoError(t, err)
		pending.Status.Phase = catalogv1alpha1.SnapshotRunning
		_, err = e.client.CatalogV1alpha1().Snapshots(ns).UpdateStatus(ctx, pending, metav1.UpdateOptions{})
		require.NoError(t, err)
		_, err = files(ctx, editor, ns, pending.Name, "/", false, "")
		assert.True(t, apierrors.IsConflict(err), "not Succeeded: %v", err)
		assert.ErrorContains(t, err, "Running")
		t.Logf("files of a Running Snapshot: %v", err)
		_, _, err = download(ctx, editor, ns, pending.Name, "/")
		assert.True(t, apierrors.IsConflict(err), "not Succeeded: %v", err)
	})

	t.Run("view and other namespaces are forbidden", func(t *testing.T) {
		_, err := viewer.CatalogV1alpha1().Snapshots(ns).Get(ctx, snap, metav1.GetOptions{})
		require.NoError(t, err, "view reads Snapshots")
		for who, c := range map[string]user{"view": viewer, "another namespace's edit": stranger} {
			_, err = files(ctx, c, ns, snap, "/", false, "")
			assert.True(t, apierrors.IsForbidden(err), "%s, files: %v", who, err)
			_, _, err = download(ctx, c, ns, snap, "/initial")
			assert.True(t, apierrors.IsForbidden(err), "%s, download: %v", who, err)
		}
	})

	t.Run("kubectl", func(t *testing.T) {
		// What a user sees with kubectl alone (docs/browse.md quotes it).
		base := fmt.Sprintf("/apis/catalog.kubestash.com/v1alpha1/namespaces/%s/snapshots/%s", ns, snap)
		out, _, err := env.Kubectl(ctx, "", "--as=ed", "get", "--raw", base+"/files?path=/initial")
		require.NoError(t, err)
		t.Logf("kubectl --as=ed get --raw '%s/files?path=/initial':\n%s", base, out)
		var l catalogv1alpha1.SnapshotFileList
		require.NoError(t, json.Unmarshal([]byte(out), &l))
		assert.Equal(t, "/initial", l.Path)
		_, stderr, err := env.Kubectl(ctx, "", "--as=viewer", "get", "--raw", base+"/download?path=/initial")
		require.Error(t, err)
		t.Logf("kubectl --as=viewer get --raw '%s/download?path=/initial':\n%s", base, stderr)
		assert.Contains(t, stderr, "Forbidden")
	})

	t.Run("restore with include", func(t *testing.T) {
		// The first subdirectory of initial/ is restored; the target
		// already holds a file outside it, which must stay as it is, and
		// nothing else of the snapshot may appear.
		var sub string
		for p, en := range want {
			if en.Type == "dir" && strings.Count(p, "/") == 1 && (sub == "" || p < sub) {
				sub = p
			}
		}
		require.NotEmpty(t, sub)
		target := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(target, "initial"), 0o755))
		keep := filepath.Join(target, "initial", "kept-by-restore.txt")
		require.NoError(t, os.WriteFile(keep, []byte("not in the snapshot"), 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(target, "outside.txt"), []byte("mine"), 0o644))
		pvClaim(ctx, t, ns, "restore-pvc", target)

		params, err := json.Marshal(map[string]any{"include": []string{"/" + sub}})
		require.NoError(t, err)
		rs := &catalogv1alpha1.RestoreSession{
			ObjectMeta: metav1.ObjectMeta{Name: "restore-include", Namespace: ns},
			Spec: catalogv1alpha1.RestoreSessionSpec{
				Target: &kmapi.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "restore-pvc"},
				DataSource: catalogv1alpha1.RestoreDataSource{
					Repository: failRepo, Snapshot: snap, EncryptionSecret: &kmapi.ObjectReference{Name: "encrypt-secret"},
				},
				Addon: &corev1alpha1.AddonInfo{Name: "pvc-addon", Tasks: []corev1alpha1.TaskReference{{
					Name: "logical-backup-restore", Params: &runtime.RawExtension{Raw: params},
				}}},
			},
		}
		// A relative or climbing path is refused naming the param.
		bad := rs.DeepCopy()
		bad.Name = "restore-bad-include"
		bad.Spec.Addon.Tasks[0].Params = &runtime.RawExtension{Raw: []byte(`{"include":"/initial/../../etc"}`)}
		_, err = editor.CatalogV1alpha1().RestoreSessions(ns).Create(ctx, bad, metav1.CreateOptions{})
		assert.True(t, apierrors.IsInvalid(err), "%v", err)
		assert.ErrorContains(t, err, "spec.addon.tasks[0].params.include")
		t.Logf("a RestoreSession including /initial/../../etc: %v", err)

		_, err = editor.CatalogV1alpha1().RestoreSessions(ns).Create(ctx, rs, metav1.CreateOptions{})
		require.NoError(t, err)
		var got *catalogv1alpha1.RestoreSession
		require.Eventually(t, func() bool {
			got, err = e.client.CatalogV1alpha1().RestoreSessions(ns).Get(ctx, rs.Name, metav1.GetOptions{})
			return err == nil && got.Status.Phase.IsTerminal()
		}, 4*time.Minute, time.Second, "the restore ends")
		require.Equal(t, catalogv1alpha1.RestoreSucceeded, got.Status.Phase, "%+v", got.Status)

		restored, err := restictest.Digest(target)
		require.NoError(t, err)
		for p, w := range want {
			inside := p == sub || strings.HasPrefix(p, sub+"/")
			g, ok := restored[p]
			switch {
			case inside:
				if assert.True(t, ok, "%s is restored", p) && w.Type == "file" {
					assert.Equal(t, w.SHA256, g.SHA256, p)
				}
			case p == "initial":
				// The parent of the included folder.
			default:
				assert.False(t, ok, "%s is outside the include and must not be restored", p)
			}
		}
		b, err := os.ReadFile(keep)
		require.NoError(t, err)
		assert.Equal(t, "not in the snapshot", string(b), "a file outside the include is untouched")
		b, err = os.ReadFile(filepath.Join(target, "outside.txt"))
		require.NoError(t, err)
		assert.Equal(t, "mine", string(b))
	})
}

// bindRole gives user a built-in ClusterRole in ns.
func bindRole(ctx context.Context, t *testing.T, ns, user, role string) {
	t.Helper()
	_, _, err := env.Kubectl(ctx, fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: %[2]s-%[3]s, namespace: %[1]s}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: %[2]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: %[3]s}
`, ns, user, role), "apply", "-f", "-")
	require.NoError(t, err)
}

// user is a namespace user's clients.
type user struct {
	versioned.Interface
	http *http.Client
}

// userClient reaches the API as name (impersonated by the admin).
func userClient(t *testing.T, name string) user {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: name, Groups: []string{"system:authenticated"}}
	c, err := versioned.NewForConfig(cfg)
	require.NoError(t, err)
	hc, err := rest.HTTPClientFor(cfg)
	require.NoError(t, err)
	return user{Interface: c, http: hc}
}

func files(ctx context.Context, c user, ns, snap, p string, recursive bool, token string) (*catalogv1alpha1.SnapshotFileList, error) {
	req := c.CatalogV1alpha1().RESTClient().Get().Namespace(ns).Resource("snapshots").Name(snap).SubResource("files").Param("path", p)
	if recursive {
		req = req.Param("recursive", "true")
	}
	if token != "" {
		req = req.Param("continue", token)
	}
	// Result.Error decodes the Status of a failure (DoRaw would not).
	res := req.Do(ctx)
	if err := res.Error(); err != nil {
		return nil, err
	}
	raw, err := res.Raw()
	if err != nil {
		return nil, err
	}
	var l catalogv1alpha1.SnapshotFileList
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, fmt.Errorf("decode %s: %w", raw, err)
	}
	return &l, nil
}

func filesLimit(ctx context.Context, c user, ns, snap, p, token string, limit int) (*catalogv1alpha1.SnapshotFileList, error) {
	req := c.CatalogV1alpha1().RESTClient().Get().Namespace(ns).Resource("snapshots").Name(snap).SubResource("files").
		Param("path", p).Param("recursive", "true").Param("limit", fmt.Sprint(limit))
	if token != "" {
		req = req.Param("continue", token)
	}
	res := req.Do(ctx)
	if err := res.Error(); err != nil {
		return nil, err
	}
	raw, err := res.Raw()
	if err != nil {
		return nil, err
	}
	var l catalogv1alpha1.SnapshotFileList
	return &l, json.Unmarshal(raw, &l)
}

type headers struct{ contentType, contentLength string }

// download reads all of a download with its headers, as a browser or
// curl would; a failure is the API's Status as an error.
func download(ctx context.Context, c user, ns, snap, p string) ([]byte, headers, error) {
	u := c.CatalogV1alpha1().RESTClient().Get().Namespace(ns).Resource("snapshots").Name(snap).SubResource("download").
		Param("path", p).URL()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, headers{}, err
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, headers{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, headers{}, err
	}
	if res.StatusCode != http.StatusOK {
		var st metav1.Status
		if json.Unmarshal(body, &st) != nil || st.Code == 0 {
			return nil, headers{}, fmt.Errorf("HTTP %d: %s", res.StatusCode, body)
		}
		return nil, headers{}, &apierrors.StatusError{ErrStatus: st}
	}
	return body, headers{contentType: res.Header.Get("Content-Type"), contentLength: res.Header.Get("Content-Length")}, nil
}

// assertListing compares a listing of dir (in-snapshot) with the source
// folder data+dir.
func assertListing(t *testing.T, data, dir string, items []catalogv1alpha1.SnapshotFile) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(data, filepath.FromSlash(dir)))
	require.NoError(t, err)
	var wantNames, gotNames []string
	for _, de := range ents {
		wantNames = append(wantNames, de.Name())
	}
	for _, it := range items {
		gotNames = append(gotNames, it.Name)
	}
	sort.Strings(wantNames)
	sort.Strings(gotNames)
	require.Equal(t, wantNames, gotNames, "names in %s", dir)
	for _, it := range items {
		src := filepath.Join(data, filepath.FromSlash(dir), it.Name)
		fi, err := os.Lstat(src)
		require.NoError(t, err)
		assert.Equal(t, path.Join(dir, it.Name), it.Path)
		assert.Equal(t, fmt.Sprintf("%04o", unixPerm(fi.Mode())), it.Mode, it.Path)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			assert.Equal(t, "symlink", it.Type, it.Path)
			target, err := os.Readlink(src)
			require.NoError(t, err)
			assert.Equal(t, target, it.LinkTarget, it.Path)
		case fi.IsDir():
			assert.Equal(t, "dir", it.Type, it.Path)
			assert.Equal(t, fi.ModTime().Unix(), it.Mtime.Unix(), it.Path)
		default:
			assert.Equal(t, "file", it.Type, it.Path)
			assert.Equal(t, fi.Size(), it.Size, it.Path)
			assert.Equal(t, fi.ModTime().Unix(), it.Mtime.Unix(), it.Path)
		}
	}
}

// unixPerm is m's permission bits with set-ID and sticky bits in their
// Unix places.
func unixPerm(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

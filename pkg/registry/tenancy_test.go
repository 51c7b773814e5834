package registry_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/rest"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/registry"
	"kubestash.dev/kubestash/pkg/registry/catalog/repositoryrest"
	"kubestash.dev/kubestash/pkg/registry/catalog/restoresessionrest"
	"kubestash.dev/kubestash/pkg/registry/catalog/snapshotrest"
)

// tenancyCatalog serves storage demo/local (usagePolicy Same) with
// Repository demo/repo-1 and its Snapshot snap-1.
type tenancyCatalog struct {
	dir                 string
	repos, snaps, rests *registry.REST
}

func newTenancyCatalog(t *testing.T) *tenancyCatalog {
	t.Helper()
	dir, cat, scheme := localCatalog(t)
	// As storages.Manager: a missing BackupStorage is an error too,
	// of another wording than a refusal.
	cat.Allowed = func(storage, namespace string) error {
		if storage != "demo/local" {
			return fmt.Errorf("BackupStorage %s: not found", storage)
		}
		if namespace != "demo" {
			return fmt.Errorf("BackupStorage %s may not be used in namespace %s: usagePolicy Same", storage, namespace)
		}
		return nil
	}
	ns := &fakeNamespaces{}
	tc := &tenancyCatalog{dir: dir}
	var err error
	tc.repos, _, err = repositoryrest.NewREST(scheme, cat, ns)
	require.NoError(t, err)
	t.Cleanup(tc.repos.Destroy)
	tc.snaps, _, err = snapshotrest.NewREST(scheme, cat, ns)
	require.NoError(t, err)
	t.Cleanup(tc.snaps.Destroy)
	tc.rests, _, err = restoresessionrest.NewREST(scheme, cat, ns)
	require.NoError(t, err)
	t.Cleanup(tc.rests.Destroy)
	ctx := nsContext("demo")
	for _, s := range cat.Stores() {
		require.NoError(t, s.WaitReady(ctx))
	}
	_, err = tc.repos.Create(ctx, &catalog.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "repo-1", Namespace: "demo"},
		Spec:       catalog.RepositorySpec{StorageRef: kmapi.ObjectReference{Name: "local"}, Path: "/repo-1"},
	}, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = tc.snaps.Create(ctx, &catalog.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "snap-1", Namespace: "demo"},
		Spec:       catalog.SnapshotSpec{Repository: "repo-1", Session: "daily"},
	}, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
	require.NoError(t, err)
	return tc
}

// files lists the files under the storage's directory.
func (tc *tenancyCatalog) files(t *testing.T) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.Walk(tc.dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && !strings.HasPrefix(info.Name(), ".") {
			out = append(out, strings.TrimPrefix(p, tc.dir))
		}
		return err
	}))
	return out
}

func dryRun() *metav1.CreateOptions {
	return &metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
}

// TestDryRunAnswersAsACreate: a server-side dry run runs the placement and
// tenancy checks of a real create (it used to skip them and succeed), and
// a reference to another namespace's object that the namespace may not use
// gets the same answer whether that object exists or not.
func TestDryRunAnswersAsACreate(t *testing.T) {
	tc := newTenancyCatalog(t)
	other := nsContext("other")
	repo := func(storageNS, storage string) runtime.Object {
		return &catalog.Repository{
			ObjectMeta: metav1.ObjectMeta{Name: "intruder", Namespace: "other"},
			Spec:       catalog.RepositorySpec{StorageRef: kmapi.ObjectReference{Name: storage, Namespace: storageNS}, Path: "/intruder"},
		}
	}
	restore := func(ds catalog.RestoreDataSource) runtime.Object {
		return &catalog.RestoreSession{
			ObjectMeta: metav1.ObjectMeta{Name: "restore-x", Namespace: "other"},
			Spec:       catalog.RestoreSessionSpec{DataSource: ds},
		}
	}
	for _, tc2 := range []struct {
		name             string
		rest             *registry.REST
		existing, absent runtime.Object
		// want is in the answer; code its HTTP status.
		want string
		code int32
	}{
		{
			name: "Repository on another namespace's storage", rest: tc.repos,
			existing: repo("demo", "local"), absent: repo("demo", "ghost"),
			want: "no BackupStorage demo/", code: 400,
		},
		{
			name: "RestoreSession from another namespace's Repository", rest: tc.rests,
			existing: restore(catalog.RestoreDataSource{Namespace: "demo", Repository: "repo-1", Snapshot: "latest"}),
			absent:   restore(catalog.RestoreDataSource{Namespace: "demo", Repository: "repo-9", Snapshot: "latest"}),
			want:     "no Repository demo/", code: 400,
		},
		{
			name: "RestoreSession from another namespace's Snapshot", rest: tc.rests,
			existing: restore(catalog.RestoreDataSource{Namespace: "demo", Snapshot: "snap-1"}),
			absent:   restore(catalog.RestoreDataSource{Namespace: "demo", Snapshot: "snap-9"}),
			want:     "was not found", code: 422,
		},
	} {
		t.Run(tc2.name, func(t *testing.T) {
			before := tc.files(t)
			var msgs []string
			for _, obj := range []runtime.Object{tc2.existing, tc2.absent} {
				for _, opts := range []*metav1.CreateOptions{dryRun(), {}} {
					_, err := tc2.rest.Create(other, obj.DeepCopyObject(), rest.ValidateAllObjectFunc, opts)
					require.Error(t, err, "dry run %v", opts.DryRun)
					status, ok := err.(apierrors.APIStatus)
					require.True(t, ok, "%T %v", err, err)
					assert.Equal(t, tc2.code, status.Status().Code, "%v", err)
					assert.Contains(t, err.Error(), tc2.want)
					// The object's own name is in the status; what differs
					// between the two references may not be.
					msg := strings.NewReplacer("ghost", "X", "local", "X", "repo-9", "X", "repo-1", "X", "snap-9", "X", "snap-1", "X").Replace(err.Error())
					msgs = append(msgs, msg)
				}
			}
			for _, m := range msgs[1:] {
				assert.Equal(t, msgs[0], m, "existing and missing objects, dry run or not, answer alike")
			}
			assert.Equal(t, before, tc.files(t), "nothing written")
		})
	}
	// The answers above differ only in the name of the reference itself:
	// the same reference name, existing or not, is refused byte for byte
	// alike (storage "local" exists in demo, in "elsewhere" it does not).
	_, errExisting := tc.repos.Create(other, repo("demo", "local"), rest.ValidateAllObjectFunc, dryRun())
	_, errMissing := tc.repos.Create(other, repo("elsewhere", "local"), rest.ValidateAllObjectFunc, dryRun())
	require.Error(t, errExisting)
	require.Error(t, errMissing)
	assert.Equal(t, strings.Replace(errExisting.Error(), "demo/local", "elsewhere/local", 1), errMissing.Error())
}

// TestDryRunChecksWithinTheNamespace: dry runs in the storage's own
// namespace fail where a create fails, succeed where it succeeds, and
// write nothing.
func TestDryRunChecksWithinTheNamespace(t *testing.T) {
	tc := newTenancyCatalog(t)
	demo := nsContext("demo")
	for _, c := range []struct {
		name   string
		rest   *registry.REST
		obj    runtime.Object
		wantOK bool
		want   string
	}{
		{"Snapshot of a missing Repository", tc.snaps, &catalog.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: "demo"}, Spec: catalog.SnapshotSpec{Repository: "nope"},
		}, false, "spec.repository"},
		{"Repository on a missing storage", tc.repos, &catalog.Repository{
			ObjectMeta: metav1.ObjectMeta{Name: "r2", Namespace: "demo"},
			Spec:       catalog.RepositorySpec{StorageRef: kmapi.ObjectReference{Name: "ghost"}, Path: "/r2"},
		}, false, "spec.storageRef"},
		{"Snapshot", tc.snaps, &catalog.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Name: "snap-2", Namespace: "demo"}, Spec: catalog.SnapshotSpec{Repository: "repo-1"},
		}, true, ""},
		{"Repository", tc.repos, &catalog.Repository{
			ObjectMeta: metav1.ObjectMeta{Name: "r3", Namespace: "demo"},
			Spec:       catalog.RepositorySpec{StorageRef: kmapi.ObjectReference{Name: "local"}, Path: "/r3"},
		}, true, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := tc.files(t)
			meta, err := os.ReadFile(filepath.Join(tc.dir, layout.MetadataFile))
			require.NoError(t, err)
			_, err = c.rest.Create(demo, c.obj.DeepCopyObject(), rest.ValidateAllObjectFunc, dryRun())
			if c.wantOK {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.want)
				_, realErr := c.rest.Create(demo, c.obj.DeepCopyObject(), rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
				require.Error(t, realErr)
				assert.Equal(t, realErr.Error(), err.Error(), "dry run and create refuse alike")
			}
			assert.Equal(t, before, tc.files(t), "a dry run writes nothing")
			after, err := os.ReadFile(filepath.Join(tc.dir, layout.MetadataFile))
			require.NoError(t, err)
			assert.Equal(t, string(meta), string(after), "not even metadata.yaml")
		})
	}
}

// TestNamesTheBackendsCannotStore: a name whose file would not fit in a
// path element is a 422 on metadata.name saying how long it may be (it
// was a 500 naming a host path); the longest that fits is stored.
func TestNamesTheBackendsCannotStore(t *testing.T) {
	tc := newTenancyCatalog(t)
	demo := nsContext("demo")
	assert.Equal(t, 250, registry.MaxNameLength(layout.KindSnapshot))
	assert.Equal(t, 253, registry.MaxNameLength(layout.KindRepository), "a Repository's name names no file")
	for _, c := range []struct {
		name string
		rest *registry.REST
		obj  func(name string) runtime.Object
	}{
		{"Snapshot", tc.snaps, func(n string) runtime.Object {
			return &catalog.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: "demo"}, Spec: catalog.SnapshotSpec{Repository: "repo-1"}}
		}},
		{"RestoreSession", tc.rests, func(n string) runtime.Object {
			return &catalog.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: "demo"},
				Spec: catalog.RestoreSessionSpec{DataSource: catalog.RestoreDataSource{Repository: "repo-1", Snapshot: "latest"}}}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, n := range []int{251, 253} {
				_, err := c.rest.Create(demo, c.obj(strings.Repeat("a", n)), rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
				require.Error(t, err)
				assert.True(t, apierrors.IsInvalid(err), "422, got %v", err)
				assert.Contains(t, err.Error(), "metadata.name")
				assert.Contains(t, err.Error(), "no more than 250 characters")
				assert.NotContains(t, err.Error(), tc.dir)
			}
			_, err := c.rest.Create(demo, c.obj(strings.Repeat("b", 250)), rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
			require.NoError(t, err)
		})
	}
}

// TestBackendErrorsNameNoHostPath: a backend failure reaches the client
// without the host paths the local backend's errors carry.
func TestBackendErrorsNameNoHostPath(t *testing.T) {
	tc := newTenancyCatalog(t)
	demo := nsContext("demo")
	// A file where the repository's sessions folder should be: the write
	// fails in the file system, with the path in the error.
	require.NoError(t, os.WriteFile(filepath.Join(tc.dir, "repo-1", layout.RestoreSessionsDir), []byte("x"), 0o644))
	_, err := tc.rests.Create(demo, &catalog.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "demo"},
		Spec: catalog.RestoreSessionSpec{DataSource: catalog.RestoreDataSource{Repository: "repo-1", Snapshot: "latest"}}},
		rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
	require.Error(t, err)
	assert.True(t, apierrors.IsInternalError(err), "%v", err)
	assert.NotContains(t, err.Error(), tc.dir)
	assert.NotContains(t, err.Error(), "/tmp")
	t.Logf("answer: %v", err)
}

func TestPublicErrorMessages(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name       string
		err        error
		want       string
		wantAbsent string
	}{
		{"internal error", apierrors.NewInternalError(fmt.Errorf("cannot create /catalog.kubestash.com/snapshots/demo/x in storage demo/local: put a/snapshots/x.yaml: open /srv/backups/a/snapshots/.tmp-1: file name too long")),
			"the catalog failed", "/srv"},
		{"not an API status", fmt.Errorf("open /var/lib/x: permission denied"), "the catalog failed", "/var/lib"},
		{"unavailable keeps its cause", apierrors.NewServiceUnavailable("cannot create /catalog.kubestash.com/snapshots/demo/x: the backend of storage demo/local is unavailable, nothing was changed: put a/x.yaml: backend unavailable: open /srv/backups/a: input/output error"),
			"cannot create /catalog.kubestash.com/snapshots/demo/x: the backend of storage demo/local is unavailable, nothing was changed: put a/x.yaml: backend unavailable: open <path>: input/output error", "/srv"},
		{"a Secret named", apierrors.NewServiceUnavailable("cannot update k: backend unavailable: secret demo/creds not found (backend local:/mnt/x)"),
			"secret demo/creds not found (backend local:<path>)", "/mnt"},
		{"URLs are no host paths", apierrors.NewServiceUnavailable(`Put "https://minio:9000/bucket/a/x.yaml": dial tcp 10.0.0.1:9000: connection refused`),
			`Put "https://minio:9000/bucket/a/x.yaml": dial tcp 10.0.0.1:9000: connection refused`, "<path>"},
		{"client errors unchanged", apierrors.NewBadRequest("spec.path: /a/b is invalid"), "spec.path: /a/b is invalid", "<path>"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := registry.PublicError(ctx, "snapshots.catalog.kubestash.com", c.err)
			require.Error(t, got)
			assert.Contains(t, got.Error(), c.want)
			assert.NotContains(t, got.Error(), c.wantAbsent)
		})
	}
}

// TestKeyLength: with a long repository path and an S3 prefix, the name's
// limit is what is left of the 1024 bytes of a key.
func TestKeyLength(t *testing.T) {
	s3, err := backend.NewS3(backend.S3Config{Endpoint: "http://minio:9000", Bucket: "b", Prefix: "/" + strings.Repeat("p", 99) + "/"})
	require.NoError(t, err)
	repoPath := strings.Repeat(strings.Repeat("r", 200)+"/", 4) + "x" // 805 bytes
	for _, c := range []struct {
		name    string
		b       backend.Backend
		nameLen int
		wantErr string
	}{
		{"fits", s3, 100, ""},
		// 100 (prefix/) + 805 + 11 (/snapshots/) + n + 5 (.yaml) <= 1024
		{"longest", s3, 103, ""},
		{"one more", s3, 104, "no more than 103 characters"},
		{"local has no prefix", backendOf(t), 203, ""},
		{"local one more", backendOf(t), 204, "no more than 203 characters"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := registry.KeyFits(c.b, layout.KindSnapshot, registry.Reference{Kind: "Repository", Namespace: "demo", Name: "r"},
				strings.Repeat("n", c.nameLen), repoPath)
			if c.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.wantErr)
			assert.Contains(t, err.Error(), "metadata.name")
		})
	}
}

func backendOf(t *testing.T) backend.Backend {
	b, err := backend.NewLocal(t.TempDir())
	require.NoError(t, err)
	return b
}

package placement

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/store"
)

type repos map[string][2]string // ns/name -> storage, path

func (r repos) Repository(ns, name string) (string, string, bool) {
	v, ok := r[ns+"/"+name]
	return v[0], v[1], ok
}

type sessions map[string]string

func (s sessions) FirstRepository(ns, bc, session string) (string, error) {
	if r, ok := s[ns+"/"+bc+"/"+session]; ok {
		return r, nil
	}
	return "", errors.New("no such session in the BackupConfiguration")
}

var known = repos{"demo/s3-repo": {"demo/s3-storage", "/pvc-backup-demo"}}

func TestLocators(t *testing.T) {
	om := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: "demo", Name: name} }
	cases := []struct {
		name    string
		locate  func() (store.Location, error)
		want    store.Location
		wantErr string // substring; the error is a 422 that names the field
	}{
		{
			name: "repository",
			locate: func() (store.Location, error) {
				return RepositoryLocator{}.Locate(context.Background(), "", &catalog.Repository{ObjectMeta: om("s3-repo"), Spec: catalog.RepositorySpec{
					StorageRef: kmapi.ObjectReference{Name: "s3-storage"}, Path: "/pvc-backup-demo"}})
			},
			want: store.Location{Storage: "demo/s3-storage", Key: "pvc-backup-demo/repository.yaml"},
		},
		{
			name: "repository in another namespace's storage",
			locate: func() (store.Location, error) {
				return RepositoryLocator{}.Locate(context.Background(), "", &catalog.Repository{ObjectMeta: om("r"), Spec: catalog.RepositorySpec{
					StorageRef: kmapi.ObjectReference{Namespace: "stash", Name: "shared"}, Path: "team/r"}})
			},
			want: store.Location{Storage: "stash/shared", Key: "team/r/repository.yaml"},
		},
		{
			name: "repository with a bad path",
			locate: func() (store.Location, error) {
				return RepositoryLocator{}.Locate(context.Background(), "", &catalog.Repository{ObjectMeta: om("r"), Spec: catalog.RepositorySpec{
					StorageRef: kmapi.ObjectReference{Name: "s"}, Path: "a/../b"}})
			},
			wantErr: "spec.path",
		},
		{
			name: "snapshot",
			locate: func() (store.Location, error) {
				return SnapshotLocator{known}.Locate(context.Background(), "", &catalog.Snapshot{ObjectMeta: om("snap-1"), Spec: catalog.SnapshotSpec{Repository: "s3-repo"}})
			},
			want: store.Location{Storage: "demo/s3-storage", Key: "pvc-backup-demo/snapshots/snap-1.yaml"},
		},
		{
			name: "snapshot of a repository that does not exist",
			locate: func() (store.Location, error) {
				return SnapshotLocator{known}.Locate(context.Background(), "", &catalog.Snapshot{ObjectMeta: om("snap-1"), Spec: catalog.SnapshotSpec{Repository: "nope"}})
			},
			wantErr: `spec.repository: Not found: "demo/nope"`,
		},
		{
			name: "restore session from another namespace's repository",
			locate: func() (store.Location, error) {
				return RestoreSessionLocator{repos{"other/r": {"other/st", "r"}}}.Locate(context.Background(), "", &catalog.RestoreSession{ObjectMeta: om("rs"),
					Spec: catalog.RestoreSessionSpec{DataSource: catalog.RestoreDataSource{Namespace: "other", Repository: "r"}}})
			},
			want: store.Location{Storage: "other/st", Key: "r/restoresessions/rs.yaml"},
		},
		{
			name: "backup session in the first repository of its session",
			locate: func() (store.Location, error) {
				bs := &catalog.BackupSession{ObjectMeta: om("bc-frequent-1")}
				bs.Spec.Invoker.Name, bs.Spec.Session = "bc", "frequent"
				return BackupSessionLocator{known, sessions{"demo/bc/frequent": "s3-repo"}}.Locate(context.Background(), "", bs)
			},
			want: store.Location{Storage: "demo/s3-storage", Key: "pvc-backup-demo/backupsessions/bc-frequent-1.yaml"},
		},
		{
			name: "backup session of an unknown session",
			locate: func() (store.Location, error) {
				bs := &catalog.BackupSession{ObjectMeta: om("x")}
				bs.Spec.Invoker.Name, bs.Spec.Session = "bc", "nope"
				return BackupSessionLocator{known, sessions{}}.Locate(context.Background(), "", bs)
			},
			wantErr: "spec.session",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			loc, err := c.locate()
			if c.wantErr != "" {
				require.Error(t, err)
				assert.True(t, apierrors.IsInvalid(err), "a 422, got %v", err)
				assert.Contains(t, err.Error(), c.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, loc)
		})
	}
}

func TestAdmitter(t *testing.T) {
	a := Admitter{Prefix: "/catalog.kubestash.com/snapshots", Kind: layout.KindSnapshot,
		Allowed: func(storage, ns string) error {
			if ns != "demo" {
				return errors.New("namespace not allowed by the usagePolicy")
			}
			return nil
		}}
	s := &catalog.Snapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "s1",
		OwnerReferences: []metav1.OwnerReference{{Kind: "Repository", Name: "r", UID: "u"}}}}
	key, err := a.Admit("demo/st", "r/snapshots/s1.yaml", s)
	require.NoError(t, err)
	assert.Equal(t, "/catalog.kubestash.com/snapshots/demo/s1", key)
	assert.Empty(t, s.OwnerReferences, "owner references are never served")
	assert.NotEmpty(t, s.UID)
	assert.Equal(t, StableUID("demo/st", "r/snapshots/s1.yaml"), s.UID, "the same file keeps its UID")

	_, err = a.Admit("demo/st", "r/backupsessions/s1.yaml", s.DeepCopy())
	assert.ErrorContains(t, err, "does not hold a Snapshot")
	other := s.DeepCopy()
	other.Namespace = "team-b"
	_, err = a.Admit("demo/st", "r/snapshots/s1.yaml", other)
	assert.ErrorContains(t, err, "usagePolicy")
}

// TestAdmitterRepositoryPath: a Repository read from a file is served only
// if its spec.path passes the API's rule and is the file's own folder.
func TestAdmitterRepositoryPath(t *testing.T) {
	a := Admitter{Prefix: "/catalog.kubestash.com/repositories", Kind: layout.KindRepository}
	for _, tc := range []struct {
		name, file, path string
		ok               bool
	}{
		{"own folder", "demo/pvc/repository.yaml", "/demo/pvc", true},
		{"own folder without slash", "demo/pvc/repository.yaml", "demo/pvc", true},
		{"parent escape", "tenant-a/evil/repository.yaml", "../other/repo", false},
		{"escape in the middle", "tenant-a/evil/repository.yaml", "tenant-a/../tenant-b/repo", false},
		{"another tenant's folder", "tenant-a/evil/repository.yaml", "tenant-b/repo", false},
		{"reserved element", "x/snapshots/repository.yaml", "x/snapshots", false},
		{"empty", "x/repository.yaml", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &catalog.Repository{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "r"}, Spec: catalog.RepositorySpec{Path: tc.path}}
			key, err := a.Admit("demo/st", tc.file, r)
			if tc.ok {
				require.NoError(t, err)
				assert.Equal(t, "/catalog.kubestash.com/repositories/demo/r", key)
				assert.True(t, a.Canonical("demo/st", tc.file, r))
				return
			}
			require.Error(t, err)
			var se *store.SkipError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, SkipReasonPath, se.Reason, "counted under its own reason")
		})
	}
}

// TestAdmitterCanonical: a file named after the object it holds is
// canonical; a copy under another name is not.
func TestAdmitterCanonical(t *testing.T) {
	a := Admitter{Prefix: "/catalog.kubestash.com/snapshots", Kind: layout.KindSnapshot}
	s := &catalog.Snapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "s1"}}
	for _, tc := range []struct {
		file string
		want bool
	}{
		{"r/snapshots/s1.yaml", true},
		{"other/snapshots/s1.yaml", true},
		{"r/snapshots/copy-of-s1.yaml", false},
		{"not-a-catalog-file", false},
	} {
		assert.Equal(t, tc.want, a.Canonical("demo/st", tc.file, s), tc.file)
	}
}

// TestAdmitterCanonicalWithRepositories: with Repos, a Snapshot's or
// RestoreSession's file is canonical only in its Repository's folder and
// storage.
func TestAdmitterCanonicalWithRepositories(t *testing.T) {
	a := Admitter{Kind: layout.KindSnapshot, Repos: known}
	snap := &catalog.Snapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "s1"}, Spec: catalog.SnapshotSpec{Repository: "s3-repo"}}
	rs := &catalog.RestoreSession{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "s1"},
		Spec: catalog.RestoreSessionSpec{DataSource: catalog.RestoreDataSource{Repository: "s3-repo"}}}
	for _, tc := range []struct {
		name, storage, file string
		obj                 runtime.Object
		want                bool
	}{
		{"snapshot in its repository", "demo/s3-storage", "pvc-backup-demo/snapshots/s1.yaml", snap, true},
		{"snapshot copy in another folder", "demo/s3-storage", "aaa-planted/snapshots/s1.yaml", snap, false},
		{"snapshot copy in another storage", "demo/other", "pvc-backup-demo/snapshots/s1.yaml", snap, false},
		{"snapshot of an unknown repository", "demo/s3-storage", "pvc-backup-demo/snapshots/s1.yaml",
			&catalog.Snapshot{ObjectMeta: snap.ObjectMeta, Spec: catalog.SnapshotSpec{Repository: "nope"}}, false},
		{"restore session in its repository", "demo/s3-storage", "pvc-backup-demo/restoresessions/s1.yaml", rs, true},
		{"restore session elsewhere", "demo/s3-storage", "x/restoresessions/s1.yaml", rs, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind, _, _, ok := layout.Parse(tc.file)
			require.True(t, ok)
			a.Kind = kind
			assert.Equal(t, tc.want, a.Canonical(tc.storage, tc.file, tc.obj))
		})
	}
}

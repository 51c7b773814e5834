package registry_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/utils/ptr"

	addonsv1alpha1 "kubestash.dev/kubestash/pkg/apis/addons/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/catalog"
	"kubestash.dev/kubestash/pkg/apis/catalog/install"
	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/registry"
	"kubestash.dev/kubestash/pkg/registry/catalog/backupsessionrest"
	"kubestash.dev/kubestash/pkg/registry/catalog/repositoryrest"
	"kubestash.dev/kubestash/pkg/registry/catalog/restoresessionrest"
	"kubestash.dev/kubestash/pkg/registry/catalog/snapshotrest"
	"kubestash.dev/kubestash/pkg/store"
)

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	install.Install(s)
	return s
}

// staticBackends serves fixed storages.
type staticBackends map[string]backend.Backend

func (b staticBackends) Backend(id string) (backend.Backend, bool) { x, ok := b[id]; return x, ok }
func (b staticBackends) Storages() []string {
	var ids []string
	for id := range b {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// fakeNamespaces marks namespaces as terminating, and tells their
// incarnation: every namespace exists, with an empty UID, unless recreate
// or remove changed it.
type fakeNamespaces struct {
	mu           sync.Mutex
	terminating  map[string]bool
	incarnations map[string]*registry.Incarnation // nil value: removed
}

func (f *fakeNamespaces) Incarnation(_ context.Context, ns string) (registry.Incarnation, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inc, ok := f.incarnations[ns]
	if !ok {
		return registry.Incarnation{}, true, nil
	}
	if inc == nil {
		return registry.Incarnation{}, false, nil
	}
	return *inc, true, nil
}

// recreate gives ns a new incarnation, created at created.
func (f *fakeNamespaces) recreate(ns string, uid types.UID, created time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.incarnations == nil {
		f.incarnations = map[string]*registry.Incarnation{}
	}
	f.incarnations[ns] = &registry.Incarnation{UID: uid, Created: metav1.NewTime(created)}
}

func (f *fakeNamespaces) Terminating(ns string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.terminating[ns]
}

func (f *fakeNamespaces) set(ns string, t bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.terminating == nil {
		f.terminating = map[string]bool{}
	}
	f.terminating[ns] = t
}

// localCatalog is a Catalog over a new local directory served as the
// storage demo/local; its stores poll only when asked.
func localCatalog(t *testing.T) (dir string, cat *registry.Catalog, scheme *runtime.Scheme) {
	t.Helper()
	dir = t.TempDir()
	local, err := backend.NewLocal(dir)
	require.NoError(t, err)
	scheme = newScheme()
	tmpl := store.DefaultConfig()
	tmpl.PollInterval = 0
	cat = &registry.Catalog{
		Codec:     layout.NewFileCodec(scheme),
		Backends:  staticBackends{"demo/local": local},
		Discovery: layout.NewDiscovery(0),
		Template:  tmpl,
		Version:   "test",
	}
	return dir, cat, scheme
}

func nsContext(ns string) context.Context {
	ctx := genericapirequest.WithNamespace(genericapirequest.NewContext(), ns)
	return genericapirequest.WithRequestInfo(ctx, &genericapirequest.RequestInfo{APIGroup: catalog.GroupName, APIVersion: "v1alpha1"})
}

// TestCatalogREST drives the REST storages of repositories and snapshots
// over a local directory, as the HTTP handlers would.
func TestCatalogREST(t *testing.T) {
	dir, cat, scheme := localCatalog(t)
	// The storage's usagePolicy: Same.
	cat.Allowed = func(storage, namespace string) error {
		if namespace != "demo" {
			return fmt.Errorf("storage %s may not be used in %s", storage, namespace)
		}
		return nil
	}
	namespaces := &fakeNamespaces{}
	repos, _, err := repositoryrest.NewREST(scheme, cat, namespaces)
	require.NoError(t, err)
	t.Cleanup(repos.Destroy)
	snaps, snapStatus, err := snapshotrest.NewREST(scheme, cat, namespaces)
	require.NoError(t, err)
	t.Cleanup(snaps.Destroy)
	ctx := nsContext("demo")
	for _, s := range cat.Stores() {
		require.NoError(t, s.WaitReady(ctx))
	}

	assert.Equal(t, []string{"repo"}, repos.ShortNames())
	assert.Equal(t, []string{"kubestash", "appscode", "all"}, repos.Categories())
	assert.Equal(t, []string{"kubestash", "appscode"}, snaps.Categories(), "snapshots are not in all")
	assert.Equal(t, "snapshot", snaps.GetSingularName())

	_, err = repos.Create(ctx, &catalog.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "repo-1", Namespace: "demo"},
		Spec:       catalog.RepositorySpec{StorageRef: kmapi.ObjectReference{Name: "local"}, Path: "/repo-1"},
		Status:     catalog.RepositoryStatus{Phase: catalog.RepositoryReady},
	}, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(dir, "repo-1", "repository.yaml"))
	require.NoError(t, err)
	assert.NotContains(t, string(data), "phase: Ready", "create ignores status")
	data, err = os.ReadFile(filepath.Join(dir, "metadata.yaml"))
	require.NoError(t, err, "metadata.yaml is written with the first repository")
	assert.Contains(t, string(data), "path: /repo-1")

	obj, err := snaps.Create(ctx, &catalog.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "snap-1", Namespace: "demo"},
		Spec:       catalog.SnapshotSpec{Repository: "repo-1", Session: "daily"},
	}, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
	require.NoError(t, err)
	assert.EqualValues(t, 1, obj.(*catalog.Snapshot).Generation)
	snapFile := filepath.Join(dir, "repo-1", "snapshots", "snap-1.yaml")
	require.FileExists(t, snapFile)

	t.Run("a snapshot of an unknown repository is a 422 naming spec.repository", func(t *testing.T) {
		_, err := snaps.Create(ctx, &catalog.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: "demo"},
			Spec:       catalog.SnapshotSpec{Repository: "nope"},
		}, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
		require.Error(t, err)
		assert.True(t, apierrors.IsInvalid(err), "%v", err)
		assert.Contains(t, err.Error(), "spec.repository")
	})

	t.Run("a storage is used only where its usagePolicy allows", func(t *testing.T) {
		_, err := repos.Create(nsContext("other"), &catalog.Repository{
			ObjectMeta: metav1.ObjectMeta{Name: "intruder", Namespace: "other"},
			Spec:       catalog.RepositorySpec{StorageRef: kmapi.ObjectReference{Name: "local", Namespace: "demo"}, Path: "/intruder"},
		}, rest.ValidateAllObjectFunc, &metav1.CreateOptions{})
		require.Error(t, err)
		assert.True(t, apierrors.IsBadRequest(err), "%v", err)
		assert.NoDirExists(t, filepath.Join(dir, "intruder"))
		data, err := os.ReadFile(filepath.Join(dir, "metadata.yaml"))
		require.NoError(t, err)
		assert.NotContains(t, string(data), "intruder", "nothing is written for a refused namespace")
	})

	t.Run("status is updated apart from spec", func(t *testing.T) {
		cur, err := snaps.Get(ctx, "snap-1", &metav1.GetOptions{})
		require.NoError(t, err)
		upd := cur.(*catalog.Snapshot).DeepCopy()
		upd.Status.Phase = catalog.SnapshotSucceeded
		upd.Spec.Session = "changed-through-status"
		out, _, err := snapStatus.Update(ctx, "snap-1", rest.DefaultUpdatedObjectInfo(upd), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
		require.NoError(t, err)
		got := out.(*catalog.Snapshot)
		assert.Equal(t, catalog.SnapshotSucceeded, got.Status.Phase)
		assert.Equal(t, "daily", got.Spec.Session)

		upd = got.DeepCopy()
		upd.Status.Phase = "Exploded"
		_, _, err = snapStatus.Update(ctx, "snap-1", rest.DefaultUpdatedObjectInfo(upd), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "status.phase")

		upd = got.DeepCopy()
		upd.Spec.Session = "weekly"
		upd.Status.Phase = catalog.SnapshotFailed
		out, _, err = snaps.Update(ctx, "snap-1", rest.DefaultUpdatedObjectInfo(upd), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
		require.NoError(t, err)
		got = out.(*catalog.Snapshot)
		assert.Equal(t, "weekly", got.Spec.Session)
		assert.Equal(t, catalog.SnapshotSucceeded, got.Status.Phase, "an update of the resource keeps status")
		assert.EqualValues(t, 2, got.Generation)
	})

	t.Run("immutable fields", func(t *testing.T) {
		cur, err := repos.Get(ctx, "repo-1", &metav1.GetOptions{})
		require.NoError(t, err)
		upd := cur.(*catalog.Repository).DeepCopy()
		upd.Spec.Path = "/elsewhere"
		_, _, err = repos.Update(ctx, "repo-1", rest.DefaultUpdatedObjectInfo(upd), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
		require.Error(t, err)
		assert.True(t, apierrors.IsInvalid(err), "%v", err)
		assert.Contains(t, err.Error(), "spec.path")
	})

	t.Run("table", func(t *testing.T) {
		list, err := snaps.List(ctx, &metainternalversion.ListOptions{})
		require.NoError(t, err)
		table, err := snaps.ConvertToTable(ctx, list, &metav1.TableOptions{})
		require.NoError(t, err)
		var names []string
		for _, c := range table.ColumnDefinitions {
			names = append(names, strings.ToUpper(c.Name))
		}
		assert.Equal(t, []string{"NAME", "REPOSITORY", "SESSION", "SNAPSHOT-TIME", "DELETION-POLICY", "PHASE", "AGE"}, names)
		require.Len(t, table.Rows, 1)
		assert.Equal(t, []any{"snap-1", "repo-1", "weekly", nil, "Delete", "Succeeded"}, table.Rows[0].Cells[:6])
	})

	t.Run("field selectors", func(t *testing.T) {
		for sel, want := range map[string]int{"spec.repository=repo-1": 1, "spec.repository=other": 0, "status.phase=Succeeded": 1, "spec.session=daily": 0} {
			fs, err := fields.ParseSelector(sel)
			require.NoError(t, err)
			list, err := snaps.List(ctx, &metainternalversion.ListOptions{FieldSelector: fs, LabelSelector: labels.Everything()})
			require.NoError(t, err)
			assert.Len(t, list.(*catalog.SnapshotList).Items, want, sel)
		}
	})

	t.Run("a terminating namespace keeps its backups", func(t *testing.T) {
		namespaces.set("demo", true)
		defer namespaces.set("demo", false)

		list, err := snaps.List(ctx, &metainternalversion.ListOptions{})
		require.NoError(t, err)
		assert.Empty(t, list.(*catalog.SnapshotList).Items)
		list, err = snaps.List(nsContext(""), &metainternalversion.ListOptions{})
		require.NoError(t, err)
		assert.Empty(t, list.(*catalog.SnapshotList).Items, "not in lists of all namespaces either")

		_, err = snaps.DeleteCollection(ctx, rest.ValidateAllObjectFunc, &metav1.DeleteOptions{}, &metainternalversion.ListOptions{})
		require.NoError(t, err)
		_, deleted, err := snaps.Delete(ctx, "snap-1", rest.ValidateAllObjectFunc, &metav1.DeleteOptions{})
		require.NoError(t, err)
		assert.True(t, deleted)
		assert.FileExists(t, snapFile, "the namespace controller's delete leaves the backend alone")
		_, err = snaps.Get(ctx, "snap-1", &metav1.GetOptions{})
		assert.NoError(t, err)
	})

	t.Run("delete removes the file", func(t *testing.T) {
		_, _, err := snaps.Delete(ctx, "snap-1", rest.ValidateAllObjectFunc, &metav1.DeleteOptions{})
		require.NoError(t, err)
		assert.NoFileExists(t, snapFile)
	})
}

// TestValidation checks the strategies' validation of new objects and
// updates.
func TestValidation(t *testing.T) {
	scheme := newScheme()
	ctx := nsContext("demo")
	meta := metav1.ObjectMeta{Name: "x", Namespace: "demo", ResourceVersion: "1"}
	repo := func(mut func(*catalog.Repository)) *catalog.Repository {
		r := &catalog.Repository{ObjectMeta: meta, Spec: catalog.RepositorySpec{StorageRef: kmapi.ObjectReference{Name: "s"}, Path: "/p"}}
		mut(r)
		return r
	}
	snap := func(mut func(*catalog.Snapshot)) *catalog.Snapshot {
		s := &catalog.Snapshot{ObjectMeta: meta, Spec: catalog.SnapshotSpec{Repository: "r", SnapshotID: "01H"}}
		mut(s)
		return s
	}
	bsess := func(mut func(*catalog.BackupSession)) *catalog.BackupSession {
		b := &catalog.BackupSession{ObjectMeta: meta, Spec: catalog.BackupSessionSpec{Invoker: corev1.TypedLocalObjectReference{
			APIGroup: ptr.To("core.kubestash.com"), Kind: "BackupConfiguration", Name: "bc"}, Session: "daily"}}
		mut(b)
		return b
	}
	rsess := func(mut func(*catalog.RestoreSession)) *catalog.RestoreSession {
		r := &catalog.RestoreSession{ObjectMeta: meta, Spec: catalog.RestoreSessionSpec{DataSource: catalog.RestoreDataSource{Repository: "r", Snapshot: "latest"}}}
		mut(r)
		return r
	}
	type strategy interface {
		rest.RESTCreateStrategy
		rest.RESTUpdateStrategy
	}
	strategies := map[string]strategy{
		"Repository":     registry.NewStrategy(scheme, repositoryrest.Kind),
		"Snapshot":       registry.NewStrategy(scheme, snapshotrest.Kind),
		"BackupSession":  registry.NewStrategy(scheme, backupsessionrest.Kind),
		"RestoreSession": registry.NewStrategy(scheme, restoresessionrest.Kind),
	}
	cases := []struct {
		name string
		kind string
		obj  runtime.Object
		old  runtime.Object // an update when set
		want []string       // the fields of the errors; none means valid
	}{
		{name: "valid repository", kind: "Repository", obj: repo(func(*catalog.Repository) {})},
		{name: "invalid name", kind: "Repository", obj: repo(func(r *catalog.Repository) { r.Name = "Bad_Name" }), want: []string{"metadata.name"}},
		{name: "owner references", kind: "Repository", obj: repo(func(r *catalog.Repository) {
			r.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "o", UID: "u"}}
		}), want: []string{"metadata.ownerReferences"}},
		{name: "repository without storage and path", kind: "Repository", obj: repo(func(r *catalog.Repository) { r.Spec = catalog.RepositorySpec{} }),
			want: []string{"spec.storageRef.name", "spec.path"}},
		{name: "repository path into restic data", kind: "Repository", obj: repo(func(r *catalog.Repository) { r.Spec.Path = "/a/repository/b" }), want: []string{"spec.path"}},
		{name: "repository deletionPolicy", kind: "Repository", obj: repo(func(r *catalog.Repository) { r.Spec.DeletionPolicy = "Keep" }), want: []string{"spec.deletionPolicy"}},
		{name: "repository path is immutable", kind: "Repository", obj: repo(func(r *catalog.Repository) { r.Spec.Path = "/q" }),
			old: repo(func(*catalog.Repository) {}), want: []string{"spec.path"}},
		{name: "repository storageRef is immutable", kind: "Repository", obj: repo(func(r *catalog.Repository) { r.Spec.StorageRef.Name = "t" }),
			old: repo(func(*catalog.Repository) {}), want: []string{"spec.storageRef"}},
		{name: "repository paused is not supported yet", kind: "Repository", obj: repo(func(r *catalog.Repository) { r.Spec.Paused = true }),
			old: repo(func(*catalog.Repository) {}), want: []string{"spec.paused"}},

		{name: "valid snapshot", kind: "Snapshot", obj: snap(func(*catalog.Snapshot) {})},
		{name: "snapshot without repository", kind: "Snapshot", obj: snap(func(s *catalog.Snapshot) { s.Spec.Repository = "" }), want: []string{"spec.repository"}},
		{name: "snapshot paused is not supported yet", kind: "Snapshot", obj: snap(func(s *catalog.Snapshot) { s.Spec.Paused = true }), want: []string{"spec.paused"}},
		{name: "snapshot type", kind: "Snapshot", obj: snap(func(s *catalog.Snapshot) { s.Spec.Type = "Partial" }), want: []string{"spec.type"}},
		{name: "snapshot repository is immutable", kind: "Snapshot", obj: snap(func(s *catalog.Snapshot) { s.Spec.Repository = "q" }),
			old: snap(func(*catalog.Snapshot) {}), want: []string{"spec.repository"}},
		{name: "snapshot ID is immutable once set", kind: "Snapshot", obj: snap(func(s *catalog.Snapshot) { s.Spec.SnapshotID = "02X" }),
			old: snap(func(*catalog.Snapshot) {}), want: []string{"spec.snapshotID"}},
		{name: "snapshot ID may be set later", kind: "Snapshot", obj: snap(func(*catalog.Snapshot) {}),
			old: snap(func(s *catalog.Snapshot) { s.Spec.SnapshotID = "" })},
		{name: "snapshot backupSession is immutable", kind: "Snapshot", obj: snap(func(s *catalog.Snapshot) { s.Spec.BackupSession = "b2" }),
			old: snap(func(*catalog.Snapshot) {}), want: []string{"spec.backupSession"}},

		{name: "valid backupsession", kind: "BackupSession", obj: bsess(func(*catalog.BackupSession) {})},
		{name: "backupsession without invoker and session", kind: "BackupSession", obj: bsess(func(b *catalog.BackupSession) { b.Spec = catalog.BackupSessionSpec{} }),
			want: []string{"spec.invoker.name", "spec.session"}},
		{name: "backupsession invoker kind", kind: "BackupSession", obj: bsess(func(b *catalog.BackupSession) { b.Spec.Invoker.Kind = "Deployment" }), want: []string{"spec.invoker.kind"}},
		{name: "backupsession spec is immutable", kind: "BackupSession", obj: bsess(func(b *catalog.BackupSession) { b.Spec.RetryLeft = 3 }),
			old: bsess(func(*catalog.BackupSession) {}), want: []string{"spec"}},

		{name: "valid restoresession", kind: "RestoreSession", obj: rsess(func(*catalog.RestoreSession) {})},
		{name: "restoresession without snapshot", kind: "RestoreSession", obj: rsess(func(r *catalog.RestoreSession) { r.Spec.DataSource.Snapshot = "" }),
			want: []string{"spec.dataSource.snapshot"}},
		{name: "restoresession pitr without time", kind: "RestoreSession", obj: rsess(func(r *catalog.RestoreSession) {
			r.Spec.DataSource.Snapshot = ""
			r.Spec.DataSource.PITR = &catalog.PITR{}
		}), want: []string{"spec.dataSource.pitr.targetTime"}},
		{name: "restoresession pitr", kind: "RestoreSession", obj: rsess(func(r *catalog.RestoreSession) {
			r.Spec.DataSource.Snapshot = ""
			r.Spec.DataSource.PITR = &catalog.PITR{TargetTime: &metav1.Time{Time: time.Now()}}
		})},
		{name: "restoresession without repository", kind: "RestoreSession", obj: rsess(func(r *catalog.RestoreSession) { r.Spec.DataSource.Repository = "" }),
			want: []string{"spec.dataSource.repository"}},
		{name: "restoresession addonVolumes with a claim of its namespace", kind: "RestoreSession", obj: rsess(func(r *catalog.RestoreSession) {
			r.Spec.Addon = addonWithVolume(storagev1alpha1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "scratch"}})
		})},
		{name: "restoresession addonVolumes emptyDir", kind: "RestoreSession", obj: rsess(func(r *catalog.RestoreSession) {
			r.Spec.Addon = addonWithVolume(storagev1alpha1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}})
		})},
		{name: "restoresession addonVolumes hostPath", kind: "RestoreSession", obj: rsess(func(r *catalog.RestoreSession) {
			r.Spec.Addon = addonWithVolume(storagev1alpha1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc"}})
		}), want: []string{"spec.addon.tasks[0].addonVolumes[0].source.hostPath"}},
		{name: "restoresession addonVolumes nfs", kind: "RestoreSession", obj: rsess(func(r *catalog.RestoreSession) {
			r.Spec.Addon = addonWithVolume(storagev1alpha1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs", Path: "/"}})
		}), want: []string{"spec.addon.tasks[0].addonVolumes[0].source.nfs"}},
		{name: "restoresession addonVolumes hostPath on update", kind: "RestoreSession", obj: rsess(func(r *catalog.RestoreSession) {
			r.Spec.Addon = addonWithVolume(storagev1alpha1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc"}})
		}), old: rsess(func(*catalog.RestoreSession) {}), want: []string{"spec.addon.tasks[0].addonVolumes[0].source.hostPath"}},
		{name: "restoresession repository is immutable", kind: "RestoreSession", obj: rsess(func(r *catalog.RestoreSession) { r.Spec.DataSource.Repository = "q" }),
			old: rsess(func(*catalog.RestoreSession) {}), want: []string{"spec.dataSource.repository"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := strategies[c.kind]
			var errs field.ErrorList
			if c.old == nil {
				s.PrepareForCreate(ctx, c.obj)
				errs = s.Validate(ctx, c.obj)
			} else {
				s.PrepareForCreate(ctx, c.old)
				s.PrepareForUpdate(ctx, c.obj, c.old)
				errs = s.ValidateUpdate(ctx, c.obj, c.old)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
			}
			assert.ElementsMatch(t, c.want, got, "%v", errs)
		})
	}
}

// addonWithVolume is a restore addon whose task replaces the source of its
// kubestash-tmp-volume.
func addonWithVolume(src storagev1alpha1.VolumeSource) *corev1alpha1.AddonInfo {
	return &corev1alpha1.AddonInfo{Name: "pvc-addon", Tasks: []corev1alpha1.TaskReference{{Name: "logical-backup-restore",
		AddonVolumes: []corev1alpha1.AddonVolumeInfo{{Name: "kubestash-tmp-volume", Source: &addonsv1alpha1.VolumeSource{VolumeSource: src}}}}}}
}

// TestRestoreSessionDefaults checks that the data source's namespace is the
// RestoreSession's own by default.
func TestRestoreSessionDefaults(t *testing.T) {
	s := registry.NewStrategy(newScheme(), restoresessionrest.Kind)
	r := &catalog.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "demo"}}
	s.PrepareForCreate(nsContext("demo"), r)
	assert.Equal(t, "demo", r.Spec.DataSource.Namespace)
}

// TestGetAttrs checks that every kind exposes exactly the field selectors
// v1alpha1.SelectableFields lists.
func TestGetAttrs(t *testing.T) {
	cases := []struct {
		kind     string
		getAttrs storage.AttrFunc
		obj      runtime.Object
	}{
		{"Repository", repositoryrest.GetAttrs, &catalog.Repository{}},
		{"Snapshot", snapshotrest.GetAttrs, &catalog.Snapshot{}},
		{"BackupSession", backupsessionrest.GetAttrs, &catalog.BackupSession{}},
		{"RestoreSession", restoresessionrest.GetAttrs, &catalog.RestoreSession{}},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			_, fs, err := c.getAttrs(c.obj)
			require.NoError(t, err)
			var got []string
			for k := range fs {
				got = append(got, k)
			}
			assert.ElementsMatch(t, catalogv1alpha1.SelectableFields(c.kind), got)
		})
	}
}

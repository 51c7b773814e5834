// Package catalogstore tests the catalog store on the real catalog kinds
// over a real MinIO: faults, several stores over one bucket, restarts, and
// the benchmarks of the index.
package catalogstore

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/storage"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	"kubestash.dev/kubestash/pkg/apis/catalog/install"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/placement"
	"kubestash.dev/kubestash/pkg/store"
	"kubestash.dev/kubestash/test/framework"
)

var env *framework.ControlPlane

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Everything here needs MinIO.
		os.Exit(0)
	}
	framework.RunMain(m, framework.Options{MinIOOnly: true}, &env)
}

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	install.Install(s)
	return s
}()

const (
	repoPrefix = "/catalog.kubestash.com/repositories"
	snapPrefix = "/catalog.kubestash.com/snapshots"
	storageID  = "demo/s3-storage"
)

var prefixSeq atomic.Int64

// newBucketPrefix gives each test its own BackupStorage prefix in the bucket.
func newBucketPrefix() string {
	return fmt.Sprintf("test-%d-%d", time.Now().UnixNano(), prefixSeq.Add(1))
}

func newS3(t testing.TB, prefix string) backend.Backend {
	t.Helper()
	b, err := backend.NewS3(backend.S3Config{
		Endpoint: env.MinIO.Endpoint, Bucket: env.MinIO.Bucket, Prefix: prefix, Region: "us-east-1",
		AccessKeyID: env.MinIO.AccessKey, SecretAccessKey: env.MinIO.SecretKey,
	})
	require.NoError(t, err)
	return b
}

// backends is a fixed set of storages.
type backends map[string]backend.Backend

func (b backends) Backend(id string) (backend.Backend, bool) { v, ok := b[id]; return v, ok }
func (b backends) Storages() []string {
	var ids []string
	for id := range b {
		ids = append(ids, id)
	}
	return ids
}

// repoLookup resolves Repositories from the repositories store's index.
type repoLookup struct{ s *store.Store }

func (r repoLookup) Repository(ns, name string) (string, string, bool) {
	var repo catalog.Repository
	if err := r.s.Get(context.Background(), repoPrefix+"/"+ns+"/"+name, storage.GetOptions{}, &repo); err != nil {
		return "", "", false
	}
	sns := repo.Spec.StorageRef.Namespace
	if sns == "" {
		sns = repo.Namespace
	}
	return placement.StorageID(sns, repo.Spec.StorageRef.Name), repo.Spec.Path, true
}

// stores is one replica of the catalog server's storage for two kinds.
type stores struct {
	repos, snaps *store.Store
}

func newStores(t testing.TB, b backend.Backend, poll time.Duration) *stores {
	t.Helper()
	bs := backends{storageID: b}
	codec := layout.NewFileCodec(scheme)
	// No discovery cache: tests poll by hand right after another replica
	// wrote, where the server's cache (shorter than a poll) would still
	// hold the old list.
	disc := layout.NewDiscovery(0)
	mk := func(prefix string, kind layout.Kind, newObj, newList func() runtime.Object, loc store.Locator, prepare store.PrepareFunc) *store.Store {
		cfg := store.DefaultConfig()
		cfg.Codec, cfg.NewFunc, cfg.NewListFunc, cfg.ResourcePrefix = codec, newObj, newList, prefix
		cfg.Backends, cfg.Locator, cfg.Prepare = bs, loc, prepare
		cfg.Scanner = layout.Scanner{Kind: kind, Discovery: disc}
		cfg.Admitter = placement.Admitter{Prefix: prefix, Kind: kind}
		cfg.PollInterval = poll
		s, err := store.New(cfg)
		require.NoError(t, err)
		return s
	}
	st := &stores{}
	st.repos = mk(repoPrefix, layout.KindRepository, func() runtime.Object { return &catalog.Repository{} },
		func() runtime.Object { return &catalog.RepositoryList{} }, placement.RepositoryLocator{},
		// As the catalog server: a new Repository is listed in
		// metadata.yaml before its file is written.
		func(ctx context.Context, loc store.Location, obj runtime.Object) error {
			r := obj.(*catalog.Repository)
			b, _ := bs.Backend(loc.Storage)
			if _, err := layout.EnsureMeta(ctx, b, "test"); err != nil {
				return err
			}
			if err := layout.AddRepository(ctx, b, layout.RepositoryInfo{Name: r.Name, Namespace: r.Namespace, Path: r.Spec.Path}); err != nil {
				return err
			}
			disc.Invalidate(loc.Storage)
			return nil
		})
	st.snaps = mk(snapPrefix, layout.KindSnapshot, func() runtime.Object { return &catalog.Snapshot{} },
		func() runtime.Object { return &catalog.SnapshotList{} }, placement.SnapshotLocator{Repos: repoLookup{st.repos}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		st.repos.Stop()
		st.snaps.Stop()
	})
	st.repos.Start(ctx)
	st.snaps.Start(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	require.NoError(t, st.repos.WaitReady(wctx))
	require.NoError(t, st.snaps.WaitReady(wctx))
	return st
}

func repository(name, path string) *catalog.Repository {
	return &catalog.Repository{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: name},
		Spec: catalog.RepositorySpec{
			AppRef:         kmapi.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "target-pvc", Namespace: "demo"},
			StorageRef:     kmapi.ObjectReference{Namespace: "demo", Name: "s3-storage"},
			Path:           path,
			DeletionPolicy: "Delete",
		},
	}
}

func snapshot(name, repo string) *catalog.Snapshot {
	return &catalog.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: name, Labels: map[string]string{"kubestash.com/repo-name": repo}},
		Spec: catalog.SnapshotSpec{
			SnapshotID: "01HK6Z2Q7V3N4K5P6R7S8T9V0W", Type: "FullBackup", Repository: repo, Session: "frequent-backup",
			BackupSession: "pvc-backup-frequent-backup-1704281100", Version: "v1", DeletionPolicy: "Delete",
			AppRef: kmapi.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "target-pvc", Namespace: "demo"},
		},
		Status: catalog.SnapshotStatus{Phase: "Pending", TotalComponents: 1},
	}
}

func (st *stores) createRepo(t testing.TB, r *catalog.Repository) *catalog.Repository {
	t.Helper()
	out := &catalog.Repository{}
	require.NoError(t, st.repos.Create(context.Background(), repoPrefix+"/"+r.Namespace+"/"+r.Name, r, out, 0))
	return out
}

func (st *stores) createSnap(t testing.TB, s *catalog.Snapshot) *catalog.Snapshot {
	t.Helper()
	out := &catalog.Snapshot{}
	require.NoError(t, st.snaps.Create(context.Background(), snapKey(s.Name), s, out, 0))
	return out
}

func snapKey(name string) string { return snapPrefix + "/demo/" + name }

// setPhase is a GuaranteedUpdate as the registry does it for a client that
// read resourceVersion rv: a different current version is a conflict.
func setPhase(ctx context.Context, s *store.Store, name, rv, phase string) (*catalog.Snapshot, error) {
	out := &catalog.Snapshot{}
	err := s.GuaranteedUpdate(ctx, snapKey(name), out, false, nil, func(in runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
		cur := in.(*catalog.Snapshot).DeepCopy()
		if rv != "" && cur.ResourceVersion != rv {
			return nil, nil, storage.NewResourceVersionConflictsError(snapKey(name), 0)
		}
		cur.Status.Phase = catalog.SnapshotPhase(phase)
		return cur, nil, nil
	}, nil)
	return out, err
}

package backupstorage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/backenddirs"
	"kubestash.dev/kubestash/pkg/controller/lookup/lookuptest"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned/fake"
	"kubestash.dev/kubestash/pkg/storagebackend"
)

func localStorage(dir string, policy storagev1alpha1.DeletionPolicy) *storagev1alpha1.BackupStorage {
	return &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "local"},
		Spec: storagev1alpha1.BackupStorageSpec{DeletionPolicy: policy, Storage: storagev1alpha1.Backend{
			Provider: storagev1alpha1.ProviderLocal,
			Local: &storagev1alpha1.LocalSpec{MountPath: "/safe/data",
				VolumeSource: storagev1alpha1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}}},
		}},
	}
}

// TestWipeOutFinalizer: the finalizer is on a BackupStorage exactly while
// its deletionPolicy is WipeOut.
func TestWipeOutFinalizer(t *testing.T) {
	for _, c := range []struct {
		name   string
		policy storagev1alpha1.DeletionPolicy
		has    bool
		want   bool
		// wantWrites are the writes of each of the two reconciles: the
		// finalizer's change is one on its own (its update brings
		// another reconcile), then the status; an unchanged state
		// writes nothing.
		wantWrites [2][]string
	}{
		{name: "WipeOut gets it", policy: storagev1alpha1.DeletionPolicyWipeOut, want: true,
			wantWrites: [2][]string{{"update backupstorages demo/local"}, {"update backupstorages/status demo/local"}}},
		{name: "WipeOut keeps it", policy: storagev1alpha1.DeletionPolicyWipeOut, has: true, want: true,
			wantWrites: [2][]string{{"update backupstorages/status demo/local"}, nil}},
		{name: "Delete has none", policy: storagev1alpha1.DeletionPolicyDelete,
			wantWrites: [2][]string{{"update backupstorages/status demo/local"}, nil}},
		{name: "Delete loses it", policy: storagev1alpha1.DeletionPolicyDelete, has: true,
			wantWrites: [2][]string{{"update backupstorages demo/local"}, {"update backupstorages/status demo/local"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			bs := localStorage(dir, c.policy)
			if c.has {
				bs.Finalizers = []string{"other", catalogv1alpha1.FinalizerWipeOut}
			}
			kube, ks := kubefake.NewSimpleClientset(), fake.NewSimpleClientset(bs)
			informed := lookuptest.NewInformed(t, kube, ks)
			r := &Reconciler{Kube: kube, Client: ks, Reads: informed.Reads, Build: storagebackend.Builder{LocalDirs: backenddirs.Policy{Allowed: []string{dir}}}.Build}
			for i, want := range c.wantWrites {
				writes, err := informed.Reconcile(t, func() error { return r.Reconcile(ctx, "demo", "local") })
				require.NoError(t, err)
				assert.Equal(t, want, writes, "reconcile %d", i+1)
			}
			got, err := ks.StorageV1alpha1().BackupStorages("demo").Get(ctx, "local", metav1.GetOptions{})
			require.NoError(t, err)
			assert.Equal(t, c.want, slices.Contains(got.Finalizers, catalogv1alpha1.FinalizerWipeOut), "finalizers %v", got.Finalizers)
			if c.has {
				assert.Contains(t, got.Finalizers, "other", "others' finalizers stay")
			}
		})
	}
}

// TestWipeOutOnDelete: a BackupStorage being deleted with the finalizer
// loses its data only on an explicit delete with deletionPolicy WipeOut,
// never when its namespace is being deleted; the finalizer goes either way.
func TestWipeOutOnDelete(t *testing.T) {
	for _, c := range []struct {
		name        string
		policy      storagev1alpha1.DeletionPolicy
		nsDeleting  bool
		wantRemoved bool
	}{
		{name: "explicit delete, WipeOut", policy: storagev1alpha1.DeletionPolicyWipeOut, wantRemoved: true},
		{name: "namespace deleted, WipeOut", policy: storagev1alpha1.DeletionPolicyWipeOut, nsDeleting: true},
		{name: "explicit delete, policy changed to Delete since", policy: storagev1alpha1.DeletionPolicyDelete},
	} {
		// Whatever happens to the data, the one write is the finalizer's
		// removal: no grant, no status for a storage being deleted.
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			for _, f := range []string{"metadata.yaml", "r/repository.yaml", "r/snapshots/s.yaml", "r/repository/v1/s/dump/config", "keep.txt"} {
				require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755))
				require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("apiVersion: x\n"), 0o644))
			}
			bs := localStorage(dir, c.policy)
			bs.Finalizers = []string{catalogv1alpha1.FinalizerWipeOut}
			bs.DeletionTimestamp = &metav1.Time{}
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}
			if c.nsDeleting {
				ns.DeletionTimestamp = &metav1.Time{}
				ns.Finalizers = []string{"kubernetes"}
				ns.Status.Phase = corev1.NamespaceTerminating
			}
			kube, ks := kubefake.NewSimpleClientset(ns), fake.NewSimpleClientset(bs)
			informed := lookuptest.NewInformed(t, kube, ks)
			r := &Reconciler{Kube: kube, Client: ks, Reads: informed.Reads, Build: storagebackend.Builder{LocalDirs: backenddirs.Policy{Allowed: []string{dir}}}.Build}
			require.NoError(t, r.Reconcile(ctx, "demo", "local"))
			assert.Equal(t, []string{"update backupstorages demo/local"}, informed.Writes())

			got, err := ks.StorageV1alpha1().BackupStorages("demo").Get(ctx, "local", metav1.GetOptions{})
			require.NoError(t, err)
			assert.NotContains(t, got.Finalizers, catalogv1alpha1.FinalizerWipeOut)
			for _, f := range []string{"metadata.yaml", "r/repository.yaml", "r/snapshots/s.yaml", "r/repository/v1/s/dump/config"} {
				_, err := os.Stat(filepath.Join(dir, f))
				assert.Equal(t, c.wantRemoved, os.IsNotExist(err), "%s removed", f)
			}
			_, err = os.Stat(filepath.Join(dir, "keep.txt"))
			assert.NoError(t, err, "a file this project did not write stays")
		})
	}
}

func TestInitMessage(t *testing.T) {
	s3 := &storagev1alpha1.BackupStorage{Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.Backend{
		Provider: storagev1alpha1.ProviderS3, S3: &storagev1alpha1.S3Spec{Bucket: "new-bucket"}}}}
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{name: "missing bucket", err: &backend.Error{Op: "create bucket", Key: "new-bucket", Kind: backend.ErrNoSuchBucket, Err: errors.New("access denied: Access Denied.")},
			want: `spec.storage.s3.bucket: bucket "new-bucket" does not exist and could not be created (access denied: Access Denied.); create it, or allow the storage's credentials s3:CreateBucket`},
		{name: "anything else", err: &backend.Error{Op: "get", Key: "metadata.yaml", Kind: backend.ErrUnavailable, Err: errors.New("connection refused")},
			want: "get metadata.yaml: backend unavailable: connection refused"},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, initMessage(s3, c.err))
		})
	}
}

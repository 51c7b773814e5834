package wipeout

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/controller/lookup/lookuptest"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned/fake"
)

// TestRepositoryWipeOut: a Repository being deleted with the WipeOut
// finalizer loses its data (all but repository.yaml, which the catalog
// server removes with the finalizer) and then the finalizer; never while
// its namespace is being deleted, and not when its policy is Delete by now.
func TestRepositoryWipeOut(t *testing.T) {
	data := []string{"r/snapshots/s.yaml", "r/backupsessions/b.yaml", "r/restoresessions/x.yaml", "r/forget/s0.yaml", "r/repository/v1/daily/dump/config"}
	for _, c := range []struct {
		name          string
		policy        catalogv1alpha1.DeletionPolicy
		nsDeleting    bool
		wantWiped     bool
		wantFinalizer bool
		wantWrites    []string
	}{
		{name: "explicit delete, WipeOut", policy: catalogv1alpha1.DeletionPolicyWipeOut, wantWiped: true, wantWrites: []string{"update repositories demo/r"}},
		{name: "namespace being deleted", policy: catalogv1alpha1.DeletionPolicyWipeOut, nsDeleting: true, wantFinalizer: true},
		{name: "policy changed to Delete", policy: catalogv1alpha1.DeletionPolicyDelete, wantWrites: []string{"update repositories demo/r"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			for _, f := range append([]string{"r/repository.yaml"}, data...) {
				require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755))
				require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644))
			}
			b, err := backend.NewLocal(dir)
			require.NoError(t, err)
			repo := &catalogv1alpha1.Repository{
				ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "r", Finalizers: []string{catalogv1alpha1.FinalizerWipeOut}, DeletionTimestamp: &metav1.Time{}},
				Spec:       catalogv1alpha1.RepositorySpec{StorageRef: kmapi.ObjectReference{Name: "local"}, Path: "/r", DeletionPolicy: c.policy},
			}
			bs := &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "local"}}
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}
			if c.nsDeleting {
				ns.DeletionTimestamp, ns.Finalizers, ns.Status.Phase = &metav1.Time{}, []string{"kubernetes"}, corev1.NamespaceTerminating
			}
			kube, ks := kubefake.NewSimpleClientset(ns), fake.NewSimpleClientset(repo, bs)
			informed := lookuptest.NewInformed(t, kube, ks)
			r := &RepositoryReconciler{Kube: kube, Client: ks, Reads: informed.Reads,
				OpenBackend: func(context.Context, *storagev1alpha1.BackupStorage) (backend.Backend, error) { return b, nil }}
			require.NoError(t, r.Reconcile(ctx, "demo", "r"))
			// The data goes straight from the backend; the one write is
			// the finalizer's removal.
			assert.Equal(t, c.wantWrites, informed.Writes())

			for _, f := range data {
				_, err := os.Stat(filepath.Join(dir, f))
				assert.Equal(t, c.wantWiped, os.IsNotExist(err), "%s removed", f)
			}
			_, err = os.Stat(filepath.Join(dir, "r/repository.yaml"))
			assert.NoError(t, err, "repository.yaml goes with the finalizer, through the catalog server")
			got, err := ks.CatalogV1alpha1().Repositories("demo").Get(ctx, "r", metav1.GetOptions{})
			require.NoError(t, err)
			assert.Equal(t, c.wantFinalizer, len(got.Finalizers) == 1, "finalizers %v", got.Finalizers)
		})
	}
}

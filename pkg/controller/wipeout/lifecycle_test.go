package wipeout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/controller/lookup/lookuptest"
	"kubestash.dev/kubestash/pkg/controller/loop"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned/fake"
	"kubestash.dev/kubestash/pkg/layout"
)

// TestWipeOutLifecycle follows the forget marks of Repository demo/s3-repo
// through the reconciles the controller makes of it, with the caches
// caught up between them as the controller's are, and checks the writes
// each one makes: a reconcile of an unchanged state writes nothing.
func TestWipeOutLifecycle(t *testing.T) {
	ctx := context.Background()
	r, b, informed := newReconciler(t)
	kube, ks := r.Kube.(*kubefake.Clientset), r.Client.(*fake.Clientset)
	// The clean-up Jobs of the mark of snap-1 and of snap-2, named by the marks' keys.
	job1, job2 := "wipeout-s3-repo-"+marksHash(t, "snap-1"), "wipeout-s3-repo-"+marksHash(t, "snap-2")
	// end is what the Job controller does when job's pod ends; the
	// agent's forget drops the marks it forgot, on success only.
	end := func(t *testing.T, job string, how batchv1.JobConditionType, forgot ...string) {
		j, err := kube.BatchV1().Jobs("demo").Get(ctx, job, metav1.GetOptions{})
		require.NoError(t, err)
		j.Status.Conditions = []batchv1.JobCondition{{Type: how, Status: corev1.ConditionTrue}}
		_, err = kube.BatchV1().Jobs("demo").UpdateStatus(ctx, j, metav1.UpdateOptions{})
		require.NoError(t, err)
		for _, name := range forgot {
			key, err := layout.ForgetKey("/demo/pvc", name)
			require.NoError(t, err)
			require.NoError(t, layout.DropForgetEntry(ctx, b, key, name+"-uid"))
		}
	}
	for _, step := range []struct {
		name        string
		before      func(t *testing.T)
		wantWrites  []string
		wantRequeue bool
		wantJobs    []string
	}{
		{name: "no marks"},
		// A user deleted WipeOut Snapshot snap-1: the catalog server left
		// its mark. The Job's account, then the Job.
		{name: "a mark", before: func(t *testing.T) { mark(t, b, "snap-1") }, wantJobs: []string{job1}, wantWrites: []string{
			"create serviceaccounts demo/kubestash-backup", "create rolebindings demo/kubestash-backup", "create jobs demo/" + job1}},
		{name: "its Job runs", wantRequeue: true, wantJobs: []string{job1}},
		// Another while it runs waits for it: it may be taking that one too.
		{name: "another mark", before: func(t *testing.T) { mark(t, b, "snap-2") }, wantRequeue: true, wantJobs: []string{job1}},
		{name: "the Job forgot its mark", before: func(t *testing.T) { end(t, job1, batchv1.JobComplete, "snap-1") },
			wantJobs: []string{job1, job2}, wantWrites: []string{"create jobs demo/" + job2}},
		{name: "the next Job runs", wantRequeue: true, wantJobs: []string{job1, job2}},
		// A failed Job leaves its marks to the next session's retention
		// (or to a new Job once its TTL removed it): nothing is written.
		{name: "the next Job failed", before: func(t *testing.T) { end(t, job2, batchv1.JobFailed) },
			wantJobs: []string{job1, job2}},
		{name: "its mark is left", wantJobs: []string{job1, job2}},
		// A session's retention Job forgets it at last: nothing left to do.
		{name: "forgotten by retention", before: func(t *testing.T) {
			key, err := layout.ForgetKey("/demo/pvc", "snap-2")
			require.NoError(t, err)
			require.NoError(t, layout.DropForgetEntry(ctx, b, key, "snap-2-uid"))
		}, wantJobs: []string{job1, job2}},
		{name: "Repository gone", before: func(t *testing.T) {
			require.NoError(t, ks.CatalogV1alpha1().Repositories("demo").Delete(ctx, "s3-repo", metav1.DeleteOptions{}))
		}, wantJobs: []string{job1, job2}},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.before != nil {
				step.before(t)
			}
			writes, err := informed.Reconcile(t, func() error { return r.Reconcile(ctx, "demo", "s3-repo") })
			if step.wantRequeue {
				assert.ErrorIs(t, err, loop.ErrRequeue)
			} else {
				assert.NoError(t, err)
			}
			assert.Equal(t, step.wantWrites, writes)
			var names []string
			for _, j := range jobs(t, r) {
				names = append(names, j.Name)
			}
			assert.ElementsMatch(t, step.wantJobs, names)
		})
	}
}

// marksHash is the suffix of the name of the clean-up Job of the marks
// of names, as Reconcile derives it.
func marksHash(t *testing.T, names ...string) string {
	t.Helper()
	var keys []string
	for _, n := range names {
		key, err := layout.ForgetKey("/demo/pvc", n)
		require.NoError(t, err)
		keys = append(keys, key)
	}
	slices.Sort(keys)
	sum := sha256.New()
	for _, k := range keys {
		fmt.Fprintln(sum, k)
	}
	return hex.EncodeToString(sum.Sum(nil))[:10]
}

// TestRepositoryWipeOutLifecycle follows a WipeOut Repository through the
// reconciles the controller makes of it, with the catalog server's rules
// on its finalizer (catalogServer) and the caches caught up between them
// as the controller's are, and checks the writes each one makes: a
// reconcile of an unchanged state writes nothing.
func TestRepositoryWipeOutLifecycle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data := []string{"r/snapshots/s.yaml", "r/forget/s0.yaml", "r/repository/v1/daily/dump/config"}
	for _, f := range append([]string{"r/repository.yaml"}, data...) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644))
	}
	b, err := backend.NewLocal(dir)
	require.NoError(t, err)
	// Written elsewhere (by hand, by upstream): WipeOut, without the
	// finalizer the catalog server gives such a Repository.
	repo := &catalogv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "r"},
		Spec: catalogv1alpha1.RepositorySpec{StorageRef: kmapi.ObjectReference{Name: "local"}, Path: "/r", DeletionPolicy: catalogv1alpha1.DeletionPolicyWipeOut}}
	kube := kubefake.NewSimpleClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}})
	ks := fake.NewSimpleClientset(repo, &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "local"}})
	catalogServer(ks)
	informed := lookuptest.NewInformed(t, kube, ks)
	r := &RepositoryReconciler{Kube: kube, Client: ks, Reads: informed.Reads,
		OpenBackend: func(context.Context, *storagev1alpha1.BackupStorage) (backend.Backend, error) { return b, nil }}
	setPolicy := func(policy catalogv1alpha1.DeletionPolicy) func(t *testing.T) {
		return func(t *testing.T) {
			got, err := ks.CatalogV1alpha1().Repositories("demo").Get(ctx, "r", metav1.GetOptions{})
			require.NoError(t, err)
			got.Spec.DeletionPolicy = policy
			_, err = ks.CatalogV1alpha1().Repositories("demo").Update(ctx, got, metav1.UpdateOptions{})
			require.NoError(t, err)
		}
	}
	for _, step := range []struct {
		name          string
		before        func(t *testing.T)
		wantWrites    []string
		wantFinalizer bool
		wantWiped     bool
		wantGone      bool
	}{
		// Any update through the catalog server gives it the finalizer.
		{name: "WipeOut without the finalizer", wantFinalizer: true, wantWrites: []string{"update repositories demo/r"}},
		{name: "with the finalizer", wantFinalizer: true},
		{name: "policy changed to Delete", before: setPolicy(catalogv1alpha1.DeletionPolicyDelete)},
		{name: "back to WipeOut", before: setPolicy(catalogv1alpha1.DeletionPolicyWipeOut), wantFinalizer: true},
		// The delete marks it deleted; its data goes straight from the
		// backend, then the finalizer, and the Repository with it.
		{name: "deleted", before: func(t *testing.T) {
			require.NoError(t, ks.CatalogV1alpha1().Repositories("demo").Delete(ctx, "r", metav1.DeleteOptions{}))
		}, wantWiped: true, wantGone: true, wantWrites: []string{"update repositories demo/r"}},
		{name: "gone", wantWiped: true, wantGone: true},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.before != nil {
				step.before(t)
			}
			writes, err := informed.Reconcile(t, func() error { return r.Reconcile(ctx, "demo", "r") })
			require.NoError(t, err)
			assert.Equal(t, step.wantWrites, writes)
			for _, f := range data {
				_, err := os.Stat(filepath.Join(dir, f))
				assert.Equal(t, step.wantWiped, os.IsNotExist(err), "%s removed", f)
			}
			got, err := ks.CatalogV1alpha1().Repositories("demo").Get(ctx, "r", metav1.GetOptions{})
			if step.wantGone {
				assert.True(t, apierrors.IsNotFound(err), "gone: %v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, step.wantFinalizer, slices.Contains(got.Finalizers, catalogv1alpha1.FinalizerWipeOut), "finalizers %v", got.Finalizers)
		})
	}
}

// catalogServer makes ks keep Repositories as the catalog server does
// (repositoryrest's wipeOutFinalizer): an update sets the WipeOut
// finalizer exactly while deletionPolicy is WipeOut, until deletion
// begins; a delete of one with finalizers only marks it deleted; it is
// gone once its finalizers are.
func catalogServer(ks *fake.Clientset) {
	gvr := catalogv1alpha1.SchemeGroupVersion.WithResource("repositories")
	tracker := ks.Tracker()
	ks.PrependReactor("update", "repositories", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "" {
			return false, nil, nil
		}
		repo := a.(clienttesting.UpdateAction).GetObject().(*catalogv1alpha1.Repository).DeepCopy()
		if repo.DeletionTimestamp != nil {
			if len(repo.Finalizers) == 0 {
				return true, repo, tracker.Delete(gvr, repo.Namespace, repo.Name)
			}
			return true, repo, tracker.Update(gvr, repo, repo.Namespace)
		}
		repo.Finalizers = slices.DeleteFunc(repo.Finalizers, func(f string) bool { return f == catalogv1alpha1.FinalizerWipeOut })
		if repo.Spec.DeletionPolicy == catalogv1alpha1.DeletionPolicyWipeOut {
			repo.Finalizers = append(repo.Finalizers, catalogv1alpha1.FinalizerWipeOut)
		}
		return true, repo, tracker.Update(gvr, repo, repo.Namespace)
	})
	ks.PrependReactor("delete", "repositories", func(a clienttesting.Action) (bool, runtime.Object, error) {
		d := a.(clienttesting.DeleteAction)
		obj, err := tracker.Get(gvr, d.GetNamespace(), d.GetName())
		if err != nil {
			return true, nil, err
		}
		repo := obj.(*catalogv1alpha1.Repository).DeepCopy()
		if len(repo.Finalizers) == 0 {
			return false, nil, nil
		}
		if repo.DeletionTimestamp == nil {
			repo.DeletionTimestamp = ptr.To(metav1.Now())
		}
		return true, repo, tracker.Update(gvr, repo, repo.Namespace)
	})
}

package lookup

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

// TestCached: a cached object costs no request; one the cache lacks is
// asked for once; a cache error is not hidden by a live read.
func TestCached(t *testing.T) {
	ctx := context.Background()
	kube := kubefake.NewClientset(
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "cached"}},
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "new"}},
	)
	indexer := informers.NewSharedInformerFactory(kube, 0).Batch().V1().Jobs()
	require.NoError(t, indexer.Informer().GetIndexer().Add(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "cached"}}))
	live := Live(func(ns string) Client[*batchv1.Job] { return kube.BatchV1().Jobs(ns) })
	g := Cached(func(ns, name string) (*batchv1.Job, error) { return indexer.Lister().Jobs(ns).Get(name) }, live)

	gets := func() int {
		n := 0
		for _, a := range kube.Actions() {
			if a.GetVerb() == "get" {
				n++
			}
		}
		return n
	}
	j, err := g.Get(ctx, "demo", "cached")
	require.NoError(t, err)
	assert.Equal(t, "cached", j.Name)
	assert.Equal(t, 0, gets(), "from the cache")

	j, err = g.Get(ctx, "demo", "new")
	require.NoError(t, err)
	assert.Equal(t, "new", j.Name, "not cached yet: asked live")
	assert.Equal(t, 1, gets())

	_, err = g.Get(ctx, "demo", "gone")
	assert.True(t, apierrors.IsNotFound(err), "confirmed gone: %v", err)

	kube.PrependReactor("get", "jobs", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("down")
	})
	_, err = g.Get(ctx, "demo", "other")
	assert.True(t, apierrors.IsServiceUnavailable(err), "a live failure is an error, not not-found: %v", err)

	failing := Cached(func(string, string) (*batchv1.Job, error) {
		return nil, apierrors.NewInternalError(assert.AnError)
	}, live)
	_, err = failing.Get(ctx, "demo", "cached")
	assert.True(t, apierrors.IsInternalError(err))
}

// TestCachedKube: Gets of our accounts and grants come from the cache (a
// copy), others and writes go to the API.
func TestCachedKube(t *testing.T) {
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "kubestash-backup"}}
	kube := kubefake.NewClientset(sa, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "not-cached"}})
	ours := informers.NewSharedInformerFactory(kube, 0)
	c := CachedKube(kube, ours)
	require.NoError(t, ours.Core().V1().ServiceAccounts().Informer().GetIndexer().Add(sa))
	apiGets := func() int {
		n := 0
		for _, a := range kube.Actions() {
			if a.GetVerb() == "get" {
				n++
			}
		}
		return n
	}

	got, err := c.CoreV1().ServiceAccounts("demo").Get(ctx, "kubestash-backup", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, 0, apiGets(), "from the cache")
	got.Labels = map[string]string{"changed": "by the caller"}
	cached, err := ours.Core().V1().ServiceAccounts().Lister().ServiceAccounts("demo").Get("kubestash-backup")
	require.NoError(t, err)
	assert.Empty(t, cached.Labels, "the caller got a copy")

	_, err = c.RbacV1().Roles("demo").Get(ctx, "not-cached", metav1.GetOptions{})
	require.NoError(t, err, "not in the cache: from the API")
	assert.Equal(t, 1, apiGets())
	_, err = c.RbacV1().RoleBindings("demo").Get(ctx, "none", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err))
	assert.Equal(t, 2, apiGets())
	// ResourceVersion "0": a cache miss is the answer, with no request.
	_, err = c.RbacV1().Roles("demo").Get(ctx, "not-cached", metav1.GetOptions{ResourceVersion: "0"})
	assert.True(t, apierrors.IsNotFound(err), "not in the cache: not found")
	assert.Equal(t, 2, apiGets())

	_, err = c.CoreV1().ServiceAccounts("demo").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "new"}}, metav1.CreateOptions{})
	require.NoError(t, err, "writes go to the API")
	_, err = kube.CoreV1().ServiceAccounts("demo").Get(ctx, "new", metav1.GetOptions{})
	require.NoError(t, err)
}

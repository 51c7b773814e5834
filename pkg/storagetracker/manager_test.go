package storagetracker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"kubestash.dev/kubestash/pkg/apis/kmapi"
	"kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/backenddirs"
	ksfake "kubestash.dev/kubestash/pkg/generated/clientset/versioned/fake"
	"kubestash.dev/kubestash/pkg/generated/informers/externalversions"
	"kubestash.dev/kubestash/pkg/storagebackend"
)

func s3Storage(ns, name, secret string) *v1alpha1.BackupStorage {
	return &v1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.BackupStorageSpec{Storage: v1alpha1.Backend{
			Provider: v1alpha1.ProviderS3,
			S3:       &v1alpha1.S3Spec{Endpoint: "http://127.0.0.1:9", Bucket: "b", Prefix: name, SecretName: secret},
		}},
	}
}

func localStorage(ns, name, dir string) *v1alpha1.BackupStorage {
	return &v1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.BackupStorageSpec{Storage: v1alpha1.Backend{
			Provider: v1alpha1.ProviderLocal,
			Local:    &v1alpha1.LocalSpec{MountPath: dir},
		}},
	}
}

func s3Secret(ns, name, id, key string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1"},
		Data:       map[string][]byte{storagebackend.KeyAccessKeyID: []byte(id), storagebackend.KeySecretAccessKey: []byte(key)},
	}
}

func TestBuild(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	cases := []struct {
		name    string
		bs      *v1alpha1.BackupStorage
		secret  *corev1.Secret
		want    string // backend.String()
		wantErr string
	}{
		{name: "s3 with secret", bs: s3Storage("a", "s3", "creds"), secret: s3Secret("a", "creds", "AKID", "SECRETVALUE"), want: "s3:http://127.0.0.1:9/b/s3"},
		{name: "s3 without secret name", bs: s3Storage("a", "s3", ""), want: "s3:http://127.0.0.1:9/b/s3"},
		{name: "s3 secret missing", bs: s3Storage("a", "s3", "creds"), wantErr: "secret a/creds not found"},
		{name: "s3 secret without keys", bs: s3Storage("a", "s3", "creds"), secret: s3Secret("a", "creds", "", "SECRETVALUE"),
			wantErr: "needs the keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
		{name: "local mountPath", bs: localStorage("a", "l", dir), want: "local:" + dir},
		{name: "local hostPath and subPath", bs: func() *v1alpha1.BackupStorage {
			bs := localStorage("a", "l", "/in/the/pod")
			bs.Spec.Storage.Local.HostPath = &corev1.HostPathVolumeSource{Path: dir}
			bs.Spec.Storage.Local.SubPath = "sub"
			return bs
		}(), want: "local:" + filepath.Join(dir, "sub")},
		{name: "local dir missing", bs: localStorage("a", "l", filepath.Join(dir, "nope")), wantErr: "nope"},
		{name: "gcs is not supported", bs: &v1alpha1.BackupStorage{Spec: v1alpha1.BackupStorageSpec{Storage: v1alpha1.Backend{
			Provider: v1alpha1.ProviderGCS, GCS: &v1alpha1.GCSSpec{Bucket: "b"}}}}, wantErr: `provider "gcs" is not supported`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := storagebackend.Builder{LocalDirs: backenddirs.Policy{Allowed: []string{dir}}}.Build(c.bs, c.secret)
			if c.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.wantErr)
				assert.NotContains(t, err.Error(), "SECRETVALUE", "errors never quote secrets")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, b.String())
		})
	}
}

func TestAllowed(t *testing.T) {
	from := func(f v1alpha1.FromNamespaces, sel *metav1.LabelSelector) *v1alpha1.UsagePolicy {
		return &v1alpha1.UsagePolicy{AllowedNamespaces: v1alpha1.AllowedNamespaces{From: ptr.To(f), Selector: sel}}
	}
	team := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}
	cases := []struct {
		name      string
		policy    *v1alpha1.UsagePolicy
		namespace string
		allowed   bool
	}{
		{"no policy is Same: own namespace", nil, "home", true},
		{"no policy is Same: other namespace", nil, "other", false},
		{"Same: other namespace", from(v1alpha1.NamespacesFromSame, nil), "other", false},
		{"All", from(v1alpha1.NamespacesFromAll, nil), "other", true},
		{"Selector matches", from(v1alpha1.NamespacesFromSelector, team), "team-a", true},
		{"Selector does not match", from(v1alpha1.NamespacesFromSelector, team), "other", false},
		{"Selector and unknown namespace", from(v1alpha1.NamespacesFromSelector, team), "gone", false},
		{"Selector without selector", from(v1alpha1.NamespacesFromSelector, nil), "team-a", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bs := s3Storage("home", "s", "")
			bs.Spec.UsagePolicy = c.policy
			m, _, _ := newTestManager(t, []*v1alpha1.BackupStorage{bs}, []*corev1.Namespace{
				{ObjectMeta: metav1.ObjectMeta{Name: "home"}},
				{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
				{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"team": "a"}}},
			})
			err := m.Allowed("home/s", c.namespace)
			if c.allowed {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
	m, _, _ := newTestManager(t, nil, nil)
	assert.Error(t, m.Allowed("home/unknown", "home"), "an unknown storage allows nothing")
}

// fakeTarget records what a store would be asked.
type fakeTarget struct {
	mu  sync.Mutex
	ops []string
}

func (f *fakeTarget) AddStorage(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, "add "+id)
	return nil
}

func (f *fakeTarget) RemoveStorage(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, "remove "+id)
}

func (f *fakeTarget) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.ops
	f.ops = nil
	return out
}

func newTestManager(t *testing.T, storages []*v1alpha1.BackupStorage, objs []*corev1.Namespace, kubeObjs ...*corev1.Secret) (*Manager, *kubefake.Clientset, *ksfake.Clientset) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var kobjs, sobjs []runtime.Object
	for _, n := range objs {
		kobjs = append(kobjs, n)
	}
	for _, s := range kubeObjs {
		kobjs = append(kobjs, s)
	}
	for _, s := range storages {
		sobjs = append(sobjs, s)
	}
	kube := kubefake.NewClientset(kobjs...)
	ks := ksfake.NewSimpleClientset(sobjs...)
	kubeInf := informers.NewSharedInformerFactory(kube, 0)
	ksInf := externalversions.NewSharedInformerFactory(ks, 0)
	m, err := New(Options{Client: kube, BackupStorages: ksInf.Storage().V1alpha1().BackupStorages(), Namespaces: kubeInf.Core().V1().Namespaces(),
		// The tests' local backends are in t.TempDir().
		Build: storagebackend.Builder{LocalDirs: backenddirs.Policy{Allowed: []string{os.TempDir()}}}.Build,
		// Secrets are read again at every poll (no watch).
		SecretPollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	kubeInf.Start(ctx.Done())
	ksInf.Start(ctx.Done())
	require.NoError(t, m.Sync(ctx))
	t.Cleanup(m.Stop)
	return m, kube, ks
}

func TestManagerFollowsBackupStorages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	m, kube, ks := newTestManager(t,
		[]*v1alpha1.BackupStorage{s3Storage("a", "s3", "creds"), s3Storage("a", "broken", "missing")},
		[]*corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "a"}}},
		s3Secret("a", "creds", "AKID", "SECRETVALUE"))

	// What existed at start is served (or reported) before any store
	// starts.
	assert.Equal(t, []string{"a/s3"}, m.Storages())
	require.Contains(t, m.Failures(), "a/broken")
	assert.Contains(t, m.Failures()["a/broken"].Error(), "secret a/missing not found")
	first, ok := m.Backend("a/s3")
	require.True(t, ok)

	target := &fakeTarget{}
	m.AddTarget(target)
	go m.Run(ctx, 1)

	eventually := func(want ...string) {
		t.Helper()
		var got []string
		require.Eventually(t, func() bool {
			got = append(got, target.take()...)
			return len(got) >= len(want)
		}, 10*time.Second, 20*time.Millisecond)
		sort.Strings(got)
		sort.Strings(want)
		assert.Equal(t, want, got)
	}

	// A new BackupStorage is added to every store.
	_, err := ks.StorageV1alpha1().BackupStorages("a").Create(ctx, localStorage("a", "local", dir), metav1.CreateOptions{})
	require.NoError(t, err)
	eventually("add a/local")

	// The missing Secret appears: the broken storage is served.
	_, err = kube.CoreV1().Secrets("a").Create(ctx, s3Secret("a", "missing", "AKID2", "KEY2"), metav1.CreateOptions{})
	require.NoError(t, err)
	eventually("add a/broken")
	assert.NotContains(t, m.Failures(), "a/broken")

	// New credentials swap the backend; the objects stay (no remove).
	sec := s3Secret("a", "creds", "AKID", "ROTATED")
	sec.ResourceVersion = "2"
	_, err = kube.CoreV1().Secrets("a").Update(ctx, sec, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		b, _ := m.Backend("a/s3")
		return b != first
	}, 10*time.Second, 20*time.Millisecond)
	assert.Empty(t, target.take())

	// Another usagePolicy means other objects may be served: re-read.
	bs, err := ks.StorageV1alpha1().BackupStorages("a").Get(ctx, "s3", metav1.GetOptions{})
	require.NoError(t, err)
	bs.Spec.UsagePolicy = &v1alpha1.UsagePolicy{AllowedNamespaces: v1alpha1.AllowedNamespaces{From: ptr.To(v1alpha1.NamespacesFromAll)}}
	_, err = ks.StorageV1alpha1().BackupStorages("a").Update(ctx, bs, metav1.UpdateOptions{})
	require.NoError(t, err)
	eventually("add a/s3", "remove a/s3")

	// Its Secret deleted: the storage stays in every store (no remove),
	// served by a backend that refuses every call naming the cause, so
	// its objects do not vanish from the API.
	require.NoError(t, kube.CoreV1().Secrets("a").Delete(ctx, "creds", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		b, _ := m.Backend("a/s3")
		_, _, gerr := b.Get(ctx, "metadata.yaml")
		return errors.Is(gerr, backend.ErrUnavailable)
	}, 10*time.Second, 20*time.Millisecond)
	b, _ := m.Backend("a/s3")
	_, err = b.Put(ctx, "x.yaml", []byte("x"), backend.PutOptions{})
	require.ErrorIs(t, err, backend.ErrUnavailable)
	assert.Contains(t, err.Error(), "secret a/creds not found")
	assert.Contains(t, m.Storages(), "a/s3")
	assert.Contains(t, m.Failures()["a/s3"].Error(), "secret a/creds not found")
	assert.Empty(t, target.take())
	// Back: a working backend again, still without a reload.
	_, err = kube.CoreV1().Secrets("a").Create(ctx, s3Secret("a", "creds", "AKID", "ROTATED"), metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		b, _ := m.Backend("a/s3")
		return !strings.HasSuffix(b.String(), backend.UnavailableSuffix)
	}, 10*time.Second, 20*time.Millisecond)
	assert.NotContains(t, m.Failures(), "a/s3")
	assert.Empty(t, target.take())

	// A removed BackupStorage leaves every store.
	require.NoError(t, ks.StorageV1alpha1().BackupStorages("a").Delete(ctx, "local", metav1.DeleteOptions{}))
	eventually("remove a/local")
	assert.Equal(t, []string{"a/broken", "a/s3"}, m.Storages())

	// A backend that can't be built is reported, and its old one goes.
	bs, err = ks.StorageV1alpha1().BackupStorages("a").Get(ctx, "broken", metav1.GetOptions{})
	require.NoError(t, err)
	bs.Spec.Storage.Provider = v1alpha1.ProviderAzure
	_, err = ks.StorageV1alpha1().BackupStorages("a").Update(ctx, bs, metav1.UpdateOptions{})
	require.NoError(t, err)
	eventually("remove a/broken")
	assert.Contains(t, m.Failures()["a/broken"].Error(), "azure")
	for _, err := range m.Failures() {
		assert.NotContains(t, err.Error(), "SECRETVALUE")
	}
}

// TestManagerReadsSecretsByGet: the server reads each storage's Secret by
// name with a GET, never a list or watch (it is granted get on that Secret
// alone). A Secret it may not read yet is an outage: the storage is served
// by a backend that refuses calls naming the cause, reported, and retried
// until the grant is there; changes of the Secret are found by reading it
// again.
func TestManagerReadsSecretsByGet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var forbidden atomic.Bool
	forbidden.Store(true)
	kube := kubefake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, s3Secret("a", "creds", "AKID", "SECRETVALUE"))
	kube.PrependReactor("get", "secrets", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if forbidden.Load() {
			return true, nil, apierrors.NewForbidden(corev1.Resource("secrets"), action.(k8stesting.GetAction).GetName(), errors.New("no grant yet"))
		}
		return false, nil, nil
	})
	ks := ksfake.NewSimpleClientset(s3Storage("a", "s3", "creds"))
	kubeInf := informers.NewSharedInformerFactory(kube, 0)
	ksInf := externalversions.NewSharedInformerFactory(ks, 0)
	m, err := New(Options{Client: kube, BackupStorages: ksInf.Storage().V1alpha1().BackupStorages(), Namespaces: kubeInf.Core().V1().Namespaces(),
		SecretPollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	kubeInf.Start(ctx.Done())
	ksInf.Start(ctx.Done())
	require.NoError(t, m.Sync(ctx), "a Secret it may not read fails no start")
	t.Cleanup(m.Stop)

	b, ok := m.Backend("a/s3")
	require.True(t, ok, "served, as unavailable")
	_, err = b.Put(ctx, "x.yaml", []byte("x"), backend.PutOptions{})
	require.ErrorIs(t, err, backend.ErrUnavailable)
	assert.Contains(t, err.Error(), "secret a/creds may not be read: not yet")
	require.Contains(t, m.Failures(), "a/s3")

	target := &fakeTarget{}
	m.AddTarget(target)
	go m.Run(ctx, 1)

	// The grant arrives: the storage is read from scratch.
	forbidden.Store(false)
	require.Eventually(t, func() bool {
		b, _ := m.Backend("a/s3")
		return !strings.HasSuffix(b.String(), backend.UnavailableSuffix)
	}, 10*time.Second, 20*time.Millisecond)
	assert.NotContains(t, m.Failures(), "a/s3")
	assert.Equal(t, []string{"remove a/s3", "add a/s3"}, target.take())
	first, _ := m.Backend("a/s3")

	// New credentials, announced by no BackupStorage event: found by the
	// next read, and the backend swapped without a reload.
	sec := s3Secret("a", "creds", "AKID", "ROTATED")
	sec.ResourceVersion = "2"
	_, err = kube.CoreV1().Secrets("a").Update(ctx, sec, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		b, _ := m.Backend("a/s3")
		return b != first
	}, 10*time.Second, 20*time.Millisecond)
	assert.Empty(t, target.take())

	// The grant goes again: the storage goes on with what it has.
	forbidden.Store(true)
	require.Eventually(t, func() bool { _, ok := m.Failures()["a/s3"]; return ok }, 10*time.Second, 20*time.Millisecond)
	b, _ = m.Backend("a/s3")
	assert.False(t, strings.HasSuffix(b.String(), backend.UnavailableSuffix), "an API outage does not take working credentials away")
	forbidden.Store(false)
	require.Eventually(t, func() bool { _, ok := m.Failures()["a/s3"]; return !ok }, 10*time.Second, 20*time.Millisecond)
	assert.Empty(t, target.take())

	for _, a := range kube.Actions() {
		if a.GetResource().Resource == "secrets" {
			assert.NotContains(t, []string{"list", "watch"}, a.GetVerb(), "Secrets are only read by name")
		}
	}
}

// TestManagerSecretForbidden: a Secret the server may not read is a grant
// not made yet while the controller has not recorded the BackupStorage's
// Secret in its status (reported plainly, not logged as an error), and a
// refusal to report, with kube-apiserver's words, once it has.
func TestManagerSecretForbidden(t *testing.T) {
	tests := []struct {
		name                    string
		reconciled, terminating bool
		want                    string
	}{
		{name: "not reconciled by the controller yet", want: "not yet, the controller grants it to the catalog server when it first reconciles BackupStorage a/s3"},
		{name: "its namespace is being deleted", reconciled: true, terminating: true, want: "namespace a is being deleted"},
		{name: "reconciled: the grant should be there", reconciled: true, want: "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}}
			if tt.terminating {
				ns.Status.Phase = corev1.NamespaceTerminating
			}
			kube := kubefake.NewClientset(ns, s3Secret("a", "creds", "AKID", "SECRETVALUE"))
			kube.PrependReactor("get", "secrets", func(action k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(corev1.Resource("secrets"), action.(k8stesting.GetAction).GetName(), errors.New("no grant"))
			})
			bs := s3Storage("a", "s3", "creds")
			if tt.reconciled {
				bs.Status.Conditions = []kmapi.Condition{{Type: v1alpha1.TypeBackendSecretFound, Status: metav1.ConditionTrue}}
			}
			ksInf := externalversions.NewSharedInformerFactory(ksfake.NewSimpleClientset(bs), 0)
			kubeInf := informers.NewSharedInformerFactory(kube, 0)
			m, err := New(Options{Client: kube, BackupStorages: ksInf.Storage().V1alpha1().BackupStorages(), Namespaces: kubeInf.Core().V1().Namespaces()})
			require.NoError(t, err)
			kubeInf.Start(ctx.Done())
			ksInf.Start(ctx.Done())
			require.NoError(t, m.Sync(ctx))
			t.Cleanup(m.Stop)
			require.Contains(t, m.Failures(), "a/s3")
			msg := m.Failures()["a/s3"].Error()
			assert.Contains(t, msg, tt.want)
			if tt.want != "forbidden" {
				assert.NotContains(t, msg, "forbidden", "a grant not there for a reason is no refusal to log")
			}
		})
	}
}

// Package lookuptest gives reconciler tests what the controller gives its
// reconcilers: reads from started, synced informers over fake clients, and
// the writes a reconcile made, as sample-controller's tests check them.
package lookuptest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	kubefake "k8s.io/client-go/kubernetes/fake"
	kubescheme "k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"kubestash.dev/kubestash/pkg/controller/lookup"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned/fake"
	ourscheme "kubestash.dev/kubestash/pkg/generated/clientset/versioned/scheme"
)

// Informed are the reads of the controller's informers over the fakes,
// started and synced; they stop when the test ends.
type Informed struct {
	*lookup.Reads
	// Kube and Client are the fakes the informers watch.
	Kube   *kubefake.Clientset
	Client *fake.Clientset
	caches []cachedKind
}

// cachedKind is one informer and what its cache holds once it has seen
// every change made to the fake: at least want (the objects its list
// selects), at most all (every object of its kind).
type cachedKind struct {
	name  string
	store cache.Store
	list  func() (want, all []runtime.Object, err error)
}

type tracked interface {
	Tracker() k8stesting.ObjectTracker
}

// NewInformed starts the controller's informers over kube and client (a
// nil one is an empty fake) and waits for their caches.
func NewInformed(t testing.TB, kube *kubefake.Clientset, client *fake.Clientset) *Informed {
	t.Helper()
	if kube == nil {
		kube = kubefake.NewClientset()
	}
	if client == nil {
		client = fake.NewSimpleClientset()
	}
	inf := lookup.NewInformers(kube, client, 0)
	in := &Informed{Reads: lookup.CachedReads(inf, lookup.LiveReads(kube, client)), Kube: kube, Client: client}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		inf.Catalog.Shutdown()
		inf.Ours.Shutdown()
		inf.Cluster.Shutdown()
	})
	for _, f := range []struct {
		start    func(<-chan struct{})
		wait     func(<-chan struct{}) map[reflect.Type]bool
		informer func(runtime.Object) cache.SharedIndexInformer
		fake     tracked
		scheme   *runtime.Scheme
		selector labels.Selector
	}{
		{inf.Catalog.Start, inf.Catalog.WaitForCacheSync, func(o runtime.Object) cache.SharedIndexInformer { return inf.Catalog.InformerFor(o, nil) },
			client, ourscheme.Scheme, labels.Everything()},
		{inf.Ours.Start, inf.Ours.WaitForCacheSync, func(o runtime.Object) cache.SharedIndexInformer { return inf.Ours.InformerFor(o, nil) },
			kube, kubescheme.Scheme, lookup.Ours},
		{inf.Cluster.Start, inf.Cluster.WaitForCacheSync, func(o runtime.Object) cache.SharedIndexInformer { return inf.Cluster.InformerFor(o, nil) },
			kube, kubescheme.Scheme, labels.Everything()},
	} {
		f.start(ctx.Done())
		for typ, ok := range f.wait(ctx.Done()) {
			require.True(t, ok, "the informer of %s did not sync", typ)
			// InformerFor returns the informer the factory already has.
			obj := reflect.New(typ.Elem()).Interface().(runtime.Object)
			gvks, _, err := f.scheme.ObjectKinds(obj)
			require.NoError(t, err)
			gvk := gvks[0]
			gvr, _ := meta.UnsafeGuessKindToResource(gvk)
			tracker, selector := f.fake.Tracker(), f.selector
			in.caches = append(in.caches, cachedKind{name: gvr.Resource, store: f.informer(obj).GetStore(),
				list: func() (want, all []runtime.Object, err error) {
					l, err := tracker.List(gvr, gvk, "")
					if err != nil {
						return nil, nil, err
					}
					all, err = meta.ExtractList(l)
					for _, o := range all {
						if m, err := meta.Accessor(o); err == nil && selector.Matches(labels.Set(m.GetLabels())) {
							want = append(want, o)
						}
					}
					return want, all, err
				}})
		}
	}
	return in
}

// Settle waits until every cache has seen every change made to the fakes,
// as the controller's caches do between two reconciles of a key.
func (in *Informed) Settle(t testing.TB) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		last = nil
		for _, c := range in.caches {
			if err := c.caughtUp(); err != nil {
				last = err
				return false, nil
			}
		}
		return true, nil
	})
	require.NoError(t, err, "the informers did not catch up with the fakes: %v", last)
}

func (c cachedKind) caughtUp() error {
	want, all, err := c.list()
	if err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	for _, o := range want {
		got, ok, err := c.store.Get(o)
		if err != nil || !ok || !equality.Semantic.DeepEqual(got, o) {
			return fmt.Errorf("%s: the cache has not seen the last change of %s", c.name, key(o))
		}
	}
	keys := map[string]bool{}
	for _, o := range all {
		keys[key(o)] = true
	}
	for _, k := range c.store.ListKeys() {
		if !keys[k] {
			return fmt.Errorf("%s: the cache still has %s", c.name, k)
		}
	}
	return nil
}

func key(o runtime.Object) string {
	k, err := cache.MetaNamespaceKeyFunc(o)
	if err != nil {
		return fmt.Sprint(err)
	}
	return k
}

// Writes are the writes among actions, in order, each as
// "verb resource[/subresource] [namespace/]name"; reads (get, list, watch)
// are left out. Creates name what they create.
func Writes(actions []k8stesting.Action) []string {
	var out []string
	for _, a := range actions {
		if slices.Contains([]string{"get", "list", "watch"}, a.GetVerb()) {
			continue
		}
		res := a.GetResource().Resource
		if a.GetSubresource() != "" {
			res += "/" + a.GetSubresource()
		}
		name := ""
		switch a := a.(type) {
		case k8stesting.CreateAction:
			if m, err := meta.Accessor(a.GetObject()); err == nil {
				name = m.GetName()
				if name == "" {
					name = m.GetGenerateName() + "*"
				}
			}
		case k8stesting.UpdateAction:
			if m, err := meta.Accessor(a.GetObject()); err == nil {
				name = m.GetName()
			}
		case k8stesting.DeleteAction:
			name = a.GetName()
		case k8stesting.PatchAction:
			name = a.GetName()
		}
		if ns := a.GetNamespace(); ns != "" {
			name = ns + "/" + name
		}
		out = append(out, a.GetVerb()+" "+res+" "+name)
	}
	return out
}

// Reset forgets the actions recorded so far by both fakes, so that the
// next Writes are those of what follows.
func (in *Informed) Reset() {
	in.Kube.ClearActions()
	in.Client.ClearActions()
}

// Writes are the writes made to the fakes since the last Reset, the
// cluster's then the catalog's.
func (in *Informed) Writes() []string {
	return append(Writes(in.Kube.Actions()), Writes(in.Client.Actions())...)
}

// Reconcile runs reconcile as the controller does, once the caches have
// seen every change made to the fakes, and returns the writes it made.
func (in *Informed) Reconcile(t testing.TB, reconcile func() error) ([]string, error) {
	t.Helper()
	in.Settle(t)
	in.Reset()
	err := reconcile()
	return in.Writes(), err
}

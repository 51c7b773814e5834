package retention

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned/fake"
)

const ns = "demo"

// stored is a Snapshot of repository repo in namespace ns, as the catalog
// would list it.
func stored(namespace, repo, name string, phase catalogv1alpha1.SnapshotPhase, t string, policy catalogv1alpha1.DeletionPolicy) *catalogv1alpha1.Snapshot {
	s := snap(name, phase, t)
	s.Namespace = namespace
	s.UID = types.UID("uid-" + namespace + "-" + name)
	s.Labels = map[string]string{catalogv1alpha1.LabelRepoName: repo}
	s.Spec = catalogv1alpha1.SnapshotSpec{Repository: repo, DeletionPolicy: policy}
	return &s
}

func keepLast(n int32) *storagev1alpha1.RetentionPolicy {
	return &storagev1alpha1.RetentionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "keep-last", Namespace: ns},
		Spec: storagev1alpha1.RetentionPolicySpec{
			SuccessfulSnapshots: &storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Last: ptr.To(n)},
		},
	}
}

// fixture is repository r1 with four successes (s1 newest, WipeOut and
// Delete alternating) and a running one, plus r2 in the same namespace and
// r1 in another namespace, which Apply must not touch.
func fixture() *fake.Clientset {
	return fake.NewSimpleClientset(
		stored(ns, "r1", "s1", ok, "2026-06-15T10:00:00Z", catalogv1alpha1.DeletionPolicyWipeOut),
		stored(ns, "r1", "s2", ok, "2026-06-14T10:00:00Z", catalogv1alpha1.DeletionPolicyDelete),
		stored(ns, "r1", "s3", ok, "2026-06-13T10:00:00Z", catalogv1alpha1.DeletionPolicyWipeOut),
		stored(ns, "r1", "s4", ok, "2026-06-12T10:00:00Z", catalogv1alpha1.DeletionPolicyDelete),
		stored(ns, "r1", "run", run, "2026-06-01T10:00:00Z", catalogv1alpha1.DeletionPolicyWipeOut),
		stored(ns, "r2", "other-repo", ok, "2026-01-01T10:00:00Z", catalogv1alpha1.DeletionPolicyWipeOut),
		stored("elsewhere", "r1", "other-ns", ok, "2026-01-01T10:00:00Z", catalogv1alpha1.DeletionPolicyWipeOut),
	)
}

// remaining lists the Snapshots left in namespace, as namespace/name.
func remaining(t *testing.T, c *fake.Clientset) []string {
	t.Helper()
	var out []string
	for _, namespace := range []string{ns, "elsewhere"} {
		l, err := c.CatalogV1alpha1().Snapshots(namespace).List(context.Background(), metav1.ListOptions{})
		require.NoError(t, err)
		for _, s := range l.Items {
			out = append(out, s.Namespace+"/"+s.Name)
		}
	}
	sort.Strings(out)
	return out
}

// deletes lists the names in the delete actions c has seen.
func deletes(c *fake.Clientset) []string {
	var out []string
	for _, a := range c.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok {
			out = append(out, d.GetName())
		}
	}
	return out
}

var now = at("2026-06-15T12:00:00Z")

func TestApplyDeletesWhatSelectRemoves(t *testing.T) {
	c := fixture()
	removed, err := Apply(context.Background(), c, ns, "r1", keepLast(2), now)
	require.NoError(t, err)
	assert.Equal(t, []string{"s3", "s4"}, removed)

	// A list, and the deletes; s4 (deletionPolicy Delete) is first set to
	// WipeOut, as upstream does, so that its restic data goes too.
	var verbs []string
	checked := 0
	for _, a := range c.Actions() {
		verbs = append(verbs, a.GetVerb())
		assert.Equal(t, ns, a.GetNamespace())
		if l, ok := a.(k8stesting.ListAction); ok {
			assert.Equal(t, catalogv1alpha1.LabelRepoName+"=r1", l.GetListRestrictions().Labels.String())
		}
		if u, ok := a.(k8stesting.UpdateAction); ok {
			got := u.GetObject().(*catalogv1alpha1.Snapshot)
			assert.Equal(t, "s4", got.Name)
			assert.Equal(t, catalogv1alpha1.DeletionPolicyWipeOut, got.Spec.DeletionPolicy)
		}
		if d, ok := a.(k8stesting.DeleteActionImpl); ok {
			require.NotNil(t, d.DeleteOptions.Preconditions, d.Name)
			assert.Equal(t, types.UID("uid-demo-"+d.Name), *d.DeleteOptions.Preconditions.UID)
			checked++
		}
	}
	assert.Equal(t, []string{"list", "delete", "update", "delete"}, verbs)
	assert.Equal(t, 2, checked, "each delete carries the listed UID as a precondition")
	assert.Equal(t, []string{"demo/other-repo", "demo/run", "demo/s1", "demo/s2", "elsewhere/other-ns"}, remaining(t, c))
}

func TestApplyNilPolicyRemovesNothing(t *testing.T) {
	c := fixture()
	removed, err := Apply(context.Background(), c, ns, "r1", nil, now)
	require.NoError(t, err)
	assert.Empty(t, removed)
	assert.Empty(t, deletes(c))
}

func TestApplyMalformedPeriodRemovesNothing(t *testing.T) {
	c := fixture()
	p := keepLast(1)
	p.Spec.MaxRetentionPeriod = "3weeks"
	removed, err := Apply(context.Background(), c, ns, "r1", p, now)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "demo/r1")
	assert.Contains(t, err.Error(), "3weeks")
	assert.Empty(t, removed)
	assert.Empty(t, deletes(c))
}

func TestApplyListError(t *testing.T) {
	c := fixture()
	c.PrependReactor("list", "snapshots", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("catalog unavailable")
	})
	removed, err := Apply(context.Background(), c, ns, "r1", keepLast(1), now)
	require.ErrorContains(t, err, "catalog unavailable")
	assert.Contains(t, err.Error(), "list snapshots")
	assert.Empty(t, removed)
	assert.Empty(t, deletes(c))
}

func TestApplyCollectsErrors(t *testing.T) {
	c := fixture()
	boom := map[string]error{
		"s2": errors.New("backend timeout"),
		"s4": apierrors.NewForbidden(catalogv1alpha1.Resource("snapshots"), "s4", errors.New("no")),
	}
	c.PrependReactor("delete", "snapshots", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if err := boom[a.(k8stesting.DeleteAction).GetName()]; err != nil {
			return true, nil, err
		}
		return false, nil, nil
	})
	removed, err := Apply(context.Background(), c, ns, "r1", keepLast(1), now)
	require.Error(t, err)
	assert.Equal(t, []string{"s3"}, removed, "one failure does not stop the others")
	assert.Equal(t, []string{"s2", "s3", "s4"}, deletes(c))
	assert.Contains(t, err.Error(), "demo/r1")
	assert.Contains(t, err.Error(), "delete snapshot s2: backend timeout")
	assert.Contains(t, err.Error(), "delete snapshot s4:")
	assert.ErrorIs(t, err, boom["s2"], "the causes stay reachable")
	assert.ErrorIs(t, err, boom["s4"], "the causes stay reachable")
	assert.Equal(t, []string{"demo/other-repo", "demo/run", "demo/s1", "demo/s2", "demo/s4", "elsewhere/other-ns"}, remaining(t, c))
}

func TestApplySkipsGoneOrReplaced(t *testing.T) {
	c := fixture()
	c.PrependReactor("delete", "snapshots", func(a k8stesting.Action) (bool, runtime.Object, error) {
		switch a.(k8stesting.DeleteAction).GetName() {
		case "s2":
			return true, nil, apierrors.NewNotFound(catalogv1alpha1.Resource("snapshots"), "s2")
		case "s3":
			return true, nil, apierrors.NewConflict(catalogv1alpha1.Resource("snapshots"), "s3",
				fmt.Errorf("Precondition failed: UID in precondition: uid-demo-s3, UID in object meta: other"))
		}
		return false, nil, nil
	})
	removed, err := Apply(context.Background(), c, ns, "r1", keepLast(1), now)
	require.NoError(t, err)
	assert.Equal(t, []string{"s4"}, removed)
}

// A Snapshot made again under a selected name between the list and the
// update is not the one selected: it keeps its deletionPolicy and stays.
func TestApplyWipeOutSkipsReplaced(t *testing.T) {
	c := fixture()
	conflicts := 0
	c.PrependReactor("update", "snapshots", func(a k8stesting.Action) (bool, runtime.Object, error) {
		conflicts++
		return true, nil, apierrors.NewConflict(catalogv1alpha1.Resource("snapshots"), "s4", errors.New("changed"))
	})
	c.PrependReactor("get", "snapshots", func(a k8stesting.Action) (bool, runtime.Object, error) {
		s := stored(ns, "r1", "s4", ok, "2026-06-12T10:00:00Z", catalogv1alpha1.DeletionPolicyDelete)
		s.UID = "another"
		return true, s, nil
	})
	removed, err := Apply(context.Background(), c, ns, "r1", keepLast(2), now)
	require.NoError(t, err)
	assert.Equal(t, []string{"s3"}, removed)
	assert.Equal(t, 1, conflicts, "no retry against another Snapshot")
	assert.Equal(t, []string{"s3"}, deletes(c))
}

func TestApplyCancelled(t *testing.T) {
	c := fixture()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	removed, err := Apply(ctx, c, ns, "r1", keepLast(1), now)
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "3 snapshots not deleted")
	assert.Empty(t, removed)
	assert.Empty(t, deletes(c))
}

func TestApplyAllRules(t *testing.T) {
	// Failures and the period apply through Apply too.
	c := fake.NewSimpleClientset(
		stored(ns, "r1", "new", ok, "2026-06-15T10:00:00Z", catalogv1alpha1.DeletionPolicyWipeOut),
		stored(ns, "r1", "fail-new", bad, "2026-06-15T09:00:00Z", catalogv1alpha1.DeletionPolicyWipeOut),
		stored(ns, "r1", "fail-old", bad, "2026-06-15T08:00:00Z", catalogv1alpha1.DeletionPolicyDelete),
		stored(ns, "r1", "ancient", ok, "2025-06-15T08:00:00Z", catalogv1alpha1.DeletionPolicyWipeOut),
	)
	p := keepLast(5)
	p.Spec.MaxRetentionPeriod = "30d"
	removed, err := Apply(context.Background(), c, ns, "r1", p, now)
	require.NoError(t, err)
	assert.Equal(t, []string{"fail-old", "ancient"}, removed)
	assert.Equal(t, []string{"demo/fail-new", "demo/new"}, remaining(t, c))
}

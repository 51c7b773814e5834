package agent

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/restic"
)

func TestTrigger(t *testing.T) {
	f := newFixture(t)
	now := time.Unix(1704281100, 0)
	a := &Agent{Client: f.client, Kube: f.kube, Now: func() time.Time { return now }}
	ctx := context.Background()

	bs, err := a.Trigger(ctx, TriggerOptions{Namespace: ns, InvokerName: bcName, InvokerKind: "BackupConfiguration", SessionName: session})
	require.NoError(t, err)
	assert.Equal(t, "pvc-backup-frequent-backup-1704281100", bs.Name)
	assert.Equal(t, map[string]string{catalogv1alpha1.LabelInvokerName: bcName}, bs.Labels)
	assert.Empty(t, bs.OwnerReferences, "catalog objects carry no ownerReferences")
	require.NotNil(t, bs.Spec.Invoker.APIGroup)
	assert.Equal(t, "core.kubestash.com", *bs.Spec.Invoker.APIGroup)
	assert.Equal(t, "BackupConfiguration", bs.Spec.Invoker.Kind)
	assert.Equal(t, bcName, bs.Spec.Invoker.Name)
	assert.Equal(t, session, bs.Spec.Session)
	assert.Equal(t, int32(2), bs.Spec.RetryLeft)
	assert.Equal(t, &metav1.Duration{Duration: 30 * time.Minute}, bs.Spec.BackupTimeout)
	// The Snapshot name the controller will use pairs with it.
	assert.Equal(t, "local-repo-pvc-backup-frequent-backup-1704281100", catalogv1alpha1.GenerateSnapshotName(repoName, bs.Name))

	// A retried trigger within the same second gets the same session.
	again, err := a.Trigger(ctx, TriggerOptions{Namespace: ns, InvokerName: bcName, SessionName: session})
	require.NoError(t, err)
	assert.Equal(t, bs.Name, again.Name)
	list, err := f.client.CatalogV1alpha1().BackupSessions(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, list.Items, 1)

	for name, o := range map[string]TriggerOptions{
		"unknown session": {Namespace: ns, InvokerName: bcName, SessionName: "nope"},
		"unknown invoker": {Namespace: ns, InvokerName: "nope", SessionName: session},
		"other kind":      {Namespace: ns, InvokerName: bcName, InvokerKind: "BackupBatch", SessionName: session},
		"no namespace":    {InvokerName: bcName, SessionName: session},
	} {
		_, err := a.Trigger(ctx, o)
		assert.Error(t, err, name)
	}
}

func TestPaths(t *testing.T) {
	for _, tc := range []struct {
		p, base, rest string
		ok            bool
	}{
		{"/kubestash-data", "/kubestash-data", "", true},
		{"/kubestash-data/a/b", "/kubestash-data/", "a/b", true},
		{"/kubestash-database", "/kubestash-data", "", false},
		{"/x/y", "/", "x/y", true},
	} {
		rest, ok := within(tc.p, tc.base)
		assert.Equal(t, tc.ok, ok, tc.p)
		assert.Equal(t, tc.rest, rest, tc.p)
	}
}

func TestProgressInStatusWords(t *testing.T) {
	p := restic.Progress{SecondsElapsed: 0, PercentDone: 0.0748, TotalFiles: 100, FilesDone: 7, TotalBytes: 5268000000, BytesDone: 393900000}
	got := backupProgress(p, 2*time.Second)
	assert.Equal(t, &catalogv1alpha1.ResticProgress{SecondsElapsed: 2, PercentDone: "7.48%", TotalFiles: 100, FilesDone: 7, BackupDone: "393.9MB", Total: "5.268GB", Speed: "196.9MB/s"}, got)
	p.SecondsElapsed = 3
	r := restoreProgress(p, 0)
	assert.Equal(t, int64(3), r.SecondsElapsed)
	assert.Equal(t, "0B/s", r.Speed)
	assert.Equal(t, "393.9MB", r.RestoreDone)
}

// TestOnDisk: container paths are used as they are in a Pod, and below
// Agent.Root in unit tests; relative exclude patterns stay.
func TestOnDisk(t *testing.T) {
	pod := &Agent{}
	for _, p := range []string{"/kubestash-data", "/kubestash-data/large", "/", "*.tmp", "cache/"} {
		assert.Equal(t, p, pod.onDisk(p))
	}
	test := &Agent{Root: "/tmp/root"}
	for in, want := range map[string]string{
		"/kubestash-data":       "/tmp/root/kubestash-data",
		"/kubestash-data/large": "/tmp/root/kubestash-data/large",
		"/safe/data/":           "/tmp/root/safe/data",
		"/":                     "/tmp/root",
		"/kubestash-data/*.tmp": "/tmp/root/kubestash-data/*.tmp",
		"*.tmp":                 "*.tmp",
	} {
		assert.Equal(t, want, test.onDisk(in), in)
	}
}

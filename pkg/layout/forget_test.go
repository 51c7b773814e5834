package layout

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kubestash.dev/kubestash/pkg/backend"
)

func TestForgetKey(t *testing.T) {
	key, err := ForgetKey("/demo/pvc/", "snap-1")
	require.NoError(t, err)
	assert.Equal(t, "demo/pvc/forget/snap-1.yaml", key)
	repo, name, ok := ParseForgetKey(key)
	require.True(t, ok)
	assert.Equal(t, "demo/pvc", repo)
	assert.Equal(t, "snap-1", name)

	for _, k := range []string{"demo/pvc/snapshots/snap-1.yaml", "forget/x.yaml", "r/forget/x.json", "r/forget/.yaml"} {
		_, _, ok := ParseForgetKey(k)
		assert.False(t, ok, k)
	}
	_, _, _, ok = Parse(key)
	assert.False(t, ok, "a mark is no catalog file")
	_, err = ForgetKey("r", "a/b")
	assert.Error(t, err)
	_, err = RepoDir("team/forget/r")
	assert.Error(t, err, "forget is reserved like the catalog folders")
}

// TestForgetMarksAreNotCatalogFiles: discovery and scans never pick up a
// mark, even in a bucket walked without a repository list.
func TestForgetMarksAreNotCatalogFiles(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, "demo/pvc/repository.yaml", "demo/pvc/snapshots/s1.yaml", "demo/pvc/forget/s0.yaml", "loose/forget/x/repository.yaml")
	dirs, err := Discover(ctx, b)
	require.NoError(t, err)
	assert.Equal(t, []string{"demo/pvc"}, dirs)
	for _, k := range []Kind{KindRepository, KindSnapshot, KindBackupSession, KindRestoreSession} {
		objs, err := ScanKind(ctx, b, k, dirs)
		require.NoError(t, err)
		for _, o := range objs {
			assert.NotContains(t, o.Key, "/"+ForgetDir+"/", "%s scan", k)
		}
	}
	for _, p := range b.lists {
		assert.NotContains(t, p, "/"+ForgetDir+"/", "never listed by discovery or scans")
	}
}

func TestForgetMarkLifecycle(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	at := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	first := ForgetSnapshot{Name: "snap", Namespace: "demo", UID: "u1", Repository: "repo", SnapshotID: "01H", DeletedAt: at,
		Components: []ForgetComponent{{Name: "dump", Path: "repository/v1/daily/dump", ResticSnapshots: []string{"abc", "def"}}}}
	key, err := AddForgetMark(ctx, b, "/demo/pvc", first)
	require.NoError(t, err)
	assert.Equal(t, "demo/pvc/forget/snap.yaml", key)

	// The same name deleted again (a Snapshot made again under it): both
	// are kept; the same UID again replaces its entry.
	second := first
	second.UID, second.DeletedAt = "u2", metav1.NewTime(at.Add(time.Hour))
	second.Components = []ForgetComponent{{Name: "dump", Path: "repository/v1/daily/dump", ResticSnapshots: []string{"123"}}}
	_, err = AddForgetMark(ctx, b, "demo/pvc", second)
	require.NoError(t, err)
	_, err = AddForgetMark(ctx, b, "demo/pvc", second)
	require.NoError(t, err)

	objs, err := ListForgetMarks(ctx, b, "demo/pvc")
	require.NoError(t, err)
	require.Len(t, objs, 1)
	m, _, err := readMarkUTC(ctx, b, objs[0].Key)
	require.NoError(t, err)
	assert.Equal(t, ForgetKind, m.Kind)
	assert.Equal(t, []ForgetSnapshot{first, second}, m.Snapshots)

	require.NoError(t, DropForgetEntry(ctx, b, key, "u1"))
	m, _, err = readMarkUTC(ctx, b, key)
	require.NoError(t, err)
	assert.Equal(t, []ForgetSnapshot{second}, m.Snapshots)
	require.NoError(t, DropForgetEntry(ctx, b, key, "unknown"), "nothing to drop")
	require.NoError(t, DropForgetEntry(ctx, b, key, "u2"))
	_, _, err = ReadForgetMark(ctx, b, key)
	assert.True(t, errors.Is(err, backend.ErrNotFound), "the last entry takes the mark with it: %v", err)
	require.NoError(t, DropForgetEntry(ctx, b, key, "u2"), "dropping from a missing mark is fine")
}

// readMarkUTC reads a mark with its times in UTC (YAML reads them local).
func readMarkUTC(ctx context.Context, b backend.Backend, key string) (*ForgetMark, backend.Object, error) {
	m, o, err := ReadForgetMark(ctx, b, key)
	if m != nil {
		for i := range m.Snapshots {
			m.Snapshots[i].DeletedAt = metav1.NewTime(m.Snapshots[i].DeletedAt.UTC())
		}
	}
	return m, o, err
}

// TestReadForgetMarkRefusesPlantedFiles: a mark that is not one, or is
// huge, is an error that quotes none of it.
func TestReadForgetMarkRefusesPlantedFiles(t *testing.T) {
	const secret = "PLANTED-SECRET"
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"not YAML", []byte("a: [" + secret + "\n :: :")},
		{"another kind", []byte("kind: " + secret + "\n")},
		{"wrong type", []byte("kind: ForgetMark\nsnapshots: " + secret + "\n")},
		{"huge", bytes.Repeat([]byte("# "+secret+"\n"), MaxMetaSize/10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := backend.NewLocal(t.TempDir())
			require.NoError(t, err)
			key := "r/" + ForgetDir + "/s.yaml"
			_, err = b.Put(ctx, key, tc.data, backend.PutOptions{})
			require.NoError(t, err)
			_, _, err = ReadForgetMark(ctx, b, key)
			require.Error(t, err)
			assert.NotContains(t, err.Error(), secret)
		})
	}
}

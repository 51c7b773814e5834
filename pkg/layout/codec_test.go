package layout

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	"kubestash.dev/kubestash/pkg/apis/catalog/install"
)

// An upstream Snapshot file, as KubeStash <= v2026.5 wrote it: the old flat
// resticStats shape and storage.kubestash.com.
const upstreamSnapshot = `apiVersion: storage.kubestash.com/v1alpha1
kind: Snapshot
metadata:
  name: gcs-repository-nfs-pvc-backup-frequent-backup-1704281100
  namespace: demo
  labels:
    kubestash.com/repo-name: gcs-repository
spec:
  appRef: {apiGroup: "", kind: PersistentVolumeClaim, name: nfs-pvc, namespace: demo}
  backupSession: nfs-pvc-backup-frequent-backup-1704281100
  deletionPolicy: Delete
  repository: gcs-repository
  session: frequent-backup
  snapshotID: 01HK6Z2Q7V3N4K5P6R7S8T9V0W
  type: FullBackup
  version: v1
status:
  phase: Succeeded
  snapshotTime: "2024-01-03T11:25:13Z"
  totalComponents: 1
  integrity: true
  size: 806 B
  components:
    dump:
      driver: Restic
      path: repository/v1/frequent-backup/dump
      phase: Succeeded
      duration: 7.534461497s
      integrity: true
      size: 806 B
      resticStats:
      - id: f28441a36b2167d64597d66d1046573181cad81aa8ff5b0998b64b31ce16f077
        hostPath: /kubestash-data
        size: 11 B
        uploaded: 1.049 KiB
        startTime: "2024-01-03T11:25:05Z"
        endTime: "2024-01-03T11:25:12Z"
`

func fileCodec() *FileCodec {
	scheme := runtime.NewScheme()
	install.Install(scheme)
	return NewFileCodec(scheme)
}

func TestFileCodecReadsUpstreamSnapshot(t *testing.T) {
	c := fileCodec()
	obj, gvk, err := c.Decode([]byte(upstreamSnapshot), nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "catalog.kubestash.com", gvk.Group)
	s, ok := obj.(*catalog.Snapshot)
	require.True(t, ok, "decoded to the internal type, got %T", obj)
	assert.Equal(t, "gcs-repository", s.Spec.Repository)
	dump := s.Status.Components["dump"]
	require.Len(t, dump.ResticStats, 1)
	require.NotNil(t, dump.ResticStats[0].Summary, "old flat shape read into summary")
	assert.Equal(t, "f28441a36b2167d64597d66d1046573181cad81aa8ff5b0998b64b31ce16f077", dump.ResticStats[0].Summary.ID)
	assert.Equal(t, "1.049 KiB", dump.ResticStats[0].Summary.Uploaded)

	// Written back, it is ours: catalog group, new shape.
	var buf bytes.Buffer
	require.NoError(t, c.Encode(obj, &buf))
	out := buf.String()
	assert.Contains(t, out, "apiVersion: catalog.kubestash.com/v1alpha1\n")
	assert.Contains(t, out, "summary:")
	assert.NotContains(t, out, "storage.kubestash.com")
}

func TestRewriteUpstreamAPIVersion(t *testing.T) {
	cases := []struct{ in, want string }{
		{"apiVersion: core.kubestash.com/v1alpha1\nkind: BackupSession\n", "apiVersion: catalog.kubestash.com/v1alpha1\nkind: BackupSession\n"},
		{"kind: RestoreSession\napiVersion: \"core.kubestash.com/v1alpha1\"\n", "kind: RestoreSession\napiVersion: catalog.kubestash.com/v1alpha1\n"},
		{"apiVersion: storage.kubestash.com/v1alpha1\nkind: Repository", "apiVersion: catalog.kubestash.com/v1alpha1\nkind: Repository"},
		// Not catalog kinds: left alone.
		{"apiVersion: core.kubestash.com/v1alpha1\nkind: BackupConfiguration\n", "apiVersion: core.kubestash.com/v1alpha1\nkind: BackupConfiguration\n"},
		{"apiVersion: storage.kubestash.com/v1alpha1\nkind: BackupStorage\n", "apiVersion: storage.kubestash.com/v1alpha1\nkind: BackupStorage\n"},
		// Nested apiVersions (ownerReferences) are not the object's.
		{"apiVersion: catalog.kubestash.com/v1alpha1\nkind: Snapshot\nmetadata:\n  ownerReferences:\n  - apiVersion: storage.kubestash.com/v1alpha1\n",
			"apiVersion: catalog.kubestash.com/v1alpha1\nkind: Snapshot\nmetadata:\n  ownerReferences:\n  - apiVersion: storage.kubestash.com/v1alpha1\n"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, string(RewriteUpstreamAPIVersion([]byte(c.in))))
	}
}

// TestDecodeErrorKindQuotesNothing: whatever a file holds, the description
// of its decode error quotes none of it.
func TestDecodeErrorKindQuotesNothing(t *testing.T) {
	const secret = "SECRET-VALUE-FROM-A-FILE"
	scheme := runtime.NewScheme()
	install.Install(scheme)
	c := NewFileCodec(scheme)
	for _, tc := range []struct{ name, data, want string }{
		{"no kind", `{"password":"` + secret + `"}`, "no kind"},
		{"yaml without kind", "password: " + secret + "\n", "no kind"},
		{"broken yaml", "a: [" + secret + "\n b: : :\n", "not valid YAML"},
		{"unknown kind", "apiVersion: v1\nkind: " + secret + "\n", "not a kind this server knows"},
		{"wrong type", "apiVersion: catalog.kubestash.com/v1alpha1\nkind: Snapshot\nmetadata:\n  name: [" + secret + "]\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := c.Decode([]byte(tc.data), nil, nil)
			require.Error(t, err)
			got := DecodeErrorKind(err)
			assert.NotContains(t, got, secret)
			assert.NotEmpty(t, got)
			if tc.want != "" {
				assert.Contains(t, got, tc.want)
			}
		})
	}
	assert.Empty(t, DecodeErrorKind(nil))
}

/*
Copyright The KubeStash Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package install

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"kubestash.dev/kubestash/pkg/apis/catalog"
)

// An upstream snapshot file (old flat resticStats, no deletionPolicy or
// version) decodes through the server's codec into the internal type, with
// defaults applied.
func TestDecodeUpstreamSnapshotFile(t *testing.T) {
	scheme := runtime.NewScheme()
	Install(scheme)
	codecs := serializer.NewCodecFactory(scheme)

	doc := []byte(`
apiVersion: catalog.kubestash.com/v1alpha1
kind: Snapshot
metadata:
  name: gcs-repository-nfs-pvc-backup-frequent-backup-1704281100
  namespace: demo
  labels:
    kubestash.com/repo-name: gcs-repository
spec:
  appRef: {apiGroup: "", kind: PersistentVolumeClaim, name: nfs-pvc, namespace: demo}
  backupSession: nfs-pvc-backup-frequent-backup-1704281100
  repository: gcs-repository
  session: frequent-backup
  snapshotID: 01HK6Z2Q7V3N4K5P6R7S8T9V0W
  type: FullBackup
status:
  phase: Succeeded
  totalComponents: 1
  components:
    dump:
      driver: Restic
      path: repository/v1/frequent-backup/dump
      phase: Succeeded
      resticStats:
      - id: f28441a36b2167d6
        hostPath: /kubestash-data
        size: 11 B
        uploaded: 1.049 KiB
        startTime: "2024-01-03T11:25:05Z"
        endTime: "2024-01-03T11:25:12Z"
`)
	obj, gvk, err := codecs.UniversalDecoder(catalog.SchemeGroupVersion).Decode(doc, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "Snapshot", gvk.Kind)
	snap, ok := obj.(*catalog.Snapshot)
	require.True(t, ok, "%T", obj)

	assert.Equal(t, catalog.DeletionPolicyDelete, snap.Spec.DeletionPolicy)
	assert.Equal(t, "v1", snap.Spec.Version)
	assert.Equal(t, catalog.BackupTypeFull, snap.Spec.Type)
	assert.Equal(t, catalog.SnapshotSucceeded, snap.Status.Phase)
	stats := snap.Status.Components["dump"].ResticStats
	require.Len(t, stats, 1)
	require.NotNil(t, stats[0].Summary)
	assert.Equal(t, "f28441a36b2167d6", stats[0].Summary.ID)
	assert.Equal(t, "/kubestash-data", stats[0].Summary.HostPath)
	require.NotNil(t, stats[0].Summary.EndTime)
	assert.Equal(t, int64(1704281112), stats[0].Summary.EndTime.Unix())
}

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

package v1alpha1

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

func TestResticStatsUnmarshalJSON(t *testing.T) {
	start := metav1.NewTime(time.Date(2024, 1, 3, 11, 25, 5, 0, time.UTC).Local()) // Local: as metav1.Time decodes
	end := metav1.NewTime(time.Date(2024, 1, 3, 11, 25, 12, 0, time.UTC).Local())
	summary := &ResticSummary{
		ID:        "f28441a3",
		Uploaded:  "1.049 KiB",
		HostPath:  "/kubestash-data",
		Size:      "11 B",
		StartTime: &start,
		EndTime:   &end,
	}
	progress := &ResticProgress{
		SecondsElapsed: 3,
		PercentDone:    "50.00%",
		TotalFiles:     10,
		FilesDone:      5,
		BackupDone:     "5 B",
		Total:          "11 B",
		Speed:          "1.667 B/s",
	}

	tests := []struct {
		name string
		in   string
		want ResticStats
	}{
		{
			name: "old flat shape is lifted into summary",
			in:   `{"id":"f28441a3","uploaded":"1.049 KiB","hostPath":"/kubestash-data","size":"11 B","startTime":"2024-01-03T11:25:05Z","endTime":"2024-01-03T11:25:12Z"}`,
			want: ResticStats{Summary: summary},
		},
		{
			name: "old flat shape with some fields",
			in:   `{"id":"f28441a3","hostPath":"/kubestash-data"}`,
			want: ResticStats{Summary: &ResticSummary{ID: "f28441a3", HostPath: "/kubestash-data"}},
		},
		{
			name: "new shape with summary",
			in:   `{"summary":{"id":"f28441a3","uploaded":"1.049 KiB","hostPath":"/kubestash-data","size":"11 B","startTime":"2024-01-03T11:25:05Z","endTime":"2024-01-03T11:25:12Z"}}`,
			want: ResticStats{Summary: summary},
		},
		{
			name: "new shape with progress only",
			in:   `{"progress":{"secondsElapsed":3,"percentDone":"50.00%","totalFiles":10,"filesDone":5,"backupDone":"5 B","total":"11 B","speed":"1.667 B/s"}}`,
			want: ResticStats{Progress: progress},
		},
		{
			name: "new shape with summary and progress",
			in:   `{"summary":{"id":"f28441a3","hostPath":"/kubestash-data"},"progress":{"secondsElapsed":3}}`,
			want: ResticStats{Summary: &ResticSummary{ID: "f28441a3", HostPath: "/kubestash-data"}, Progress: &ResticProgress{SecondsElapsed: 3}},
		},
		{
			name: "new shape with empty summary stays non-nil",
			in:   `{"summary":{}}`,
			want: ResticStats{Summary: &ResticSummary{}},
		},
		{
			name: "both shapes: summary wins",
			in:   `{"id":"stale","summary":{"id":"f28441a3"}}`,
			want: ResticStats{Summary: &ResticSummary{ID: "f28441a3"}},
		},
		{
			name: "old shape and progress",
			in:   `{"id":"f28441a3","progress":{"filesDone":5}}`,
			want: ResticStats{Summary: &ResticSummary{ID: "f28441a3"}, Progress: &ResticProgress{FilesDone: 5}},
		},
		{
			name: "empty item",
			in:   `{}`,
			want: ResticStats{},
		},
		{
			name: "keys are case-sensitive",
			in:   `{"ID":"f28441a3"}`,
			want: ResticStats{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got ResticStats
			require.NoError(t, json.Unmarshal([]byte(tc.in), &got))
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestResticStatsUnmarshalErrors(t *testing.T) {
	for _, in := range []string{`[]`, `{"id":1}`, `{"summary":"x"}`, `{"startTime":"yesterday"}`} {
		var got ResticStats
		assert.Error(t, json.Unmarshal([]byte(in), &got), in)
	}
}

func TestResticStatsNullIsNoop(t *testing.T) {
	got := ResticStats{Progress: &ResticProgress{FilesDone: 1}}
	require.NoError(t, got.UnmarshalJSON([]byte("null")))
	assert.Equal(t, ResticStats{Progress: &ResticProgress{FilesDone: 1}}, got)
}

func TestResticStatsMarshalsNewShape(t *testing.T) {
	var c Component
	old := `{"resticStats":[{"id":"f28441a3","hostPath":"/kubestash-data","size":"11 B"}]}`
	require.NoError(t, json.Unmarshal([]byte(old), &c))

	out, err := json.Marshal(c)
	require.NoError(t, err)
	assert.JSONEq(t, `{"resticStats":[{"summary":{"id":"f28441a3","hostPath":"/kubestash-data","size":"11 B"}}]}`, string(out))

	// Reading what was written gives the same value back.
	var again Component
	require.NoError(t, json.Unmarshal(out, &again))
	assert.Equal(t, c, again)
}

// A snapshot file from an upstream backend (YAML, old shape) decodes.
func TestSnapshotYAMLOldResticStats(t *testing.T) {
	doc := `
apiVersion: storage.kubestash.com/v1alpha1
kind: Snapshot
metadata:
  name: gcs-repository-nfs-pvc-backup-frequent-backup-1704281100
  namespace: demo
spec:
  repository: gcs-repository
  session: frequent-backup
status:
  phase: Succeeded
  components:
    dump:
      driver: Restic
      path: repository/v1/frequent-backup/dump
      resticStats:
      - id: f28441a3
        hostPath: /kubestash-data
        size: 11 B
        uploaded: 1.049 KiB
        startTime: "2024-01-03T11:25:05Z"
        endTime: "2024-01-03T11:25:12Z"
`
	var s Snapshot
	require.NoError(t, yaml.Unmarshal([]byte(doc), &s))
	dump, ok := s.Status.Components["dump"]
	require.True(t, ok)
	require.Len(t, dump.ResticStats, 1)
	require.NotNil(t, dump.ResticStats[0].Summary)
	assert.Equal(t, "f28441a3", dump.ResticStats[0].Summary.ID)
	assert.Equal(t, "1.049 KiB", dump.ResticStats[0].Summary.Uploaded)
	assert.Nil(t, dump.ResticStats[0].Progress)
	assert.Equal(t, DriverRestic, dump.Driver)
}

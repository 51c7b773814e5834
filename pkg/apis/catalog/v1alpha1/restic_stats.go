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
	"bytes"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
)

// UnmarshalJSON reads both shapes of a resticStats item. KubeStash up to
// v2026.5 wrote the summary fields directly in the item; since v2026.6.19
// they sit under "summary", next to "progress". Backends written by either
// version must decode, so a flat item is lifted into Summary. There is no
// MarshalJSON: the default encoding is the current shape.
func (in *ResticStats) UnmarshalJSON(data []byte) error {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return nil
	}
	var item struct {
		Summary  *ResticSummary  `json:"summary,omitempty"`
		Progress *ResticProgress `json:"progress,omitempty"`

		// The flat (old) shape.
		ID        string       `json:"id,omitempty"`
		Uploaded  string       `json:"uploaded,omitempty"`
		HostPath  string       `json:"hostPath,omitempty"`
		Size      string       `json:"size,omitempty"`
		StartTime *metav1.Time `json:"startTime,omitempty"`
		EndTime   *metav1.Time `json:"endTime,omitempty"`
	}
	// Case-sensitive like the API server's own decoder, so "ID" is not "id".
	if err := kjson.UnmarshalCaseSensitivePreserveInts(data, &item); err != nil {
		return err
	}
	out := ResticStats{Summary: item.Summary, Progress: item.Progress}
	flat := ResticSummary{
		ID:        item.ID,
		Uploaded:  item.Uploaded,
		HostPath:  item.HostPath,
		Size:      item.Size,
		StartTime: item.StartTime,
		EndTime:   item.EndTime,
	}
	// An item with both shapes keeps its summary; the flat fields are then
	// stale leftovers of an upgrade and are dropped.
	if out.Summary == nil && flat != (ResticSummary{}) {
		out.Summary = &flat
	}
	*in = out
	return nil
}

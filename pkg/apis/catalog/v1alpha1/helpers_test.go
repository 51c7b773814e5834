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
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestValidNameWithPrefixNSuffix(t *testing.T) {
	long := strings.Repeat("a", 60)
	tests := []struct {
		name                string
		prefix, mid, suffix string
		want                string
	}{
		{name: "joined", prefix: "trigger", mid: "nfs-pvc-backup", suffix: "frequent-backup", want: "trigger-nfs-pvc-backup-frequent-backup"},
		{name: "empty suffix trims dash", prefix: "repo", mid: "bs", suffix: "", want: "repo-bs"},
		{name: "empty prefix trims dash", prefix: "", mid: "bs", suffix: "1", want: "bs-1"},
		{name: "exactly 63 kept", prefix: strings.Repeat("p", 30), mid: strings.Repeat("n", 20), suffix: strings.Repeat("s", 11),
			want: strings.Repeat("p", 30) + "-" + strings.Repeat("n", 20) + "-" + strings.Repeat("s", 11)},
		{name: "too long keeps first 32 and last 31", prefix: long, mid: "middle", suffix: "1704281100",
			want: strings.Repeat("a", 45) + "-middle-1704281100"},
		{name: "63 with a trailing dash is trimmed", prefix: strings.Repeat("a", 31), mid: strings.Repeat("b", 30), suffix: "",
			want: strings.Repeat("a", 31) + "-" + strings.Repeat("b", 30)},
		{name: "too long without prefix and suffix", prefix: "", mid: strings.Repeat("b", 70), suffix: "",
			want: strings.Repeat("b", 61)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ValidNameWithPrefixNSuffix(tc.prefix, tc.mid, tc.suffix)
			assert.Equal(t, tc.want, got)
			assert.LessOrEqual(t, len(got), validation.DNS1123LabelMaxLength)
		})
	}
}

func TestGenerateSnapshotName(t *testing.T) {
	tests := []struct {
		name          string
		repo, session string
		want          string
	}{
		{name: "upstream example", repo: "gcs-repository", session: "nfs-pvc-backup-frequent-backup-1704281100",
			want: "gcs-repository-nfs-pvc-backup-frequent-backup-1704281100"},
		{name: "no numeric suffix", repo: "repo", session: "manual-backup-x7k2p", want: "repo-manual-backup-x7k2p"},
		{name: "only digits", repo: "repo", session: "1704281100", want: "repo-1704281100"},
		{name: "long names keep the timestamp", repo: "a-very-long-repository-name-for-testing",
			session: "another-long-backup-configuration-name-daily-1704281100",
			want:    "a-very-long-repository-name-for-iguration-name-daily-1704281100"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := GenerateSnapshotName(tc.repo, tc.session)
			assert.Equal(t, tc.want, got)
			assert.Empty(t, validation.IsDNS1123Label(got))
		})
	}
}

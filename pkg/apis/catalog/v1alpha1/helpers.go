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
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// ValidNameWithPrefixNSuffix joins prefix, name and suffix with "-". A result
// longer than a DNS-1123 label (63) keeps its first 32 and last 31
// characters, so the distinguishing timestamp at the end survives. Leading
// and trailing "-" are trimmed (for an empty prefix or suffix).
func ValidNameWithPrefixNSuffix(prefix, name, suffix string) string {
	const maxLength = validation.DNS1123LabelMaxLength
	out := fmt.Sprintf("%s-%s-%s", prefix, name, suffix)
	if n := len(out); n > maxLength {
		out = out[:(maxLength+1)/2] + out[n-maxLength/2:]
	}
	return strings.Trim(out, "-")
}

var backupSessionNameRegex = regexp.MustCompile(`^(.*)-([0-9]+)$`)

// GenerateSnapshotName names the Snapshot of a BackupSession in a
// Repository: <repo>-<bc>-<session>-<unix>, from a BackupSession named
// <bc>-<session>-<unix>. A BackupSession name without a numeric suffix (one
// made with generateName, say) gives <repo>-<backupSession>.
func GenerateSnapshotName(repoName, backupSessionName string) string {
	m := backupSessionNameRegex.FindStringSubmatch(backupSessionName)
	if m == nil {
		return ValidNameWithPrefixNSuffix(repoName, backupSessionName, "")
	}
	return ValidNameWithPrefixNSuffix(repoName, m[1], m[2])
}

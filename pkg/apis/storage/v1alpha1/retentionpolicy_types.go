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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	ResourceKindRetentionPolicy     = "RetentionPolicy"
	ResourceSingularRetentionPolicy = "retentionpolicy"
	ResourcePluralRetentionPolicy   = "retentionpolicies"
)

// +genclient
// +genclient:noStatus
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=retentionpolicies,singular=retentionpolicy,categories={kubestash,appscode},scope=Namespaced
// +kubebuilder:printcolumn:name="Max-Retention-Period",type="string",JSONPath=".spec.maxRetentionPeriod"
// +kubebuilder:printcolumn:name="Default",type="boolean",JSONPath=".spec.default"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"

// RetentionPolicy says which old Snapshots of a repository to remove after
// each backup. Other namespaces may use it as far as spec.usagePolicy allows.
type RetentionPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec says which Snapshots to keep. It is required so that its rule
	// (maxRetentionPeriod or successfulSnapshots) can't be skipped.
	// +required
	Spec RetentionPolicySpec `json:"spec"`
}

// RetentionPolicySpec is which Snapshots to keep.
// +kubebuilder:validation:XValidation:rule="has(self.maxRetentionPeriod) || has(self.successfulSnapshots)",message="at least one of spec.maxRetentionPeriod or spec.successfulSnapshots must be set"
type RetentionPolicySpec struct {
	// MaxRetentionPeriod removes Snapshots older than this, in the form
	// <n>y<n>mo<n>w<n>d<n>h<n>m with any part left out, e.g. 30d12h30m or 2mo
	// (mo = 30 days, y = 365 days, w = 7 days).
	// +optional
	MaxRetentionPeriod RetentionPeriod `json:"maxRetentionPeriod,omitempty"`

	// UsagePolicy says which namespaces may use this policy; by default
	// only its own namespace (from: Same).
	// +default={}
	// +kubebuilder:default={}
	// +optional
	UsagePolicy *UsagePolicy `json:"usagePolicy,omitempty"`

	// SuccessfulSnapshots is how many successful Snapshots to keep.
	// +optional
	SuccessfulSnapshots *SuccessfulSnapshotsKeepPolicy `json:"successfulSnapshots,omitempty"`

	// FailedSnapshots is how many failed Snapshots to keep; by default the
	// last one.
	// +default={"last":1}
	// +kubebuilder:default={last: 1}
	// +optional
	FailedSnapshots *FailedSnapshotsKeepPolicy `json:"failedSnapshots,omitempty"`

	// Default marks this as the default policy of the namespaces allowed to
	// use it. A namespace should have at most one default.
	// +optional
	Default bool `json:"default,omitempty"`
}

// RetentionPeriod is a duration such as "1y2mo3w4d5h6m"; see
// ParseMaxRetentionPeriod.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=64
// +kubebuilder:validation:Pattern=`^([0-9]+y)?([0-9]+mo)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?$`
type RetentionPeriod string

// SuccessfulSnapshotsKeepPolicy is how many successful Snapshots to keep,
// like restic forget --keep-last/--keep-hourly/... .
type SuccessfulSnapshotsKeepPolicy struct {
	// Last keeps the newest N Snapshots.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Last *int32 `json:"last,omitempty"`

	// Hourly keeps the newest Snapshot of each of the last N hours.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Hourly *int32 `json:"hourly,omitempty"`

	// Daily keeps the newest Snapshot of each of the last N days.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Daily *int32 `json:"daily,omitempty"`

	// Weekly keeps the newest Snapshot of each of the last N weeks.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Weekly *int32 `json:"weekly,omitempty"`

	// Monthly keeps the newest Snapshot of each of the last N months.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Monthly *int32 `json:"monthly,omitempty"`

	// Yearly keeps the newest Snapshot of each of the last N years.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Yearly *int32 `json:"yearly,omitempty"`
}

// FailedSnapshotsKeepPolicy is how many failed Snapshots to keep.
type FailedSnapshotsKeepPolicy struct {
	// Last keeps the newest N failed Snapshots; 1 by default.
	// +default=1
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +optional
	Last *int32 `json:"last,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// RetentionPolicyList is a list of RetentionPolicies.
type RetentionPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RetentionPolicy `json:"items"`
}

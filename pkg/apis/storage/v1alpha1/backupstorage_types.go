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

	"kubestash.dev/kubestash/pkg/apis/kmapi"
)

const (
	ResourceKindBackupStorage     = "BackupStorage"
	ResourceSingularBackupStorage = "backupstorage"
	ResourcePluralBackupStorage   = "backupstorages"
)

// BackupStoragePhase is the overall state of a BackupStorage.
// +kubebuilder:validation:Enum=Ready;NotReady
type BackupStoragePhase string

const (
	BackupStoragePhaseReady    BackupStoragePhase = "Ready"
	BackupStoragePhaseNotReady BackupStoragePhase = "NotReady"
)

// Condition types and reasons of a BackupStorage. Phase is Ready iff
// BackendInitialized is True and BackendSecretFound is absent or True.
const (
	TypeBackendInitialized               = "BackendInitialized"
	ReasonBackendInitializationSucceeded = "BackendInitializationSucceeded"
	ReasonBackendInitializationFailed    = "BackendInitializationFailed"

	TypeBackendSecretFound          = "BackendSecretFound"
	ReasonBackendSecretAvailable    = "BackendSecretAvailable"
	ReasonBackendSecretNotAvailable = "BackendSecretNotAvailable"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=backupstorages,singular=backupstorage,categories={kubestash,appscode,all},scope=Namespaced
// +kubebuilder:printcolumn:name="Provider",type="string",JSONPath=".spec.storage.provider"
// +kubebuilder:printcolumn:name="Default",type="boolean",JSONPath=".spec.default"
// +kubebuilder:printcolumn:name="Deletion-Policy",type="string",JSONPath=".spec.deletionPolicy"
// +kubebuilder:printcolumn:name="Total-Size",type="string",JSONPath=".status.totalSize"
// +kubebuilder:printcolumn:name="Phase",type="string",JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"

// BackupStorage is a backend (a bucket, a prefix in it, or a volume) where
// backed up data and the backup catalog are kept. Other namespaces may use
// it as far as spec.usagePolicy allows.
type BackupStorage struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BackupStorageSpec   `json:"spec,omitempty"`
	Status BackupStorageStatus `json:"status,omitempty"`
}

// BackupStorageSpec is the backend, who may use it and what deleting it does.
// +kubebuilder:validation:XValidation:rule="!has(self.runtimeSettings) || (!has(self.runtimeSettings.pod) && !has(self.runtimeSettings.container))",message="runtimeSettings is not supported yet (no storage initializer or cleaner Job runs here); remove it",fieldPath=".runtimeSettings"
type BackupStorageSpec struct {
	// Storage is the backend.
	// +required
	Storage Backend `json:"storage"`

	// UsagePolicy says which namespaces may use this storage; by default
	// only its own namespace (from: Same).
	// +default={}
	// +kubebuilder:default={}
	// +optional
	UsagePolicy *UsagePolicy `json:"usagePolicy,omitempty"`

	// Default marks this as the default storage of the namespaces allowed to
	// use it. A namespace should have at most one default.
	// +optional
	Default bool `json:"default,omitempty"`

	// DeletionPolicy: Delete (the default) keeps the data: the storage's
	// Repositories and Snapshots stop being served and come back with a
	// BackupStorage at the same place. WipeOut makes an explicit delete
	// remove everything this project wrote under the prefix (directory)
	// first; the deletion of the namespace never does.
	// +default="Delete"
	// +kubebuilder:default=Delete
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// RuntimeSettings for the storage initializer and cleaner jobs.
	// Refused: no such Job runs here (the controller initializes and
	// wipes the storage itself).
	// +optional
	RuntimeSettings RuntimeSettings `json:"runtimeSettings,omitempty"`
}

// BackupStorageStatus is the observed state of a BackupStorage.
type BackupStorageStatus struct {
	// Phase is Ready once the backend is initialized and its Secret found.
	// +optional
	Phase BackupStoragePhase `json:"phase,omitempty"`

	// TotalSize is the sum of the sizes of the Repositories in this storage,
	// for example "12.222 MiB".
	// +optional
	TotalSize string `json:"totalSize,omitempty"`

	// Repositories found in this storage.
	// +listType=atomic
	// +optional
	Repositories []RepositoryInfo `json:"repositories,omitempty"`

	// Conditions of this BackupStorage.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []kmapi.Condition `json:"conditions,omitempty"`
}

// RepositoryInfo is a Repository found in a BackupStorage.
type RepositoryInfo struct {
	// Name of the Repository.
	// +optional
	Name string `json:"name,omitempty"`

	// Namespace of the Repository.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Path of the Repository, relative to the storage prefix.
	// +optional
	Path string `json:"path,omitempty"`

	// Size of the backed up data in the Repository.
	// +optional
	Size string `json:"size,omitempty"`

	// Synced says whether the Repository has been synced from the backend.
	// +optional
	Synced *bool `json:"synced,omitempty"`

	// Error is why syncing the Repository failed.
	// +optional
	Error *string `json:"error,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// BackupStorageList is a list of BackupStorages.
type BackupStorageList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupStorage `json:"items"`
}

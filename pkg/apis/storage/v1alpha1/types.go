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

// DeletionPolicy says what deleting a BackupStorage does to the objects and
// data that belong to it.
// +kubebuilder:validation:Enum=Delete;WipeOut
type DeletionPolicy string

const (
	// DeletionPolicyDelete removes the catalog objects but keeps the data.
	DeletionPolicyDelete DeletionPolicy = "Delete"
	// DeletionPolicyWipeOut removes the catalog objects and the data.
	DeletionPolicyWipeOut DeletionPolicy = "WipeOut"
)

// BackupConfigDeletionPolicy says what deleting a BackupConfiguration does to
// the Repositories it created.
// +kubebuilder:validation:Enum=Delete;WipeOut;Retain
type BackupConfigDeletionPolicy string

const (
	BackupConfigDeletionPolicyDelete  BackupConfigDeletionPolicy = "Delete"
	BackupConfigDeletionPolicyWipeOut BackupConfigDeletionPolicy = "WipeOut"
	BackupConfigDeletionPolicyRetain  BackupConfigDeletionPolicy = "Retain"
)

// RepositoryPhase is the state of a Repository. It lives here, where upstream
// keeps it, because BackupConfiguration status reports it too.
// +kubebuilder:validation:Enum=NotReady;Ready
type RepositoryPhase string

const (
	RepositoryNotReady RepositoryPhase = "NotReady"
	RepositoryReady    RepositoryPhase = "Ready"
)

// StorageProvider names the kind of backend. Only these four exist in the
// KubeStash API (swift, b2 and rest were Stash v1 only).
// +kubebuilder:validation:Enum=local;s3;gcs;azure
type StorageProvider string

const (
	ProviderLocal StorageProvider = "local"
	ProviderS3    StorageProvider = "s3"
	ProviderGCS   StorageProvider = "gcs"
	ProviderAzure StorageProvider = "azure"
)

// Backend is the remote storage: a provider and the settings of that
// provider. Exactly the struct named by provider must be set.
// +kubebuilder:validation:XValidation:rule="self.provider != 'local' || has(self.local)",message="local must be set when provider is local",fieldPath=".local"
// +kubebuilder:validation:XValidation:rule="self.provider != 's3' || has(self.s3)",message="s3 must be set when provider is s3",fieldPath=".s3"
// +kubebuilder:validation:XValidation:rule="self.provider != 'gcs' || has(self.gcs)",message="gcs must be set when provider is gcs",fieldPath=".gcs"
// +kubebuilder:validation:XValidation:rule="self.provider != 'azure' || has(self.azure)",message="azure must be set when provider is azure",fieldPath=".azure"
// +kubebuilder:validation:XValidation:rule="[has(self.local), has(self.s3), has(self.gcs), has(self.azure)].filter(x, x).size() <= 1",message="only one of local, s3, gcs, azure may be set, the one named by provider"
// +kubebuilder:validation:XValidation:rule="self.provider == 'local' || self.provider == 's3'",message="providers gcs and azure are not supported yet: use s3 (Google Cloud Storage and most Azure gateways speak S3) or local",fieldPath=".provider"
type Backend struct {
	// Provider is the kind of backend: local, s3, gcs or azure.
	// +required
	Provider StorageProvider `json:"provider"`

	// Local is a volume (hostPath, NFS, PVC, ...) used as the backend.
	// +optional
	Local *LocalSpec `json:"local,omitempty"`

	// S3 is an AWS S3 or S3 compatible bucket (MinIO, ...).
	// +optional
	S3 *S3Spec `json:"s3,omitempty"`

	// GCS is a Google Cloud Storage bucket.
	// +optional
	GCS *GCSSpec `json:"gcs,omitempty"`

	// Azure is an Azure Blob container.
	// +optional
	Azure *AzureSpec `json:"azure,omitempty"`
}

// LocalSpec is a volume mounted into the jobs and used as the backend.
// +kubebuilder:validation:XValidation:rule="[has(self.persistentVolumeClaim), has(self.emptyDir), has(self.hostPath), has(self.configMap), has(self.secret), has(self.nfs)].filter(x, x).size() == 1",message="local must set exactly one volume source (hostPath, nfs, persistentVolumeClaim, emptyDir, configMap or secret)"
type LocalSpec struct {
	// The volume that holds the backend. Only one source may be set.
	VolumeSource `json:",inline"`

	// MaxConnections limits concurrent uploads/downloads/deletes.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxConnections int64 `json:"maxConnections,omitempty"`

	// MountPath is where the volume is mounted in the jobs.
	// +kubebuilder:validation:MinLength=1
	// +required
	MountPath string `json:"mountPath"`

	// SubPath inside the volume; empty means its root.
	// +optional
	SubPath string `json:"subPath,omitempty"`
}

// S3Spec is an AWS S3 or S3 compatible bucket.
type S3Spec struct {
	// Endpoint is the URL of the S3 service, for example https://s3.amazonaws.com.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`

	// Bucket is the name of the bucket.
	// +kubebuilder:validation:MinLength=1
	// +required
	Bucket string `json:"bucket"`

	// Prefix is the directory inside the bucket that holds this backend.
	// +optional
	Prefix string `json:"prefix,omitempty"`

	// Region of the bucket.
	// +optional
	Region string `json:"region,omitempty"`

	// SecretName is the Secret with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
	// and optionally CA_CERT_DATA. Empty means credential-less (IRSA etc.).
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// MaxConnections limits concurrent uploads/downloads/deletes.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxConnections int64 `json:"maxConnections,omitempty"`

	// InsecureTLS skips TLS certificate verification. Use with care.
	// +optional
	InsecureTLS bool `json:"insecureTLS,omitempty"`
}

// GCSSpec is a Google Cloud Storage bucket.
type GCSSpec struct {
	// Bucket is the name of the bucket.
	// +kubebuilder:validation:MinLength=1
	// +required
	Bucket string `json:"bucket"`

	// Prefix is the directory inside the bucket that holds this backend.
	// +optional
	Prefix string `json:"prefix,omitempty"`

	// MaxConnections limits concurrent uploads/downloads/deletes.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxConnections int64 `json:"maxConnections,omitempty"`

	// SecretName is the Secret with GOOGLE_PROJECT_ID and
	// GOOGLE_SERVICE_ACCOUNT_JSON_KEY. Empty means workload identity.
	// +optional
	SecretName string `json:"secretName,omitempty"`
}

// AzureSpec is an Azure Blob container.
type AzureSpec struct {
	// StorageAccount is the Azure Storage Account name.
	// +kubebuilder:validation:MinLength=1
	// +required
	StorageAccount string `json:"storageAccount"`

	// Container is the Blob container name.
	// +kubebuilder:validation:MinLength=1
	// +required
	Container string `json:"container"`

	// Prefix is the directory inside the container that holds this backend.
	// +optional
	Prefix string `json:"prefix,omitempty"`

	// MaxConnections limits concurrent uploads/downloads/deletes.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxConnections int64 `json:"maxConnections,omitempty"`

	// SecretName is the Secret with AZURE_ACCOUNT_KEY. Empty means workload identity.
	// +optional
	SecretName string `json:"secretName,omitempty"`
}

// UsagePolicy restricts which namespaces may use a shared resource
// (BackupStorage, RetentionPolicy).
type UsagePolicy struct {
	// AllowedNamespaces says which namespaces may use the resource.
	// Defaulted to {} so that from gets its own default (Same).
	// +default={}
	// +kubebuilder:default={}
	// +optional
	AllowedNamespaces AllowedNamespaces `json:"allowedNamespaces,omitempty"`
}

// AllowedNamespaces selects the namespaces allowed to use a resource.
// +kubebuilder:validation:XValidation:rule="!has(self.from) || self.from != 'Selector' || has(self.selector)",message="allowedNamespaces.selector must be set when allowedNamespaces.from is Selector",fieldPath=".selector"
type AllowedNamespaces struct {
	// From is All (every namespace), Selector (namespaces whose labels match
	// selector) or Same (only the resource's own namespace, the default).
	// +default="Same"
	// +kubebuilder:default=Same
	// +optional
	From *FromNamespaces `json:"from,omitempty"`

	// Selector matches Namespace labels; required when from is Selector.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// FromNamespaces is how AllowedNamespaces picks namespaces.
// +kubebuilder:validation:Enum=All;Selector;Same
type FromNamespaces string

const (
	NamespacesFromAll      FromNamespaces = "All"
	NamespacesFromSelector FromNamespaces = "Selector"
	NamespacesFromSame     FromNamespaces = "Same"
)

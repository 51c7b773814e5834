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
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
)

const (
	ResourceKindFunction     = "Function"
	ResourceSingularFunction = "function"
	ResourcePluralFunction   = "functions"
)

// +genclient
// +genclient:nonNamespaced
// +genclient:noStatus
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=functions,singular=function,shortName=fn,categories={kubestash,appscode,all},scope=Cluster
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"

// Function is the container that runs an addon task. Its args may use
// envsubst variables such as ${namespace:=default}.
type Function struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec FunctionSpec `json:"spec,omitempty"`
}

// FunctionSpec is a container definition.
// +kubebuilder:validation:XValidation:rule="!has(self.runtimeSettings) || (!has(self.runtimeSettings.nice) && !has(self.runtimeSettings.ionice))",message="runtimeSettings.nice and ionice are not supported yet; remove them",fieldPath=".runtimeSettings"
type FunctionSpec struct {
	// Image of the container.
	// +optional
	Image string `json:"image,omitempty"`

	// Command overrides the image's entrypoint.
	// +listType=atomic
	// +optional
	Command []string `json:"command,omitempty"`

	// Args to the entrypoint.
	// +listType=atomic
	// +optional
	Args []string `json:"args,omitempty"`

	// WorkingDir of the container.
	// +optional
	WorkingDir string `json:"workingDir,omitempty"`

	// Ports the container exposes.
	// +listType=atomic
	// +optional
	Ports []corev1.ContainerPort `json:"ports,omitempty"`

	// VolumeMounts of the container.
	// +listType=atomic
	// +optional
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`

	// VolumeDevices (block devices) of the container.
	// +listType=atomic
	// +optional
	VolumeDevices []corev1.VolumeDevice `json:"volumeDevices,omitempty"`

	// RuntimeSettings of the container.
	// +optional
	RuntimeSettings *storagev1alpha1.ContainerRuntimeSettings `json:"runtimeSettings,omitempty"`

	// AvailableVersions are the versions a variable in image may resolve to,
	// e.g. for image: ghcr.io/kubedb/mongodb-restic-plugin:v0.7.0_${DB_VERSION}.
	// +listType=atomic
	// +optional
	AvailableVersions []string `json:"availableVersions,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// FunctionList is a list of Functions.
type FunctionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Function `json:"items"`
}

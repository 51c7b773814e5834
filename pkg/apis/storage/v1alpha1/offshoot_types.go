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
)

// The types in this file stand in for upstream's kmodules offshoot-api
// types (same JSON keys) with fewer fields, so the CRD schemas stay small.
// They live in storage, the lowest CRD group, so core and addons can use them.

// VolumeSource is the subset of corev1.VolumeSource that backup jobs use.
// Only one member may be set.
type VolumeSource struct {
	// +optional
	PersistentVolumeClaim *corev1.PersistentVolumeClaimVolumeSource `json:"persistentVolumeClaim,omitempty"`
	// +optional
	EmptyDir *corev1.EmptyDirVolumeSource `json:"emptyDir,omitempty"`
	// +optional
	HostPath *corev1.HostPathVolumeSource `json:"hostPath,omitempty"`
	// +optional
	ConfigMap *corev1.ConfigMapVolumeSource `json:"configMap,omitempty"`
	// +optional
	Secret *corev1.SecretVolumeSource `json:"secret,omitempty"`
	// +optional
	NFS *corev1.NFSVolumeSource `json:"nfs,omitempty"`
}

// ToCore converts to a corev1.VolumeSource.
func (v VolumeSource) ToCore() corev1.VolumeSource {
	c := v.DeepCopy()
	return corev1.VolumeSource{
		PersistentVolumeClaim: c.PersistentVolumeClaim,
		EmptyDir:              c.EmptyDir,
		HostPath:              c.HostPath,
		ConfigMap:             c.ConfigMap,
		Secret:                c.Secret,
		NFS:                   c.NFS,
	}
}

// Volume is a named VolumeSource, like corev1.Volume.
// +kubebuilder:validation:XValidation:rule="[has(self.persistentVolumeClaim), has(self.emptyDir), has(self.hostPath), has(self.configMap), has(self.secret), has(self.nfs)].filter(x, x).size() == 1",message="a volume must set exactly one of persistentVolumeClaim, emptyDir, hostPath, configMap, secret, nfs"
type Volume struct {
	// Name of the volume; volumeMounts refer to it.
	// +kubebuilder:validation:MinLength=1
	// +required
	Name string `json:"name"`

	VolumeSource `json:",inline"`
}

// PartialObjectMeta is the metadata a template may set on what it creates.
type PartialObjectMeta struct {
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// PersistentVolumeClaimTemplate describes a PVC to create for a job.
type PersistentVolumeClaimTemplate struct {
	// +optional
	Metadata PartialObjectMeta `json:"metadata,omitempty"`
	// Spec of the claim.
	// +optional
	Spec corev1.PersistentVolumeClaimSpec `json:"spec,omitempty"`
}

// RuntimeSettings configures the pod and the container of a job that
// KubeStash creates (storage initializer, hook executor, ...).
type RuntimeSettings struct {
	// +optional
	Pod *PodRuntimeSettings `json:"pod,omitempty"`
	// +optional
	Container *ContainerRuntimeSettings `json:"container,omitempty"`
}

// PodRuntimeSettings are pod-level settings.
type PodRuntimeSettings struct {
	// PodLabels are added to the pod.
	// +optional
	PodLabels map[string]string `json:"podLabels,omitempty"`
	// PodAnnotations are added to the pod.
	// +optional
	PodAnnotations map[string]string `json:"podAnnotations,omitempty"`
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// ServiceAccountAnnotations are added to the ServiceAccount KubeStash
	// creates (for example cloud workload identity annotations).
	// +optional
	ServiceAccountAnnotations map[string]string `json:"serviceAccountAnnotations,omitempty"`
	// +optional
	AutomountServiceAccountToken *bool `json:"automountServiceAccountToken,omitempty"`
	// +optional
	NodeName string `json:"nodeName,omitempty"`
	// +optional
	SecurityContext *corev1.PodSecurityContext `json:"securityContext,omitempty"`
	// +listType=atomic
	// +optional
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// +optional
	SchedulerName string `json:"schedulerName,omitempty"`
	// +listType=atomic
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
	// +optional
	Priority *int32 `json:"priority,omitempty"`
	// +optional
	RuntimeClassName *string `json:"runtimeClassName,omitempty"`
	// +optional
	EnableServiceLinks *bool `json:"enableServiceLinks,omitempty"`
}

// ContainerRuntimeSettings are container-level settings.
type ContainerRuntimeSettings struct {
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	// +optional
	SecurityContext *corev1.SecurityContext `json:"securityContext,omitempty"`
	// Nice sets the CPU scheduling priority of the backup process (nice(1)).
	// +optional
	Nice *NiceSettings `json:"nice,omitempty"`
	// Ionice sets the IO scheduling class and priority (ionice(1)).
	// +optional
	Ionice *IONiceSettings `json:"ionice,omitempty"`
	// Env is added to the container's environment.
	// +listType=atomic
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`
	// EnvFrom is added to the container's environment sources.
	// +listType=atomic
	// +optional
	EnvFrom []corev1.EnvFromSource `json:"envFrom,omitempty"`
}

// NiceSettings are the arguments of nice(1).
type NiceSettings struct {
	// Adjustment is added to the niceness, -20 (favourable) to 19.
	// +kubebuilder:validation:Minimum=-20
	// +kubebuilder:validation:Maximum=19
	// +optional
	Adjustment *int32 `json:"adjustment,omitempty"`
}

// IONiceSettings are the arguments of ionice(1).
type IONiceSettings struct {
	// Class is 0 (none), 1 (realtime), 2 (best-effort) or 3 (idle).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3
	// +optional
	Class *int32 `json:"class,omitempty"`
	// ClassData is the priority within the class, 0 (highest) to 7.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=7
	// +optional
	ClassData *int32 `json:"classData,omitempty"`
}

// PodTemplateSpec is the template of a job's pod: labels and annotations for
// the pod (metadata) and the Job (controller), and pod settings (spec).
type PodTemplateSpec struct {
	// Metadata of the pod.
	// +optional
	Metadata PartialObjectMeta `json:"metadata,omitempty"`
	// Controller is metadata for the Job that owns the pod.
	// +optional
	Controller PartialObjectMeta `json:"controller,omitempty"`
	// Spec holds pod-level settings.
	// +optional
	Spec PodSpec `json:"spec,omitempty"`
}

// PodSpec is the subset of pod settings a user may set for a backup or
// restore job.
type PodSpec struct {
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// +optional
	AutomountServiceAccountToken *bool `json:"automountServiceAccountToken,omitempty"`
	// SecurityContext of the pod; hostPath and PVC backends often need
	// runAsUser 0 or an fsGroup.
	// +optional
	SecurityContext *corev1.PodSecurityContext `json:"securityContext,omitempty"`
	// ContainerSecurityContext applies to the executor container.
	// +optional
	ContainerSecurityContext *corev1.SecurityContext `json:"containerSecurityContext,omitempty"`
	// +listType=atomic
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// +listType=atomic
	// +optional
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
	// +optional
	Priority *int32 `json:"priority,omitempty"`
	// +optional
	SchedulerName string `json:"schedulerName,omitempty"`
	// +optional
	RuntimeClassName *string `json:"runtimeClassName,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	TerminationGracePeriodSeconds *int64 `json:"terminationGracePeriodSeconds,omitempty"`
	// Resources of the executor container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
}

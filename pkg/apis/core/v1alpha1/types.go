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
	"k8s.io/apimachinery/pkg/runtime"

	addonsv1alpha1 "kubestash.dev/kubestash/pkg/apis/addons/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
)

// AddonInfo says which Addon and tasks back up or restore a target. The
// catalog's RestoreSession uses it too (validated by the catalog server).
// +kubebuilder:validation:XValidation:rule="!has(self.containerRuntimeSettings) || (!has(self.containerRuntimeSettings.nice) && !has(self.containerRuntimeSettings.ionice))",message="containerRuntimeSettings.nice and ionice are not supported yet; remove them",fieldPath=".containerRuntimeSettings"
type AddonInfo struct {
	// Name of the Addon, e.g. pvc-addon.
	// +kubebuilder:validation:MinLength=1
	// +required
	Name string `json:"name"`

	// Tasks of the Addon to run, with their parameters.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +required
	Tasks []TaskReference `json:"tasks"`

	// ContainerRuntimeSettings for the executor container.
	// +optional
	ContainerRuntimeSettings *storagev1alpha1.ContainerRuntimeSettings `json:"containerRuntimeSettings,omitempty"`

	// JobTemplate is the pod template of the backup/restore Job.
	// +optional
	JobTemplate *storagev1alpha1.PodTemplateSpec `json:"jobTemplate,omitempty"`
}

// TaskReference is one task of an Addon and its configuration.
// +kubebuilder:validation:XValidation:rule="!has(self.targetVolumes)",message="targetVolumes is not supported yet; remove it",fieldPath=".targetVolumes"
type TaskReference struct {
	// Name of the task in the Addon, e.g. logical-backup.
	// +kubebuilder:validation:MinLength=1
	// +required
	Name string `json:"name"`

	// Variables used to resolve the task, e.g. PVC_NAME.
	// +listType=atomic
	// +optional
	Variables []corev1.EnvVar `json:"variables,omitempty"`

	// Params for the task, in the shape its Addon expects.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	Params *runtime.RawExtension `json:"params,omitempty"`

	// TargetVolumes are volumes of the target to mount into the job.
	// +optional
	TargetVolumes *TargetVolumeInfo `json:"targetVolumes,omitempty"`

	// AddonVolumes override volumes of the Addon's volumeTemplate by name.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +optional
	AddonVolumes []AddonVolumeInfo `json:"addonVolumes,omitempty"`
}

// TargetVolumeInfo is volumes of the target and where to mount them.
type TargetVolumeInfo struct {
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Volumes []storagev1alpha1.Volume `json:"volumes,omitempty"`
	// +listType=atomic
	// +optional
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`
	// VolumeClaimTemplates of a StatefulSet target.
	// +listType=atomic
	// +optional
	VolumeClaimTemplates []storagev1alpha1.PersistentVolumeClaimTemplate `json:"volumeClaimTemplates,omitempty"`
}

// The rule on AddonVolumeInfo: whoever may edit a BackupConfiguration or
// RestoreSession in a namespace writes it, so its source may only be one
// of that namespace's own (pkg/addon.UserVolumeSources). A hostPath or nfs
// here would run the Job, as root for a restore, on the node's files or on
// another tenant's storage; such sources only come from the Addon
// (cluster-scoped, written by an admin). The source's own rule
// (addonsv1alpha1.VolumeSource) makes it set exactly one member, so this
// is an allow-list. The catalog's RestoreSession is not a CRD: the catalog
// server applies the same rule in Go (pkg/registry/catalog/restoresessionrest),
// and so does the Job's builder (pkg/addon) for objects stored before.

// AddonVolumeInfo replaces the source of an Addon volumeTemplate entry.
// The source may only be a persistentVolumeClaim, emptyDir, configMap,
// secret or volumeClaimTemplate; hostPath, nfs and other node-level
// sources only come from the Addon.
// +kubebuilder:validation:XValidation:rule="!has(self.source) || (!has(self.source.hostPath) && !has(self.source.nfs) && [has(self.source.persistentVolumeClaim), has(self.source.emptyDir), has(self.source.configMap), has(self.source.secret), has(self.source.volumeClaimTemplate)].exists(x, x))",message="only persistentVolumeClaim, emptyDir, configMap, secret and volumeClaimTemplate (ephemeral) volumes may be set by a user; hostPath, nfs and other node-level sources only come from the Addon's volumeTemplate",fieldPath=".source"
type AddonVolumeInfo struct {
	// Name of the volumeTemplate entry to override.
	// +kubebuilder:validation:MinLength=1
	// +required
	Name string `json:"name"`

	// Source of the volume.
	// +optional
	Source *addonsv1alpha1.VolumeSource `json:"source,omitempty"`
}

// HookInfo is a hook to run before or after a backup or restore. Upstream
// also has volumes, volumeMounts and runtimeSettings for Function executors;
// they are left out until such hooks are supported (they triple the schema).
type HookInfo struct {
	// Name of the hook.
	// +optional
	Name string `json:"name,omitempty"`

	// HookTemplate that defines the hook. It may be in another namespace if
	// its usagePolicy allows.
	// +optional
	HookTemplate *kmapi.ObjectReference `json:"hookTemplate,omitempty"`

	// Params for the hook, in the shape its HookTemplate expects.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	Params *runtime.RawExtension `json:"params,omitempty"`

	// MaxRetry is how often to retry a failed hook; 0 (the default) means no retry.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxRetry int32 `json:"maxRetry,omitempty"`

	// Timeout of one execution of the hook, e.g. 30s.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// ExecutionPolicy: Always (the default), OnSuccess or OnFailure of the
	// backup/restore.
	// +default="Always"
	// +kubebuilder:default=Always
	// +optional
	ExecutionPolicy HookExecutionPolicy `json:"executionPolicy,omitempty"`

	// Variables used to resolve the HookTemplate.
	// +listType=atomic
	// +optional
	Variables []corev1.EnvVar `json:"variables,omitempty"`
}

// HookExecutionPolicy says when a hook runs.
// +kubebuilder:validation:Enum=Always;OnSuccess;OnFailure
type HookExecutionPolicy string

const (
	ExecuteAlways    HookExecutionPolicy = "Always"
	ExecuteOnSuccess HookExecutionPolicy = "OnSuccess"
	ExecuteOnFailure HookExecutionPolicy = "OnFailure"
)

// HookStatus is the execution state of the hooks of a session.
type HookStatus struct {
	// +listType=atomic
	// +optional
	PreHooks []HookExecutionStatus `json:"preHooks,omitempty"`
	// +listType=atomic
	// +optional
	PostHooks []HookExecutionStatus `json:"postHooks,omitempty"`
}

// HookExecutionStatus is the state of one hook.
type HookExecutionStatus struct {
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	Phase HookExecutionPhase `json:"phase,omitempty"`
}

// HookExecutionPhase is the state of one hook.
// +kubebuilder:validation:Enum=Succeeded;Failed;Pending
type HookExecutionPhase string

const (
	HookExecutionSucceeded HookExecutionPhase = "Succeeded"
	HookExecutionFailed    HookExecutionPhase = "Failed"
	HookExecutionPending   HookExecutionPhase = "Pending"
)

// ResourceFoundStatus says whether an object something depends on exists.
// The fields of kmapi.TypedObjectReference are spelled out rather than
// embedded: applyconfiguration-gen can't inline a type it has no apply
// configuration for.
type ResourceFoundStatus struct {
	// +optional
	APIGroup string `json:"apiGroup,omitempty"`
	// +optional
	Kind string `json:"kind,omitempty"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	Found *bool `json:"found,omitempty"`
}

// RetryConfig is how to retry a failed backup.
type RetryConfig struct {
	// MaxRetry is how many times to retry; 1 by default.
	// +default=1
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxRetry int32 `json:"maxRetry,omitempty"`

	// Delay before a retry, e.g. 1m; retry at once if unset.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`
	// +optional
	Delay metav1.Duration `json:"delay,omitempty"`
}

const (
	// TypeMetricsPushed marks the last step of a session: metrics pushed.
	TypeMetricsPushed               = "MetricsPushed"
	ReasonSuccessfullyPushedMetrics = "SuccessfullyPushedMetrics"
	ReasonFailedToPushMetrics       = "FailedToPushMetrics"
)

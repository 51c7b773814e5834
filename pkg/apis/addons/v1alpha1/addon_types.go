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
	ResourceKindAddon     = "Addon"
	ResourceSingularAddon = "addon"
	ResourcePluralAddon   = "addons"
)

// +genclient
// +genclient:nonNamespaced
// +genclient:noStatus
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=addons,singular=addon,categories={kubestash,appscode,all},scope=Cluster
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"

// Addon lists the backup and restore tasks available for one kind of target
// (for example pvc-addon for PersistentVolumeClaims).
type Addon struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec AddonSpec `json:"spec,omitempty"`
}

// AddonSpec is the backup and restore tasks of an addon.
type AddonSpec struct {
	// BackupTasks are the tasks that take a backup.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	// +optional
	BackupTasks []Task `json:"backupTasks,omitempty"`

	// RestoreTasks are the tasks that restore a backup.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	// +optional
	RestoreTasks []Task `json:"restoreTasks,omitempty"`
}

// Task is one backup or restore task: which Function runs it, with which
// parameters and volumes. Every task runs as a Job with restic here.
// +kubebuilder:validation:XValidation:rule="!has(self.driver) || self.driver == 'Restic'",message="only driver Restic is supported yet",fieldPath=".driver"
// +kubebuilder:validation:XValidation:rule="!has(self.executor) || self.executor == 'Job'",message="only executor Job is supported yet",fieldPath=".executor"
type Task struct {
	// Name of the task, e.g. logical-backup.
	// +kubebuilder:validation:MinLength=1
	// +required
	Name string `json:"name"`

	// Function is the name of the Function that runs the task.
	// +optional
	Function string `json:"function,omitempty"`

	// Driver is the tool that moves the data, e.g. Restic.
	// +optional
	Driver Driver `json:"driver,omitempty"`

	// Executor is what runs the task. Only Job is used for volumes.
	// +optional
	Executor TaskExecutor `json:"executor,omitempty"`

	// Singleton runs the task in one job instead of one per pod/replica.
	// +optional
	Singleton bool `json:"singleton,omitempty"`

	// Parameters the task accepts.
	// +listType=atomic
	// +optional
	Parameters []ParameterDefinition `json:"parameters,omitempty"`

	// VolumeTemplate are the volumes the task's job needs. A
	// BackupConfiguration may override them with addonVolumes.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +optional
	VolumeTemplate []VolumeTemplate `json:"volumeTemplate,omitempty"`

	// VolumeMounts mount the VolumeTemplate volumes into the job's container.
	// +listType=atomic
	// +optional
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`
}

// Driver is the tool that uploads and downloads the data.
// +kubebuilder:validation:Enum=Restic;WalG;VolumeSnapshotter;Solr;Medusa;ClickHouseBackup;Neo4jAdmin
type Driver string

const (
	DriverRestic            Driver = "Restic"
	DriverWalG              Driver = "WalG"
	DriverVolumeSnapshotter Driver = "VolumeSnapshotter"
	DriverSolr              Driver = "Solr"
	DriverMedusa            Driver = "Medusa"
	DriverClickHouseBackup  Driver = "ClickHouseBackup"
	DriverNeo4jAdmin        Driver = "Neo4jAdmin"
)

// TaskExecutor is what runs a task.
// +kubebuilder:validation:Enum=Job;Sidecar;EphemeralContainer;MultiLevelJob
type TaskExecutor string

const (
	ExecutorJob                TaskExecutor = "Job"
	ExecutorSidecar            TaskExecutor = "Sidecar"
	ExecutorEphemeralContainer TaskExecutor = "EphemeralContainer"
	ExecutorMultiLevelJob      TaskExecutor = "MultiLevelJob"
)

// ParameterDefinition describes one parameter of a task or hook.
type ParameterDefinition struct {
	// Name of the parameter, e.g. paths.
	// +optional
	Name string `json:"name,omitempty"`

	// Usage explains the parameter.
	// +optional
	Usage string `json:"usage,omitempty"`

	// Required says the parameter must be given.
	// +optional
	Required bool `json:"required,omitempty"`

	// Default value of the parameter.
	// +optional
	Default string `json:"default,omitempty"`
}

// VolumeTemplate is a volume a task's job needs.
type VolumeTemplate struct {
	// Name of the volume; volumeMounts refer to it.
	// +kubebuilder:validation:MinLength=1
	// +required
	Name string `json:"name"`

	// Usage explains what the volume is for.
	// +optional
	Usage string `json:"usage,omitempty"`

	// Source of the volume. Values may use variables such as ${PVC_NAME}.
	// +optional
	Source *VolumeSource `json:"source,omitempty"`
}

// VolumeSource is a volume source or a template of a PVC to create. Only
// one member may be set.
// +kubebuilder:validation:XValidation:rule="[has(self.persistentVolumeClaim), has(self.emptyDir), has(self.hostPath), has(self.configMap), has(self.secret), has(self.nfs), has(self.volumeClaimTemplate)].filter(x, x).size() == 1",message="source must set exactly one of persistentVolumeClaim, emptyDir, hostPath, configMap, secret, nfs, volumeClaimTemplate"
type VolumeSource struct {
	storagev1alpha1.VolumeSource `json:",inline"`

	// VolumeClaimTemplate describes a PVC that KubeStash creates for the job.
	// +optional
	VolumeClaimTemplate *storagev1alpha1.PersistentVolumeClaimTemplate `json:"volumeClaimTemplate,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// AddonList is a list of Addons.
type AddonList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Addon `json:"items"`
}

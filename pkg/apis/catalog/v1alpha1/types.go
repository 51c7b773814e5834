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

	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
)

// DeletionPolicy says what deleting a Repository or Snapshot does to the
// backed up data.
// +kubebuilder:validation:Enum=Delete;WipeOut
type DeletionPolicy string

const (
	// DeletionPolicyDelete removes the catalog object only; the data stays.
	DeletionPolicyDelete DeletionPolicy = "Delete"
	// DeletionPolicyWipeOut removes the catalog object and its data.
	DeletionPolicyWipeOut DeletionPolicy = "WipeOut"
)

// ============================== Repository ==============================

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Repository is a directory in a BackupStorage that holds the backups of one
// application, with a list of its recent Snapshots.
//
// Printer columns (served by the table convertor): Integrity
// (.status.integrity), Snapshot-Count (.status.snapshotCount), Size
// (.status.size), Phase (.status.phase), Last-Successful-Backup
// (.status.lastBackupTime), Age.
type Repository struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec RepositorySpec `json:"spec,omitempty"`
	// +optional
	Status RepositoryStatus `json:"status,omitempty"`
}

// RepositorySpec names the backed up application and where its data is kept.
type RepositorySpec struct {
	// AppRef is the application backed up in this Repository.
	// +optional
	AppRef kmapi.TypedObjectReference `json:"appRef,omitempty"`

	// StorageRef is the BackupStorage that holds the data. It may be in
	// another namespace if that storage's usage policy allows it.
	// +optional
	StorageRef kmapi.ObjectReference `json:"storageRef,omitempty"`

	// Path is the directory of this Repository, relative to the prefix of
	// the BackupStorage. Immutable.
	// +optional
	Path string `json:"path,omitempty"`

	// DeletionPolicy says what deleting the Repository does: Delete (the
	// default) keeps the data in the backend, WipeOut removes it.
	// +kubebuilder:default=Delete
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// EncryptionSecret is the Secret holding the restic password. Without a
	// namespace it is looked up in the namespace of the Repository's owner.
	// +optional
	EncryptionSecret *kmapi.ObjectReference `json:"encryptionSecret,omitempty"`

	// Paused stops all further processing of this Repository.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// RepositoryStatus is the observed state of a Repository.
type RepositoryStatus struct {
	// Phase is Ready once the Repository is initialized in the backend.
	// +optional
	Phase RepositoryPhase `json:"phase,omitempty"`

	// LastBackupTime is when the last successful backup finished.
	// +optional
	LastBackupTime *metav1.Time `json:"lastBackupTime,omitempty"`

	// Integrity is false when any data in the Repository is damaged.
	// +optional
	Integrity *bool `json:"integrity,omitempty"`

	// SnapshotCount is the number of Snapshots in the Repository.
	// +optional
	SnapshotCount *int32 `json:"snapshotCount,omitempty"`

	// Size is the amount of data in the Repository, e.g. "2.262 KiB".
	// +optional
	Size string `json:"size,omitempty"`

	// RecentSnapshots lists the latest Snapshots (at most 5).
	// +optional
	// +listType=atomic
	RecentSnapshots []SnapshotInfo `json:"recentSnapshots,omitempty"`

	// Conditions of the Repository.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []kmapi.Condition `json:"conditions,omitempty"`

	// ComponentPaths lists the component directories in this Repository.
	// +optional
	// +listType=atomic
	ComponentPaths []string `json:"componentPaths,omitempty"`
}

// RepositoryPhase is the state of a Repository.
// +kubebuilder:validation:Enum=NotReady;Ready
type RepositoryPhase string

const (
	RepositoryNotReady RepositoryPhase = "NotReady"
	RepositoryReady    RepositoryPhase = "Ready"
)

// SnapshotInfo is the short form of a Snapshot kept in its Repository.
type SnapshotInfo struct {
	// Name of the Snapshot.
	// +optional
	Name string `json:"name,omitempty"`

	// Phase of the Snapshot.
	// +optional
	Phase SnapshotPhase `json:"phase,omitempty"`

	// Session that took the Snapshot.
	// +optional
	Session string `json:"session,omitempty"`

	// Size of the Snapshot.
	// +optional
	Size string `json:"size,omitempty"`

	// SnapshotTime is when the Snapshot was taken.
	// +optional
	SnapshotTime *metav1.Time `json:"snapshotTime,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// RepositoryList is a list of Repositories.
type RepositoryList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []Repository `json:"items"`
}

// =============================== Snapshot ===============================

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Snapshot is one backup run of an application into one Repository. It may
// hold several components (for a PVC, the single component "dump").
//
// Printer columns (served by the table convertor): Repository
// (.spec.repository), Session (.spec.session), Snapshot-Time
// (.status.snapshotTime), Deletion-Policy (.spec.deletionPolicy), Phase
// (.status.phase), Age.
type Snapshot struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec SnapshotSpec `json:"spec,omitempty"`
	// +optional
	Status SnapshotStatus `json:"status,omitempty"`
}

// BackupType says whether a Snapshot holds a full or an incremental backup.
// +kubebuilder:validation:Enum=FullBackup;IncrementalBackup
type BackupType string

const (
	BackupTypeFull        BackupType = "FullBackup"
	BackupTypeIncremental BackupType = "IncrementalBackup"
)

// SnapshotSpec names the application, Repository and session of a Snapshot.
type SnapshotSpec struct {
	// SnapshotID is a ULID that identifies the Snapshot.
	// +optional
	SnapshotID string `json:"snapshotID,omitempty"`

	// Type is FullBackup or IncrementalBackup.
	// +optional
	Type BackupType `json:"type,omitempty"`

	// Repository is the name of the Repository that stores this Snapshot.
	// +optional
	Repository string `json:"repository,omitempty"`

	// Session is the name of the backup session (in the
	// BackupConfiguration) that took this Snapshot.
	// +optional
	Session string `json:"session,omitempty"`

	// BackupSession is the name of the BackupSession that took it.
	// +optional
	BackupSession string `json:"backupSession,omitempty"`

	// Version is the layout version of the data in the Repository ("v1").
	// +optional
	Version string `json:"version,omitempty"`

	// AppRef is the application backed up in this Snapshot.
	// +optional
	AppRef kmapi.TypedObjectReference `json:"appRef,omitempty"`

	// DeletionPolicy says what deleting the Snapshot does: Delete (the
	// default) keeps the data in the backend, WipeOut removes it.
	// +kubebuilder:default=Delete
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// Paused stops all further processing of this Snapshot.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// SnapshotStatus is the observed state of a Snapshot.
type SnapshotStatus struct {
	// Phase of the backup into this Snapshot.
	// +optional
	Phase SnapshotPhase `json:"phase,omitempty"`

	// VerificationStatus says whether the Snapshot has been verified.
	// +optional
	VerificationStatus VerificationStatus `json:"verificationStatus,omitempty"`

	// VerificationSession is the session that verified the Snapshot.
	// +optional
	VerificationSession string `json:"verificationSession,omitempty"`

	// SnapshotTime is when the Snapshot was taken.
	// +optional
	SnapshotTime *metav1.Time `json:"snapshotTime,omitempty"`

	// LastUpdateTime is when the Snapshot was last updated.
	// +optional
	LastUpdateTime *metav1.Time `json:"lastUpdateTime,omitempty"`

	// Size is the sum of the component sizes; empty while a restic
	// component has no size yet.
	// +optional
	Size string `json:"size,omitempty"`

	// Integrity is the AND of the component integrities; unset while a
	// restic component has not been checked.
	// +optional
	Integrity *bool `json:"integrity,omitempty"`

	// Conditions of the Snapshot.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []kmapi.Condition `json:"conditions,omitempty"`

	// TotalComponents is the number of components this Snapshot will hold.
	// +optional
	TotalComponents int32 `json:"totalComponents,omitempty"`

	// Components holds the backup state of each component, by name.
	// +optional
	// +mapType=granular
	Components map[string]Component `json:"components,omitempty"`
}

// SnapshotPhase is the state of a Snapshot.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed
type SnapshotPhase string

const (
	SnapshotPending   SnapshotPhase = "Pending"
	SnapshotRunning   SnapshotPhase = "Running"
	SnapshotSucceeded SnapshotPhase = "Succeeded"
	SnapshotFailed    SnapshotPhase = "Failed"
)

// VerificationStatus says whether a Snapshot has been verified.
// +kubebuilder:validation:Enum=Verified;NotVerified;VerificationFailed
type VerificationStatus string

const (
	SnapshotVerified           VerificationStatus = "Verified"
	SnapshotNotVerified        VerificationStatus = "NotVerified"
	SnapshotVerificationFailed VerificationStatus = "VerificationFailed"
)

// Driver is the tool that uploaded a component's data.
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

// Component is the backup state of one component of a Snapshot.
type Component struct {
	// Path of the component's data, relative to the Repository path, e.g.
	// repository/v1/<session>/<component>.
	// +optional
	Path string `json:"path,omitempty"`

	// Phase of the component's backup.
	// +optional
	Phase ComponentPhase `json:"phase,omitempty"`

	// Size of the component's restic repository.
	// +optional
	Size string `json:"size,omitempty"`

	// Duration of the component's backup, e.g. "7.534461497s".
	// +optional
	Duration string `json:"duration,omitempty"`

	// Integrity is the result of restic check on the component.
	// +optional
	Integrity *bool `json:"integrity,omitempty"`

	// Error says why the component's backup failed.
	// +optional
	Error string `json:"error,omitempty"`

	// Driver that uploaded the data.
	// +optional
	Driver Driver `json:"driver,omitempty"`

	// ResticStats holds one entry per backed up path for the Restic driver.
	// Both the current shape ({summary, progress}) and the flat shape of
	// KubeStash up to v2026.5 are read; the current one is written.
	// +optional
	// +listType=atomic
	ResticStats []ResticStats `json:"resticStats,omitempty"`

	// VolumeSnapshotterStats holds one entry per PVC for the
	// VolumeSnapshotter driver.
	// +optional
	// +listType=atomic
	VolumeSnapshotterStats []VolumeSnapshotterStats `json:"volumeSnapshotterStats,omitempty"`
}

// ComponentPhase is the backup state of one component.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed
type ComponentPhase string

const (
	ComponentPhasePending   ComponentPhase = "Pending"
	ComponentPhaseRunning   ComponentPhase = "Running"
	ComponentPhaseSucceeded ComponentPhase = "Succeeded"
	ComponentPhaseFailed    ComponentPhase = "Failed"
)

// ResticStats is what restic reported for one backed up path.
type ResticStats struct {
	// Summary of the finished restic backup.
	// +optional
	Summary *ResticSummary `json:"summary,omitempty"`

	// Progress of the running restic backup.
	// +optional
	Progress *ResticProgress `json:"progress,omitempty"`
}

// ResticSummary is the result of one restic backup.
type ResticSummary struct {
	// ID of the restic snapshot.
	// +optional
	ID string `json:"id,omitempty"`

	// Uploaded is the amount of data added to the repository.
	// +optional
	Uploaded string `json:"uploaded,omitempty"`

	// HostPath is the path that was backed up.
	// +optional
	HostPath string `json:"hostPath,omitempty"`

	// Size of the restic snapshot.
	// +optional
	Size string `json:"size,omitempty"`

	// StartTime is when restic started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// EndTime is when restic finished.
	// +optional
	EndTime *metav1.Time `json:"endTime,omitempty"`
}

// ResticProgress is the progress of a running restic backup, from restic's
// JSON status lines. Amounts of data are human units ("1.049 KiB").
type ResticProgress struct {
	// SecondsElapsed since the backup started.
	// +optional
	SecondsElapsed int64 `json:"secondsElapsed,omitempty"`

	// PercentDone of the backup, e.g. "42.00%".
	// +optional
	PercentDone string `json:"percentDone,omitempty"`

	// TotalFiles to back up.
	// +optional
	TotalFiles int64 `json:"totalFiles,omitempty"`

	// FilesDone so far.
	// +optional
	FilesDone int64 `json:"filesDone,omitempty"`

	// BackupDone is the amount of data backed up so far.
	// +optional
	BackupDone string `json:"backupDone,omitempty"`

	// Total amount of data to back up.
	// +optional
	Total string `json:"total,omitempty"`

	// Speed of the transfer, e.g. "1.2 MiB/s".
	// +optional
	Speed string `json:"speed,omitempty"`
}

// VolumeSnapshotterStats is the result for one PVC of the
// VolumeSnapshotter driver.
type VolumeSnapshotterStats struct {
	// PVCName is the PVC that was snapshotted.
	// +optional
	PVCName string `json:"pvcName,omitempty"`

	// HostPath is the path of the PVC in the workload.
	// +optional
	HostPath string `json:"hostPath,omitempty"`

	// VolumeSnapshotName is the VolumeSnapshot created.
	// +optional
	VolumeSnapshotName string `json:"volumeSnapshotName,omitempty"`

	// VolumeSnapshotTime is when the VolumeSnapshot was created.
	// +optional
	VolumeSnapshotTime *metav1.Time `json:"volumeSnapshotTime,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// SnapshotList is a list of Snapshots.
type SnapshotList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []Snapshot `json:"items"`
}

// ============================= BackupSession ============================

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// BackupSession is one backup run of a session of a BackupConfiguration.
//
// Printer columns (served by the table convertor): Invoker-Type
// (.spec.invoker.kind), Invoker-Name (.spec.invoker.name), Phase
// (.status.phase), Duration (.status.duration), Age.
type BackupSession struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec BackupSessionSpec `json:"spec,omitempty"`
	// +optional
	Status BackupSessionStatus `json:"status,omitempty"`
}

// BackupSessionSpec names what triggered the backup. Immutable.
type BackupSessionSpec struct {
	// Invoker is the BackupConfiguration that this backup belongs to
	// (apiGroup core.kubestash.com, kind BackupConfiguration).
	// +optional
	Invoker corev1.TypedLocalObjectReference `json:"invoker,omitempty"`

	// Session is the name of the session in the invoker.
	// +optional
	Session string `json:"session,omitempty"`

	// RetryLeft is how many more times a failed backup is retried.
	// +optional
	RetryLeft int32 `json:"retryLeft,omitempty"`

	// BackupTimeout after which the backup counts as failed. No timeout
	// when unset.
	// +optional
	BackupTimeout *metav1.Duration `json:"backupTimeout,omitempty"`
}

// BackupSessionStatus is the observed state of a BackupSession.
type BackupSessionStatus struct {
	// Phase of the backup.
	// +optional
	Phase BackupSessionPhase `json:"phase,omitempty"`

	// Duration of the backup, e.g. "25s".
	// +optional
	Duration string `json:"duration,omitempty"`

	// BackupDeadline after which the backup counts as failed.
	// +optional
	BackupDeadline *metav1.Time `json:"backupDeadline,omitempty"`

	// TotalSnapshots is the number of Snapshots this session creates.
	// +optional
	TotalSnapshots *int32 `json:"totalSnapshots,omitempty"`

	// Snapshots lists the state of each Snapshot of this session.
	// +optional
	// +listType=atomic
	Snapshots []BackupSessionSnapshotStatus `json:"snapshots,omitempty"`

	// Hooks holds the state of the pre- and post-backup hooks.
	// +optional
	Hooks HookStatus `json:"hooks,omitempty"`

	// RetentionPolicies says whether each retention policy was applied.
	// The JSON key is singular, as upstream.
	// +optional
	// +listType=atomic
	RetentionPolicies []RetentionPolicyApplyStatus `json:"retentionPolicy,omitempty"`

	// Retried says whether this session has been retried.
	// +optional
	Retried *bool `json:"retried,omitempty"`

	// NextRetry is when the failed backup will be retried.
	// +optional
	NextRetry *metav1.Time `json:"nextRetry,omitempty"`

	// Conditions of the BackupSession.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []kmapi.Condition `json:"conditions,omitempty"`
}

// BackupSessionPhase is the state of a BackupSession.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed;Skipped
type BackupSessionPhase string

const (
	BackupSessionPending   BackupSessionPhase = "Pending"
	BackupSessionRunning   BackupSessionPhase = "Running"
	BackupSessionSucceeded BackupSessionPhase = "Succeeded"
	BackupSessionFailed    BackupSessionPhase = "Failed"
	BackupSessionSkipped   BackupSessionPhase = "Skipped"
)

// BackupSessionSnapshotStatus is the state of one Snapshot of a
// BackupSession (upstream's core SnapshotStatus; renamed here because this
// package also holds Snapshot's own status).
type BackupSessionSnapshotStatus struct {
	// Name of the Snapshot.
	// +optional
	Name string `json:"name,omitempty"`

	// Phase of the Snapshot.
	// +optional
	Phase SnapshotPhase `json:"phase,omitempty"`

	// AppRef is the application backed up in the Snapshot.
	// +optional
	AppRef *kmapi.TypedObjectReference `json:"appRef,omitempty"`

	// Repository that stores the Snapshot.
	// +optional
	Repository string `json:"repository,omitempty"`
}

// HookStatus holds the state of the hooks of a session.
type HookStatus struct {
	// PreHooks are the hooks run before the backup or restore.
	// +optional
	// +listType=atomic
	PreHooks []HookExecutionStatus `json:"preHooks,omitempty"`

	// PostHooks are the hooks run after the backup or restore.
	// +optional
	// +listType=atomic
	PostHooks []HookExecutionStatus `json:"postHooks,omitempty"`
}

// HookExecutionStatus is the state of one hook.
type HookExecutionStatus struct {
	// Name of the hook.
	// +optional
	Name string `json:"name,omitempty"`

	// Phase of the hook.
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

// RetentionPolicyApplyStatus is the state of applying one retention policy
// to one Repository.
type RetentionPolicyApplyStatus struct {
	// Ref is the RetentionPolicy applied.
	// +optional
	Ref kmapi.ObjectReference `json:"ref,omitempty"`

	// Repository it was applied to.
	// +optional
	Repository string `json:"repository,omitempty"`

	// Phase of applying it.
	// +optional
	Phase RetentionPolicyApplyPhase `json:"phase,omitempty"`

	// Error says why applying it failed.
	// +optional
	Error string `json:"error,omitempty"`
}

// RetentionPolicyApplyPhase is the state of applying a retention policy.
// +kubebuilder:validation:Enum=Pending;Applied;FailedToApply
type RetentionPolicyApplyPhase string

const (
	RetentionPolicyPending       RetentionPolicyApplyPhase = "Pending"
	RetentionPolicyApplied       RetentionPolicyApplyPhase = "Applied"
	RetentionPolicyFailedToApply RetentionPolicyApplyPhase = "FailedToApply"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// BackupSessionList is a list of BackupSessions.
type BackupSessionList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []BackupSession `json:"items"`
}

// ============================ RestoreSession ============================

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// RestoreSession is one restore run of a Snapshot into a target.
//
// Printer columns (served by the table convertor): Repository
// (.spec.dataSource.repository), Phase (.status.phase), Duration
// (.status.duration), Age.
type RestoreSession struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec RestoreSessionSpec `json:"spec,omitempty"`
	// +optional
	Status RestoreSessionStatus `json:"status,omitempty"`
}

// RestoreSessionSpec says what to restore, from where and how.
type RestoreSessionSpec struct {
	// Target is where the data is restored to. Defaults to the appRef of
	// the Snapshot.
	// +optional
	Target *kmapi.TypedObjectReference `json:"target,omitempty"`

	// DataSource is the Repository and Snapshot to restore from.
	// +optional
	DataSource RestoreDataSource `json:"dataSource,omitempty"`

	// Addon and its restore task that perform the restore.
	// +optional
	Addon *corev1alpha1.AddonInfo `json:"addon,omitempty"`

	// Hooks run before and after the restore.
	// +optional
	Hooks *RestoreHooks `json:"hooks,omitempty"`

	// RestoreTimeout after which the restore counts as failed.
	// +optional
	RestoreTimeout *metav1.Duration `json:"restoreTimeout,omitempty"`
}

// RestoreDataSource is the data a RestoreSession restores.
type RestoreDataSource struct {
	// Namespace of the Repository and Snapshot. The server defaults it to
	// the RestoreSession's namespace.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Repository to restore from; required with snapshot "latest" or PITR.
	// +optional
	Repository string `json:"repository,omitempty"`

	// Snapshot to restore: a name, or "latest". Leave empty with PITR.
	// +optional
	Snapshot string `json:"snapshot,omitempty"`

	// PITR picks the latest Snapshot at or before a point in time instead
	// of a named one.
	// +optional
	PITR *PITR `json:"pitr,omitempty"`

	// Components to restore; all components of the Snapshot when empty.
	// +optional
	// +listType=atomic
	Components []string `json:"components,omitempty"`

	// EncryptionSecret is the Secret holding the restic password. Without
	// a namespace it is looked up in the RestoreSession's namespace.
	// +optional
	EncryptionSecret *kmapi.ObjectReference `json:"encryptionSecret,omitempty"`
}

// PITR is a point-in-time restore request.
type PITR struct {
	// TargetTime to restore to.
	// +optional
	TargetTime *metav1.Time `json:"targetTime,omitempty"`

	// Exclusive skips a Snapshot taken exactly at targetTime.
	// +optional
	Exclusive bool `json:"exclusive,omitempty"`
}

// RestoreHooks are the hooks run around a restore.
type RestoreHooks struct {
	// PreRestore hooks run before the restore.
	// +optional
	// +listType=atomic
	PreRestore []corev1alpha1.HookInfo `json:"preRestore,omitempty"`

	// PostRestore hooks run after the restore.
	// +optional
	// +listType=atomic
	PostRestore []corev1alpha1.HookInfo `json:"postRestore,omitempty"`
}

// RestoreSessionStatus is the observed state of a RestoreSession.
type RestoreSessionStatus struct {
	// Phase of the restore.
	// +optional
	Phase RestorePhase `json:"phase,omitempty"`

	// TargetFound says whether the restore target exists.
	// +optional
	TargetFound *bool `json:"targetFound,omitempty"`

	// Duration of the restore.
	// +optional
	Duration string `json:"duration,omitempty"`

	// RestoreDeadline after which the restore counts as failed.
	// +optional
	RestoreDeadline *metav1.Time `json:"restoreDeadline,omitempty"`

	// TotalComponents is the number of components to restore.
	// +optional
	TotalComponents int32 `json:"totalComponents,omitempty"`

	// Components holds the restore state of each component, by name.
	// +optional
	// +mapType=granular
	Components map[string]RestoreComponent `json:"components,omitempty"`

	// Hooks holds the state of the pre- and post-restore hooks.
	// +optional
	Hooks HookStatus `json:"hooks,omitempty"`

	// Dependencies says whether each object the restore needs was found.
	// +optional
	// +listType=atomic
	Dependencies []ResourceFoundStatus `json:"dependencies,omitempty"`

	// PausedBackups are the BackupConfigurations paused for the restore.
	// +optional
	// +listType=atomic
	PausedBackups []kmapi.TypedObjectReference `json:"pausedBackups,omitempty"`

	// Conditions of the RestoreSession.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []kmapi.Condition `json:"conditions,omitempty"`
}

// RestorePhase is the state of a restore or of one restored component.
// +kubebuilder:validation:Enum=Pending;Running;Failed;Succeeded;Invalid;Unknown
type RestorePhase string

const (
	RestorePending      RestorePhase = "Pending"
	RestoreRunning      RestorePhase = "Running"
	RestoreFailed       RestorePhase = "Failed"
	RestoreSucceeded    RestorePhase = "Succeeded"
	RestoreInvalid      RestorePhase = "Invalid"
	RestorePhaseUnknown RestorePhase = "Unknown"
)

// RestoreComponent is the restore state of one component (upstream's
// ComponentRestoreStatus).
type RestoreComponent struct {
	// Phase of the component's restore.
	// +optional
	Phase RestorePhase `json:"phase,omitempty"`

	// Progress of the running restic restore.
	// +optional
	Progress *RestoreProgress `json:"progress,omitempty"`

	// Duration of the component's restore.
	// +optional
	Duration string `json:"duration,omitempty"`

	// Error says why the component's restore failed.
	// +optional
	Error string `json:"error,omitempty"`
}

// RestoreProgress is the progress of a running restic restore.
type RestoreProgress struct {
	// SecondsElapsed since the restore started.
	// +optional
	SecondsElapsed int64 `json:"secondsElapsed,omitempty"`

	// PercentDone of the restore, e.g. "42.00%".
	// +optional
	PercentDone string `json:"percentDone,omitempty"`

	// TotalFiles to restore.
	// +optional
	TotalFiles int64 `json:"totalFiles,omitempty"`

	// FilesDone so far.
	// +optional
	FilesDone int64 `json:"filesDone,omitempty"`

	// RestoreDone is the amount of data restored so far.
	// +optional
	RestoreDone string `json:"restoreDone,omitempty"`

	// Total amount of data to restore.
	// +optional
	Total string `json:"total,omitempty"`

	// Speed of the transfer.
	// +optional
	Speed string `json:"speed,omitempty"`
}

// ResourceFoundStatus says whether an object a restore depends on exists.
// Upstream inlines kmapi.TypedObjectReference; its fields are spelled out
// here (same JSON) because applyconfiguration-gen cannot inline a type that
// has no apply configuration.
type ResourceFoundStatus struct {
	// APIGroup of the object; empty for the core group.
	// +optional
	APIGroup string `json:"apiGroup,omitempty"`

	// Kind of the object.
	// +optional
	Kind string `json:"kind,omitempty"`

	// Namespace of the object.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Name of the object.
	// +optional
	Name string `json:"name,omitempty"`

	// Found is true when the object exists.
	// +optional
	Found *bool `json:"found,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// RestoreSessionList is a list of RestoreSessions.
type RestoreSessionList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []RestoreSession `json:"items"`
}

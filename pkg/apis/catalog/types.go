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

package catalog

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
)

// DeletionPolicy says what deleting a Repository or Snapshot does to the
// backed up data.
type DeletionPolicy string

const (
	// DeletionPolicyDelete removes the catalog object only; the data stays.
	DeletionPolicyDelete DeletionPolicy = "Delete"
	// DeletionPolicyWipeOut removes the catalog object and its data.
	DeletionPolicyWipeOut DeletionPolicy = "WipeOut"
)

// ============================== Repository ==============================

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Repository is a directory in a BackupStorage that holds the backups of one
// application, with a list of its recent Snapshots.
//
// Printer columns (served by the table convertor): Integrity
// (.status.integrity), Snapshot-Count (.status.snapshotCount), Size
// (.status.size), Phase (.status.phase), Last-Successful-Backup
// (.status.lastBackupTime), Age.
type Repository struct {
	metav1.TypeMeta
	metav1.ObjectMeta

	Spec   RepositorySpec
	Status RepositoryStatus
}

// RepositorySpec names the backed up application and where its data is kept.
type RepositorySpec struct {
	// AppRef is the application backed up in this Repository.
	AppRef kmapi.TypedObjectReference

	// StorageRef is the BackupStorage that holds the data. It may be in
	// another namespace if that storage's usage policy allows it.
	StorageRef kmapi.ObjectReference

	// Path is the directory of this Repository, relative to the prefix of
	// the BackupStorage. Immutable.
	Path string

	// DeletionPolicy says what deleting the Repository does: Delete (the
	// default) keeps the data in the backend, WipeOut removes it.
	DeletionPolicy DeletionPolicy

	// EncryptionSecret is the Secret holding the restic password. Without a
	// namespace it is looked up in the namespace of the Repository's owner.
	EncryptionSecret *kmapi.ObjectReference

	// Paused stops all further processing of this Repository.
	Paused bool
}

// RepositoryStatus is the observed state of a Repository.
type RepositoryStatus struct {
	// Phase is Ready once the Repository is initialized in the backend.
	Phase RepositoryPhase

	// LastBackupTime is when the last successful backup finished.
	LastBackupTime *metav1.Time

	// Integrity is false when any data in the Repository is damaged.
	Integrity *bool

	// SnapshotCount is the number of Snapshots in the Repository.
	SnapshotCount *int32

	// Size is the amount of data in the Repository, e.g. "2.262 KiB".
	Size string

	// RecentSnapshots lists the latest Snapshots (at most 5).
	RecentSnapshots []SnapshotInfo

	// Conditions of the Repository.
	Conditions []kmapi.Condition

	// ComponentPaths lists the component directories in this Repository.
	ComponentPaths []string
}

// RepositoryPhase is the state of a Repository.
type RepositoryPhase string

const (
	RepositoryNotReady RepositoryPhase = "NotReady"
	RepositoryReady    RepositoryPhase = "Ready"
)

// SnapshotInfo is the short form of a Snapshot kept in its Repository.
type SnapshotInfo struct {
	// Name of the Snapshot.
	Name string

	// Phase of the Snapshot.
	Phase SnapshotPhase

	// Session that took the Snapshot.
	Session string

	// Size of the Snapshot.
	Size string

	// SnapshotTime is when the Snapshot was taken.
	SnapshotTime *metav1.Time
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// RepositoryList is a list of Repositories.
type RepositoryList struct {
	metav1.TypeMeta
	metav1.ListMeta

	Items []Repository
}

// =============================== Snapshot ===============================

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Snapshot is one backup run of an application into one Repository. It may
// hold several components (for a PVC, the single component "dump").
//
// Printer columns (served by the table convertor): Repository
// (.spec.repository), Session (.spec.session), Snapshot-Time
// (.status.snapshotTime), Deletion-Policy (.spec.deletionPolicy), Phase
// (.status.phase), Age.
type Snapshot struct {
	metav1.TypeMeta
	metav1.ObjectMeta

	Spec   SnapshotSpec
	Status SnapshotStatus
}

// BackupType says whether a Snapshot holds a full or an incremental backup.
type BackupType string

const (
	BackupTypeFull        BackupType = "FullBackup"
	BackupTypeIncremental BackupType = "IncrementalBackup"
)

// SnapshotSpec names the application, Repository and session of a Snapshot.
type SnapshotSpec struct {
	// SnapshotID is a ULID that identifies the Snapshot.
	SnapshotID string

	// Type is FullBackup or IncrementalBackup.
	Type BackupType

	// Repository is the name of the Repository that stores this Snapshot.
	Repository string

	// Session is the name of the backup session (in the
	// BackupConfiguration) that took this Snapshot.
	Session string

	// BackupSession is the name of the BackupSession that took it.
	BackupSession string

	// Version is the layout version of the data in the Repository ("v1").
	Version string

	// AppRef is the application backed up in this Snapshot.
	AppRef kmapi.TypedObjectReference

	// DeletionPolicy says what deleting the Snapshot does: Delete (the
	// default) keeps the data in the backend, WipeOut removes it.
	DeletionPolicy DeletionPolicy

	// Paused stops all further processing of this Snapshot.
	Paused bool
}

// SnapshotStatus is the observed state of a Snapshot.
type SnapshotStatus struct {
	// Phase of the backup into this Snapshot.
	Phase SnapshotPhase

	// VerificationStatus says whether the Snapshot has been verified.
	VerificationStatus VerificationStatus

	// VerificationSession is the session that verified the Snapshot.
	VerificationSession string

	// SnapshotTime is when the Snapshot was taken.
	SnapshotTime *metav1.Time

	// LastUpdateTime is when the Snapshot was last updated.
	LastUpdateTime *metav1.Time

	// Size is the sum of the component sizes; empty while a restic
	// component has no size yet.
	Size string

	// Integrity is the AND of the component integrities; unset while a
	// restic component has not been checked.
	Integrity *bool

	// Conditions of the Snapshot.
	Conditions []kmapi.Condition

	// TotalComponents is the number of components this Snapshot will hold.
	TotalComponents int32

	// Components holds the backup state of each component, by name.
	Components map[string]Component
}

// SnapshotPhase is the state of a Snapshot.
type SnapshotPhase string

const (
	SnapshotPending   SnapshotPhase = "Pending"
	SnapshotRunning   SnapshotPhase = "Running"
	SnapshotSucceeded SnapshotPhase = "Succeeded"
	SnapshotFailed    SnapshotPhase = "Failed"
)

// VerificationStatus says whether a Snapshot has been verified.
type VerificationStatus string

const (
	SnapshotVerified           VerificationStatus = "Verified"
	SnapshotNotVerified        VerificationStatus = "NotVerified"
	SnapshotVerificationFailed VerificationStatus = "VerificationFailed"
)

// Driver is the tool that uploaded a component's data.
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
	Path string

	// Phase of the component's backup.
	Phase ComponentPhase

	// Size of the component's restic repository.
	Size string

	// Duration of the component's backup, e.g. "7.534461497s".
	Duration string

	// Integrity is the result of restic check on the component.
	Integrity *bool

	// Error says why the component's backup failed.
	Error string

	// Driver that uploaded the data.
	Driver Driver

	// ResticStats holds one entry per backed up path for the Restic driver.
	ResticStats []ResticStats

	// VolumeSnapshotterStats holds one entry per PVC for the
	// VolumeSnapshotter driver.
	VolumeSnapshotterStats []VolumeSnapshotterStats
}

// ComponentPhase is the backup state of one component.
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
	Summary *ResticSummary

	// Progress of the running restic backup.
	Progress *ResticProgress
}

// ResticSummary is the result of one restic backup.
type ResticSummary struct {
	// ID of the restic snapshot.
	ID string

	// Uploaded is the amount of data added to the repository.
	Uploaded string

	// HostPath is the path that was backed up.
	HostPath string

	// Size of the restic snapshot.
	Size string

	// StartTime is when restic started.
	StartTime *metav1.Time

	// EndTime is when restic finished.
	EndTime *metav1.Time
}

// ResticProgress is the progress of a running restic backup, from restic's
// JSON status lines. Amounts of data are human units ("1.049 KiB").
type ResticProgress struct {
	// SecondsElapsed since the backup started.
	SecondsElapsed int64

	// PercentDone of the backup, e.g. "42.00%".
	PercentDone string

	// TotalFiles to back up.
	TotalFiles int64

	// FilesDone so far.
	FilesDone int64

	// BackupDone is the amount of data backed up so far.
	BackupDone string

	// Total amount of data to back up.
	Total string

	// Speed of the transfer, e.g. "1.2 MiB/s".
	Speed string
}

// VolumeSnapshotterStats is the result for one PVC of the
// VolumeSnapshotter driver.
type VolumeSnapshotterStats struct {
	// PVCName is the PVC that was snapshotted.
	PVCName string

	// HostPath is the path of the PVC in the workload.
	HostPath string

	// VolumeSnapshotName is the VolumeSnapshot created.
	VolumeSnapshotName string

	// VolumeSnapshotTime is when the VolumeSnapshot was created.
	VolumeSnapshotTime *metav1.Time
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// SnapshotList is a list of Snapshots.
type SnapshotList struct {
	metav1.TypeMeta
	metav1.ListMeta

	Items []Snapshot
}

// ============================= BackupSession ============================

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// BackupSession is one backup run of a session of a BackupConfiguration.
//
// Printer columns (served by the table convertor): Invoker-Type
// (.spec.invoker.kind), Invoker-Name (.spec.invoker.name), Phase
// (.status.phase), Duration (.status.duration), Age.
type BackupSession struct {
	metav1.TypeMeta
	metav1.ObjectMeta

	Spec   BackupSessionSpec
	Status BackupSessionStatus
}

// BackupSessionSpec names what triggered the backup. Immutable.
type BackupSessionSpec struct {
	// Invoker is the BackupConfiguration that this backup belongs to
	// (apiGroup core.kubestash.com, kind BackupConfiguration).
	Invoker corev1.TypedLocalObjectReference

	// Session is the name of the session in the invoker.
	Session string

	// RetryLeft is how many more times a failed backup is retried.
	RetryLeft int32

	// BackupTimeout after which the backup counts as failed. No timeout
	// when unset.
	BackupTimeout *metav1.Duration
}

// BackupSessionStatus is the observed state of a BackupSession.
type BackupSessionStatus struct {
	// Phase of the backup.
	Phase BackupSessionPhase

	// Duration of the backup, e.g. "25s".
	Duration string

	// BackupDeadline after which the backup counts as failed.
	BackupDeadline *metav1.Time

	// TotalSnapshots is the number of Snapshots this session creates.
	TotalSnapshots *int32

	// Snapshots lists the state of each Snapshot of this session.
	Snapshots []BackupSessionSnapshotStatus

	// Hooks holds the state of the pre- and post-backup hooks.
	Hooks HookStatus

	// RetentionPolicies says whether each retention policy was applied.
	RetentionPolicies []RetentionPolicyApplyStatus

	// Retried says whether this session has been retried.
	Retried *bool

	// NextRetry is when the failed backup will be retried.
	NextRetry *metav1.Time

	// Conditions of the BackupSession.
	Conditions []kmapi.Condition
}

// BackupSessionPhase is the state of a BackupSession.
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
	Name string

	// Phase of the Snapshot.
	Phase SnapshotPhase

	// AppRef is the application backed up in the Snapshot.
	AppRef *kmapi.TypedObjectReference

	// Repository that stores the Snapshot.
	Repository string
}

// HookStatus holds the state of the hooks of a session.
type HookStatus struct {
	// PreHooks are the hooks run before the backup or restore.
	PreHooks []HookExecutionStatus

	// PostHooks are the hooks run after the backup or restore.
	PostHooks []HookExecutionStatus
}

// HookExecutionStatus is the state of one hook.
type HookExecutionStatus struct {
	// Name of the hook.
	Name string

	// Phase of the hook.
	Phase HookExecutionPhase
}

// HookExecutionPhase is the state of one hook.
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
	Ref kmapi.ObjectReference

	// Repository it was applied to.
	Repository string

	// Phase of applying it.
	Phase RetentionPolicyApplyPhase

	// Error says why applying it failed.
	Error string
}

// RetentionPolicyApplyPhase is the state of applying a retention policy.
type RetentionPolicyApplyPhase string

const (
	RetentionPolicyPending       RetentionPolicyApplyPhase = "Pending"
	RetentionPolicyApplied       RetentionPolicyApplyPhase = "Applied"
	RetentionPolicyFailedToApply RetentionPolicyApplyPhase = "FailedToApply"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// BackupSessionList is a list of BackupSessions.
type BackupSessionList struct {
	metav1.TypeMeta
	metav1.ListMeta

	Items []BackupSession
}

// ============================ RestoreSession ============================

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// RestoreSession is one restore run of a Snapshot into a target.
//
// Printer columns (served by the table convertor): Repository
// (.spec.dataSource.repository), Phase (.status.phase), Duration
// (.status.duration), Age.
type RestoreSession struct {
	metav1.TypeMeta
	metav1.ObjectMeta

	Spec   RestoreSessionSpec
	Status RestoreSessionStatus
}

// RestoreSessionSpec says what to restore, from where and how.
type RestoreSessionSpec struct {
	// Target is where the data is restored to. Defaults to the appRef of
	// the Snapshot.
	Target *kmapi.TypedObjectReference

	// DataSource is the Repository and Snapshot to restore from.
	DataSource RestoreDataSource

	// Addon and its restore task that perform the restore.
	Addon *corev1alpha1.AddonInfo

	// Hooks run before and after the restore.
	Hooks *RestoreHooks

	// RestoreTimeout after which the restore counts as failed.
	RestoreTimeout *metav1.Duration
}

// RestoreDataSource is the data a RestoreSession restores.
type RestoreDataSource struct {
	// Namespace of the Repository and Snapshot. The server defaults it to
	// the RestoreSession's namespace.
	Namespace string

	// Repository to restore from; required with snapshot "latest" or PITR.
	Repository string

	// Snapshot to restore: a name, or "latest". Leave empty with PITR.
	Snapshot string

	// PITR picks the latest Snapshot at or before a point in time instead
	// of a named one.
	PITR *PITR

	// Components to restore; all components of the Snapshot when empty.
	Components []string

	// EncryptionSecret is the Secret holding the restic password. Without
	// a namespace it is looked up in the RestoreSession's namespace.
	EncryptionSecret *kmapi.ObjectReference
}

// PITR is a point-in-time restore request.
type PITR struct {
	// TargetTime to restore to.
	TargetTime *metav1.Time

	// Exclusive skips a Snapshot taken exactly at targetTime.
	Exclusive bool
}

// RestoreHooks are the hooks run around a restore.
type RestoreHooks struct {
	// PreRestore hooks run before the restore.
	PreRestore []corev1alpha1.HookInfo

	// PostRestore hooks run after the restore.
	PostRestore []corev1alpha1.HookInfo
}

// RestoreSessionStatus is the observed state of a RestoreSession.
type RestoreSessionStatus struct {
	// Phase of the restore.
	Phase RestorePhase

	// TargetFound says whether the restore target exists.
	TargetFound *bool

	// Duration of the restore.
	Duration string

	// RestoreDeadline after which the restore counts as failed.
	RestoreDeadline *metav1.Time

	// TotalComponents is the number of components to restore.
	TotalComponents int32

	// Components holds the restore state of each component, by name.
	Components map[string]RestoreComponent

	// Hooks holds the state of the pre- and post-restore hooks.
	Hooks HookStatus

	// Dependencies says whether each object the restore needs was found.
	Dependencies []ResourceFoundStatus

	// PausedBackups are the BackupConfigurations paused for the restore.
	PausedBackups []kmapi.TypedObjectReference

	// Conditions of the RestoreSession.
	Conditions []kmapi.Condition
}

// RestorePhase is the state of a restore or of one restored component.
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
	Phase RestorePhase

	// Progress of the running restic restore.
	Progress *RestoreProgress

	// Duration of the component's restore.
	Duration string

	// Error says why the component's restore failed.
	Error string
}

// RestoreProgress is the progress of a running restic restore.
type RestoreProgress struct {
	// SecondsElapsed since the restore started.
	SecondsElapsed int64

	// PercentDone of the restore, e.g. "42.00%".
	PercentDone string

	// TotalFiles to restore.
	TotalFiles int64

	// FilesDone so far.
	FilesDone int64

	// RestoreDone is the amount of data restored so far.
	RestoreDone string

	// Total amount of data to restore.
	Total string

	// Speed of the transfer.
	Speed string
}

// ResourceFoundStatus says whether an object a restore depends on exists.
type ResourceFoundStatus struct {
	// APIGroup of the object; empty for the core group.
	APIGroup string

	// Kind of the object.
	Kind string

	// Namespace of the object.
	Namespace string

	// Name of the object.
	Name string

	// Found is true when the object exists.
	Found *bool
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// RestoreSessionList is a list of RestoreSessions.
type RestoreSessionList struct {
	metav1.TypeMeta
	metav1.ListMeta

	Items []RestoreSession
}

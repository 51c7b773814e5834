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
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
)

const (
	ResourceKindBackupConfiguration     = "BackupConfiguration"
	ResourceSingularBackupConfiguration = "backupconfiguration"
	ResourcePluralBackupConfiguration   = "backupconfigurations"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=backupconfigurations,singular=backupconfiguration,shortName=bc,categories={kubestash,appscode,all},scope=Namespaced
// +kubebuilder:printcolumn:name="Phase",type="string",JSONPath=".status.phase"
// +kubebuilder:printcolumn:name="Paused",type="boolean",JSONPath=".spec.paused"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"

// BackupConfiguration says what to back up (target), where (backends) and
// when and how (sessions).
type BackupConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BackupConfigurationSpec   `json:"spec,omitempty"`
	Status BackupConfigurationStatus `json:"status,omitempty"`
}

// BackupConfigurationSpec is the target, backends and sessions of a backup.
//
// The rules below stand in for upstream's validating webhook. Both loop over
// sessions x repositories, which is why those lists and the strings compared
// have maximum sizes (the apiserver bounds the cost of every rule).
//
// +kubebuilder:validation:XValidation:rule="!has(self.sessions) || self.sessions.all(s1, !has(s1.repositories) || s1.repositories.all(r1, self.sessions.all(s2, !has(s2.repositories) || s2.repositories.all(r2, r1.directory != r2.directory || (r1.name == r2.name && (has(r1.backend) ? r1.backend : \"\") == (has(r2.backend) ? r2.backend : \"\"))))))",message="spec.sessions[].repositories[].directory must be unique within a BackupConfiguration (only the same repository, with the same name and backend, may appear in several sessions)",fieldPath=".sessions"
// +kubebuilder:validation:XValidation:rule="!has(self.sessions) || self.sessions.all(s1, !has(s1.repositories) || s1.repositories.all(r1, self.sessions.all(s2, !has(s2.repositories) || s2.repositories.all(r2, r1.name != r2.name || (r1.directory == r2.directory && (has(r1.backend) ? r1.backend : \"\") == (has(r2.backend) ? r2.backend : \"\"))))))",message="spec.sessions[].repositories[].name used in several sessions must have the same directory and backend everywhere",fieldPath=".sessions"
// +kubebuilder:validation:XValidation:rule="!has(self.backends) || size(self.backends) == 0 || !has(self.sessions) || self.sessions.all(s, !has(s.repositories) || s.repositories.all(r, !has(r.backend) || r.backend == \"\" || self.backends.exists(b, b.name == r.backend)))",message="spec.sessions[].repositories[].backend must be the name of an entry in spec.backends",fieldPath=".sessions"
type BackupConfigurationSpec struct {
	// Target is the object to back up, e.g. {apiGroup: "", kind:
	// PersistentVolumeClaim, name: data}. It must be in the same namespace.
	// +required
	Target *kmapi.TypedObjectReference `json:"target"`

	// Backends are the storages to back up into. If empty, the default
	// BackupStorage allowed for this namespace is used.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Backends []BackendReference `json:"backends,omitempty"`

	// Sessions say when and how to back up, and into which repositories.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +required
	Sessions []Session `json:"sessions"`

	// Paused suspends the backup CronJobs and stops processing this
	// BackupConfiguration.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// BackendReference names a storage and the retention policy to apply in it.
type BackendReference struct {
	// Name of this backend; repositories refer to it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +required
	Name string `json:"name"`

	// StorageRef is the BackupStorage; it may be in another namespace if its
	// usagePolicy allows. If unset, the default BackupStorage is used.
	// +optional
	StorageRef *kmapi.ObjectReference `json:"storageRef,omitempty"`

	// RetentionPolicy to apply after each backup. If unset, the default
	// RetentionPolicy allowed for this namespace is used.
	// +optional
	RetentionPolicy *kmapi.ObjectReference `json:"retentionPolicy,omitempty"`
}

// Session is one backup schedule: when, with which addon, into which
// repositories.
type Session struct {
	SessionConfig `json:",inline"`

	// Addon and tasks that take the backup.
	// +required
	Addon *AddonInfo `json:"addon"`

	// Repositories to back up into. KubeStash creates a Repository for each.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +required
	Repositories []RepositoryInfo `json:"repositories"`
}

// SessionConfig is the schedule and behaviour of a session.
// +kubebuilder:validation:XValidation:rule="!has(self.hooks)",message="hooks are not supported yet (no HookTemplate kind exists); remove them",fieldPath=".hooks"
type SessionConfig struct {
	// Name of the session, unique in the BackupConfiguration.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +required
	Name string `json:"name"`

	// Scheduler is the CronJob that triggers the backups.
	// +required
	Scheduler *SchedulerSpec `json:"scheduler"`

	// Hooks to run before and after the backup.
	// +optional
	Hooks *BackupHooks `json:"hooks,omitempty"`

	// RetryConfig says how to retry a failed backup.
	// +optional
	RetryConfig *RetryConfig `json:"retryConfig,omitempty"`

	// BackupTimeout fails a backup that takes longer, e.g. 2h. No timeout by
	// default.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`
	// +optional
	BackupTimeout *metav1.Duration `json:"backupTimeout,omitempty"`

	// SessionHistoryLimit is how many old BackupSessions (and their Jobs) to
	// keep; 1 by default.
	// +default=1
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +optional
	SessionHistoryLimit int32 `json:"sessionHistoryLimit,omitempty"`
}

// SchedulerSpec is the CronJob that triggers a session.
type SchedulerSpec struct {
	// Schedule in cron format: five fields (minute hour day-of-month month
	// day-of-week; numbers, names like JAN or MON, *, ?, ranges a-b, steps
	// /n, lists a,b), or @yearly, @annually, @monthly, @weekly, @daily,
	// @midnight, @hourly, @every <duration>; optionally prefixed by
	// CRON_TZ=<zone> or TZ=<zone>.
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule=`self.matches(r'^((CRON_TZ|TZ)=[A-Za-z0-9_+/-]+ +| *)(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every +([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+|(\*|\?|([0-9]+|[A-Za-z]{3})(-([0-9]+|[A-Za-z]{3}))?)(/[0-9]+)?(,(\*|\?|([0-9]+|[A-Za-z]{3})(-([0-9]+|[A-Za-z]{3}))?)(/[0-9]+)?)*( +(\*|\?|([0-9]+|[A-Za-z]{3})(-([0-9]+|[A-Za-z]{3}))?)(/[0-9]+)?(,(\*|\?|([0-9]+|[A-Za-z]{3})(-([0-9]+|[A-Za-z]{3}))?)(/[0-9]+)?)*){4}) *$')`,message="not a valid cron expression: five fields (minute hour day-of-month month day-of-week), @hourly, @daily, @weekly, @monthly, @yearly or @every <duration>, optionally after CRON_TZ=<zone>"
	// +required
	Schedule string `json:"schedule"`

	// StartingDeadlineSeconds: a run that misses its time by more than this
	// is skipped and counted as failed.
	// +kubebuilder:validation:Minimum=0
	// +optional
	StartingDeadlineSeconds *int64 `json:"startingDeadlineSeconds,omitempty"`

	// ConcurrencyPolicy of the CronJob: Allow (the CronJob default), Forbid
	// or Replace.
	// +kubebuilder:validation:Enum=Allow;Forbid;Replace
	// +optional
	ConcurrencyPolicy batchv1.ConcurrencyPolicy `json:"concurrencyPolicy,omitempty"`

	// Suspend stops future runs; running ones continue.
	// +optional
	Suspend *bool `json:"suspend,omitempty"`

	// JobTemplate of the trigger Job. Required upstream; optional here
	// because every field in it is.
	// +optional
	JobTemplate JobTemplate `json:"jobTemplate,omitempty"`

	// SuccessfulJobsHistoryLimit is how many finished trigger Jobs to keep
	// (CronJob default 3).
	// +kubebuilder:validation:Minimum=0
	// +optional
	SuccessfulJobsHistoryLimit *int32 `json:"successfulJobsHistoryLimit,omitempty"`

	// FailedJobsHistoryLimit is how many failed trigger Jobs to keep
	// (CronJob default 1).
	// +kubebuilder:validation:Minimum=0
	// +optional
	FailedJobsHistoryLimit *int32 `json:"failedJobsHistoryLimit,omitempty"`
}

// JobTemplate is the part of batchv1.JobSpec a user may set for the trigger
// Job.
type JobTemplate struct {
	// +kubebuilder:validation:Minimum=0
	// +optional
	Parallelism *int32 `json:"parallelism,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	Completions *int32 `json:"completions,omitempty"`
	// +kubebuilder:validation:Minimum=1
	// +optional
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	BackoffLimit *int32 `json:"backoffLimit,omitempty"`
	// Template of the trigger Job's pod.
	// +optional
	Template storagev1alpha1.PodTemplateSpec `json:"template,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
	// +kubebuilder:validation:Enum=NonIndexed;Indexed
	// +optional
	CompletionMode *batchv1.CompletionMode `json:"completionMode,omitempty"`
	// +optional
	Suspend *bool `json:"suspend,omitempty"`
}

// RepositoryInfo is a repository a session backs up into; KubeStash creates
// the Repository from it.
// +kubebuilder:validation:XValidation:rule="!has(self.backupVerifier)",message="backupVerifier is not supported yet; remove it",fieldPath=".backupVerifier"
type RepositoryInfo struct {
	// Name of the Repository.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +required
	Name string `json:"name"`

	// Backend is the name of an entry in spec.backends; empty means the
	// default backend.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Backend string `json:"backend,omitempty"`

	// BackupVerifier verifies the backups in this repository.
	// +optional
	BackupVerifier *kmapi.ObjectReference `json:"backupVerifier,omitempty"`

	// Directory of the repository, relative to the storage prefix. It must
	// be unique in the storage.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +required
	Directory string `json:"directory"`

	// EncryptionSecret holds RESTIC_PASSWORD; its namespace defaults to the
	// BackupConfiguration's.
	// +optional
	EncryptionSecret *kmapi.ObjectReference `json:"encryptionSecret,omitempty"`

	// DeletionPolicy of the Repository: Delete, WipeOut or Retain (keep it
	// when the BackupConfiguration is deleted).
	// +optional
	DeletionPolicy storagev1alpha1.BackupConfigDeletionPolicy `json:"deletionPolicy,omitempty"`
}

// BackupHooks are the hooks of a backup session.
type BackupHooks struct {
	// PreBackup hooks run before the backup.
	// +listType=atomic
	// +optional
	PreBackup []HookInfo `json:"preBackup,omitempty"`

	// PostBackup hooks run after the backup.
	// +listType=atomic
	// +optional
	PostBackup []HookInfo `json:"postBackup,omitempty"`
}

// BackupConfigurationStatus is the observed state of a BackupConfiguration.
type BackupConfigurationStatus struct {
	// Backends: whether each backend's storage and retention policy are ready.
	// +listType=atomic
	// +optional
	Backends []BackendStatus `json:"backends,omitempty"`

	// Repositories: whether each repository is initialized.
	// +listType=atomic
	// +optional
	Repositories []RepoStatus `json:"repositories,omitempty"`

	// Dependencies: whether the objects this configuration needs exist.
	// +listType=atomic
	// +optional
	Dependencies []ResourceFoundStatus `json:"dependencies,omitempty"`

	// Sessions: the state of each session's scheduler.
	// +listType=atomic
	// +optional
	Sessions []SessionStatus `json:"sessions,omitempty"`

	// Phase is Invalid if validation failed, Ready if the target, every
	// backend and every session's scheduler are ready, else NotReady.
	// +optional
	Phase BackupInvokerPhase `json:"phase,omitempty"`

	// TargetFound says whether the target exists.
	// +optional
	TargetFound *bool `json:"targetFound,omitempty"`

	// Conditions of this BackupConfiguration.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []kmapi.Condition `json:"conditions,omitempty"`
}

// BackupInvokerPhase is the state of a BackupConfiguration.
// +kubebuilder:validation:Enum=NotReady;Ready;Invalid
type BackupInvokerPhase string

const (
	BackupInvokerNotReady BackupInvokerPhase = "NotReady"
	BackupInvokerReady    BackupInvokerPhase = "Ready"
	BackupInvokerInvalid  BackupInvokerPhase = "Invalid"
)

// BackendStatus is the state of one backend.
type BackendStatus struct {
	// +optional
	Name string `json:"name,omitempty"`
	// Ready is true when the storage is Ready and the retention policy found.
	// +optional
	Ready *bool `json:"ready,omitempty"`
	// +optional
	Storage *StorageStatus `json:"storage,omitempty"`
	// +optional
	RetentionPolicy *RetentionPolicyStatus `json:"retentionPolicy,omitempty"`
}

// StorageStatus is the state of a backend's BackupStorage.
type StorageStatus struct {
	// +optional
	Ref kmapi.ObjectReference `json:"ref,omitempty"`
	// +optional
	Phase storagev1alpha1.BackupStoragePhase `json:"phase,omitempty"`
	// Reason the storage is not usable.
	// +optional
	Reason string `json:"reason,omitempty"`
}

// RetentionPolicyStatus is the state of a backend's RetentionPolicy.
type RetentionPolicyStatus struct {
	// +optional
	Ref kmapi.ObjectReference `json:"ref,omitempty"`
	// +optional
	Found *bool `json:"found,omitempty"`
	// Reason the policy is not usable.
	// +optional
	Reason string `json:"reason,omitempty"`
}

// RepoStatus is the state of one repository.
type RepoStatus struct {
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	Phase storagev1alpha1.RepositoryPhase `json:"phase,omitempty"`
	// Reason the repository is not ready.
	// +optional
	Reason string `json:"reason,omitempty"`
	// +optional
	VerificationConfigured bool `json:"verificationConfigured,omitempty"`
}

// SessionStatus is the state of one session.
type SessionStatus struct {
	// +optional
	Name string `json:"name,omitempty"`
	// NextSchedule is when the session runs next.
	// +optional
	NextSchedule string `json:"nextSchedule,omitempty"`
	// Conditions of the session: SchedulerEnsured, InitialBackupTriggered.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []kmapi.Condition `json:"conditions,omitempty"`
}

// Condition types and reasons of a BackupConfiguration.
const (
	// TypeValidationPassed is False when the spec is invalid (phase Invalid).
	TypeValidationPassed           = "ValidationPassed"
	ReasonResourceValidationPassed = "ResourceValidationPassed"
	ReasonResourceValidationFailed = "ResourceValidationFailed"

	// TypeReady says whether the configuration can back up now and, if
	// not, names everything in the way (a missing Secret or PVC, a storage
	// and why it is not Ready). Not upstream's: there the phase and an
	// Event are all a user gets.
	TypeReady                  = "Ready"
	ReasonReady                = "Ready"
	ReasonDependenciesNotReady = "DependenciesNotReady"

	// TypeSchedulerEnsured (per session) is True once the CronJob exists.
	TypeSchedulerEnsured      = "SchedulerEnsured"
	ReasonSchedulerEnsured    = "SchedulerEnsured"
	ReasonSchedulerNotEnsured = "SchedulerNotEnsured"

	// TypeInitialBackupTriggered (per session) records the first backup.
	TypeInitialBackupTriggered               = "InitialBackupTriggered"
	ReasonSuccessfullyTriggeredInitialBackup = "SuccessfullyTriggeredInitialBackup"
	ReasonFailedToTriggerInitialBackup       = "FailedToTriggerInitialBackup"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// BackupConfigurationList is a list of BackupConfigurations.
type BackupConfigurationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupConfiguration `json:"items"`
}

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

// Kinds and resources of this group.
const (
	ResourceKindRepository       = "Repository"
	ResourcePluralRepository     = "repositories"
	ResourceKindSnapshot         = "Snapshot"
	ResourcePluralSnapshot       = "snapshots"
	ResourceKindBackupSession    = "BackupSession"
	ResourcePluralBackupSession  = "backupsessions"
	ResourceKindRestoreSession   = "RestoreSession"
	ResourcePluralRestoreSession = "restoresessions"
)

// Label keys. Snapshots carry the repo-name and app-ref labels so they can
// be listed per Repository or per application; BackupSessions carry
// invoker-name (the BackupConfiguration).
const (
	LabelRepoName        = "kubestash.com/repo-name"
	LabelAppRefKind      = "kubestash.com/app-ref-kind"
	LabelAppRefName      = "kubestash.com/app-ref-name"
	LabelAppRefNamespace = "kubestash.com/app-ref-namespace"
	LabelInvokerName     = "kubestash.com/invoker-name"
)

// AnnotationNamespaceUID is set by the catalog server on every BackupSession
// and RestoreSession it creates: the UID of the namespace (the incarnation
// of it) the session was created in. A session whose namespace has since
// been deleted and created again, or that another cluster wrote into the
// bucket, is history: it stays in the bucket and is not served.
const AnnotationNamespaceUID = "catalog.kubestash.com/namespace-uid"

// FinalizerWipeOut is on every Repository whose deletionPolicy is WipeOut
// (the catalog server keeps it there) and on every BackupStorage whose
// deletionPolicy is WipeOut (the controller keeps it there). An explicit
// delete then waits while the controller removes the data; a delete by the
// namespace's deletion never touches the backend (the finalizer is only
// dropped).
const FinalizerWipeOut = "kubestash.com/wipeout"

// Repository conditions. The Repository is Ready iff RepositoryInitialized
// is True.
const (
	TypeRepositoryInitialized               = "RepositoryInitialized"
	ReasonRepositoryInitializationSucceeded = "RepositoryInitializationSucceeded"
	ReasonRepositoryInitializationFailed    = "RepositoryInitializationFailed"
)

// Snapshot conditions.
const (
	TypeSnapshotMetadataUploaded               = "SnapshotMetadataUploaded"
	ReasonSuccessfullyUploadedSnapshotMetadata = "SuccessfullyUploadedSnapshotMetadata"
	ReasonFailedToUploadSnapshotMetadata       = "FailedToUploadSnapshotMetadata"

	TypeRecentSnapshotListUpdated               = "RecentSnapshotListUpdated"
	ReasonSuccessfullyUpdatedRecentSnapshotList = "SuccessfullyUpdatedRecentSnapshotList"
	ReasonFailedToUpdateRecentSnapshotList      = "FailedToUpdateRecentSnapshotList"

	TypeBackupIncomplete                           = "BackupIncomplete"
	ReasonBackupExecutorTerminatedBeforeCompletion = "BackupExecutorTerminatedBeforeCompletion"
)

// Conditions shared by BackupSession and RestoreSession. MetricsPushed is
// set last; the session phase is final only once it exists.
const (
	TypeMetricsPushed               = "MetricsPushed"
	ReasonSuccessfullyPushedMetrics = "SuccessfullyPushedMetrics"
	ReasonFailedToPushMetrics       = "FailedToPushMetrics"
)

// BackupSession conditions.
const (
	TypeBackupSkipped = "BackupSkipped"
	// ReasonSkippedTakingNewBackup: another backup of the session was
	// running or the invoker was not ready.
	ReasonSkippedTakingNewBackup = "PreRequisitesNotSatisfied"

	TypeSessionHistoryCleaned               = "SessionHistoryCleaned"
	ReasonSuccessfullyCleanedSessionHistory = "SuccessfullyCleanedSessionHistory"
	ReasonFailedToCleanSessionHistory       = "FailedToCleanSessionHistory"

	TypePreBackupHooksExecutionSucceeded     = "PreBackupHooksExecutionSucceeded"
	ReasonSuccessfullyExecutedPreBackupHooks = "SuccessfullyExecutedPreBackupHooks"
	ReasonFailedToExecutePreBackupHooks      = "FailedToExecutePreBackupHooks"

	TypePostBackupHooksExecutionSucceeded     = "PostBackupHooksExecutionSucceeded"
	ReasonSuccessfullyExecutedPostBackupHooks = "SuccessfullyExecutedPostBackupHooks"
	ReasonFailedToExecutePostBackupHooks      = "FailedToExecutePostBackupHooks"

	TypeBackupExecutorEnsured               = "BackupExecutorEnsured"
	ReasonSuccessfullyEnsuredBackupExecutor = "SuccessfullyEnsuredBackupExecutor"
	ReasonFailedToEnsureBackupExecutor      = "FailedToEnsureBackupExecutor"

	TypeRetentionPolicyExecutorEnsured               = "RetentionPolicyExecutorEnsured"
	ReasonSuccessfullyEnsuredRetentionPolicyExecutor = "SuccessfullyEnsuredRetentionPolicyExecutor"
	ReasonFailedToEnsureRetentionPolicyExecutor      = "FailedToEnsureRetentionPolicyExecutor"

	TypeSnapshotsEnsured               = "SnapshotsEnsured"
	ReasonSuccessfullyEnsuredSnapshots = "SuccessfullyEnsuredSnapshots"
	ReasonFailedToEnsureSnapshots      = "FailedToEnsureSnapshots"

	TypeSnapshotCleanupIncomplete                   = "SnapshotCleanupIncomplete"
	ReasonSnapshotCleanupTerminatedBeforeCompletion = "SnapshotCleanupTerminatedBeforeCompletion"

	TypePodHasBeenInPendingStateForLongerThanExpected   = "PodHasBeenInPendingStateForLongerThanExpected"
	ReasonPodHasBeenInPendingStateForLongerThanExpected = "PodHasBeenInPendingStateForLongerThanExpected"
)

// RestoreSession conditions.
const (
	TypeValidationPassed           = "ValidationPassed"
	ReasonResourceValidationPassed = "ResourceValidationPassed"
	ReasonResourceValidationFailed = "ResourceValidationFailed"

	TypeRestoreExecutorEnsured               = "RestoreExecutorEnsured"
	ReasonSuccessfullyEnsuredRestoreExecutor = "SuccessfullyEnsuredRestoreExecutor"
	ReasonFailedToEnsureRestoreExecutor      = "FailedToEnsureRestoreExecutor"

	TypePreRestoreHooksExecutionSucceeded     = "PreRestoreHooksExecutionSucceeded"
	ReasonSuccessfullyExecutedPreRestoreHooks = "SuccessfullyExecutedPreRestoreHooks"
	ReasonFailedToExecutePreRestoreHooks      = "FailedToExecutePreRestoreHooks"

	TypePostRestoreHooksExecutionSucceeded     = "PostRestoreHooksExecutionSucceeded"
	ReasonSuccessfullyExecutedPostRestoreHooks = "SuccessfullyExecutedPostRestoreHooks"
	ReasonFailedToExecutePostRestoreHooks      = "FailedToExecutePostRestoreHooks"

	TypeRestoreTargetFound                = "RestoreTargetFound"
	ReasonUnableToCheckTargetAvailability = "UnableToCheckTargetAvailability"

	TypeRestoreIncomplete                           = "RestoreIncomplete"
	ReasonRestoreExecutorTerminatedBeforeCompletion = "RestoreExecutorTerminatedBeforeCompletion"
)

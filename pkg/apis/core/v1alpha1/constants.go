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

// Annotations read from targets and sessions. The generic label keys
// (managed-by, invoker-*, session-name, component) are in storage/v1alpha1,
// the lowest API package.
const (
	// BackupBlueprintKey prefixes the annotations that opt a target into a
	// BackupBlueprint (kept for compatibility; blueprints are not served yet).
	BackupBlueprintKey           = "blueprint.kubestash.com"
	KeyBlueprintName             = BackupBlueprintKey + "/name"
	KeyBlueprintNamespace        = BackupBlueprintKey + "/namespace"
	KeyBlueprintSessions         = BackupBlueprintKey + "/session-names"
	VariablesKey                 = "variables.kubestash.com"
	AnnRestoreSessionBeneficiary = "restoresession.kubestash.com/beneficiary"
)

// ClusterRoles bound to the ServiceAccounts of the jobs KubeStash creates.
const (
	KubeStashBackupJobClusterRole          = "kubestash-backup-job"
	KubeStashRestoreJobClusterRole         = "kubestash-restore-job"
	KubeStashCronJobClusterRole            = "kubestash-cron-job"
	KubeStashBackendJobClusterRole         = "kubestash-backend-job"
	KubeStashStorageInitializerClusterRole = "kubestash-storage-initializer-job"
	KubeStashRetentionPolicyJobClusterRole = "kubestash-retention-policy-job"
)

// Fixed paths and names of the volume (pvc-addon) backup jobs.
const (
	KubeStashDataDir        = "/kubestash-data"
	KubeStashTmpDir         = "/kubestash-tmp"
	KubeStashTmpVolume      = "kubestash-tmp-volume"
	KubeStashInterimVolume  = "kubestash-interim-volume"
	ComponentDump           = "dump"
	ComponentVolumeSnapshot = "volumesnapshot"
)

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

// Label, annotation and finalizer keys shared by every KubeStash kind. They
// are here because storage is the lowest API package: core, addons and the
// catalog all import it.
const (
	KubeStashKey = "kubestash.com"

	// KubeStashCleanupFinalizer guards objects whose deletion needs cleanup.
	KubeStashCleanupFinalizer = "kubestash.com/cleanup"

	// KubeStashApp labels helper pods, e.g. the netvol accessor.
	KubeStashApp               = "kubestash.com/app"
	KubeStashNetVolAccessorApp = "kubestash-netvol-accessor"
)

// Labels on the children (Jobs, Pods, ServiceAccounts, ...) that KubeStash
// creates for an invoker.
const (
	LabelManagedBy      = "app.kubernetes.io/managed-by"
	LabelManagedByValue = KubeStashKey
	LabelComponent      = "app.kubernetes.io/component"

	KubeStashInvokerName      = "kubestash.com/invoker-name"
	KubeStashInvokerNamespace = "kubestash.com/invoker-namespace"
	KubeStashInvokerKind      = "kubestash.com/invoker-kind"
	KubeStashSessionName      = "kubestash.com/session-name"
)

// Values of LabelComponent.
const (
	KubeStashBackupComponent          = "kubestash-backup"
	KubeStashRestoreComponent         = "kubestash-restore"
	KubeStashInitializerComponent     = "kubestash-initializer"
	KubeStashUploaderComponent        = "kubestash-uploader"
	KubeStashCleanerComponent         = "kubestash-cleaner"
	KubeStashRetentionPolicyComponent = "kubestash-retention-policy"
	KubeStashHookComponent            = "kubestash-hook"
	KubeStashPopulatorComponent       = "kubestash-populator"
	KubeStashBackupVerifierComponent  = "kubestash-backup-verifier"
)

// Labels on Snapshots: the repository and the backed up application.
const (
	KubeStashRepoName        = "kubestash.com/repo-name"
	KubeStashAppRefKind      = "kubestash.com/app-ref-kind"
	KubeStashAppRefName      = "kubestash.com/app-ref-name"
	KubeStashAppRefNamespace = "kubestash.com/app-ref-namespace"
)

// Keys of the backend credential Secret (see BackupStorage spec.storage).
const (
	AWSAccessKeyID              = "AWS_ACCESS_KEY_ID"
	AWSSecretAccessKey          = "AWS_SECRET_ACCESS_KEY"
	CACertData                  = "CA_CERT_DATA"
	GoogleProjectID             = "GOOGLE_PROJECT_ID"
	GoogleServiceAccountJSONKey = "GOOGLE_SERVICE_ACCOUNT_JSON_KEY"
	AzureAccountKey             = "AZURE_ACCOUNT_KEY"

	// ResticPassword is the key of the repository encryption Secret.
	ResticPassword = "RESTIC_PASSWORD"
)

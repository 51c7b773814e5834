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

// Package v1alpha1 holds the storage.kubestash.com types: BackupStorage, RetentionPolicy and the
// backend, usage-policy and runtime-settings types the other KubeStash groups share. It is
// the lowest of the three CRD groups, so core and addons import it and never the reverse.
//
// +k8s:deepcopy-gen=package
// +k8s:openapi-gen=true
// +k8s:openapi-model-package=dev.kubestash.kubestash.pkg.apis.storage.v1alpha1
// +groupName=storage.kubestash.com
package v1alpha1

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
	"k8s.io/apimachinery/pkg/runtime"
)

// DefaultSnapshotVersion is the layout version of the data in a Repository.
const DefaultSnapshotVersion = "v1"

func addDefaultingFuncs(scheme *runtime.Scheme) error {
	return RegisterDefaults(scheme)
}

// SetDefaults_RepositorySpec keeps the data when a Repository is deleted
// unless asked otherwise, as upstream's CRD default does.
func SetDefaults_RepositorySpec(obj *RepositorySpec) {
	if obj.DeletionPolicy == "" {
		obj.DeletionPolicy = DeletionPolicyDelete
	}
}

// SetDefaults_SnapshotSpec fills the upstream CRD defaults of a Snapshot.
func SetDefaults_SnapshotSpec(obj *SnapshotSpec) {
	if obj.DeletionPolicy == "" {
		obj.DeletionPolicy = DeletionPolicyDelete
	}
	if obj.Version == "" {
		obj.Version = DefaultSnapshotVersion
	}
}

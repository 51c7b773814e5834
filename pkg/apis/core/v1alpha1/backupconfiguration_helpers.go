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

import "kubestash.dev/kubestash/pkg/apis/kmapi"

// BackendOf returns the backend a repository uses: the one it names, or
// the first when it names none; nil when there is no such backend.
func (bc *BackupConfiguration) BackendOf(repo RepositoryInfo) *BackendReference {
	for i := range bc.Spec.Backends {
		if bc.Spec.Backends[i].Name == repo.Backend || (repo.Backend == "" && i == 0) {
			return &bc.Spec.Backends[i]
		}
	}
	return nil
}

// StorageOf returns the BackupStorage a repository is kept in, with the
// configuration's namespace filled in when the reference has none.
func (bc *BackupConfiguration) StorageOf(repo RepositoryInfo) (kmapi.ObjectReference, bool) {
	b := bc.BackendOf(repo)
	if b == nil || b.StorageRef == nil {
		return kmapi.ObjectReference{}, false
	}
	return bc.inNamespace(*b.StorageRef), true
}

// RetentionPolicyOf returns the RetentionPolicy of a repository's backend,
// with the configuration's namespace filled in.
func (bc *BackupConfiguration) RetentionPolicyOf(repo RepositoryInfo) (kmapi.ObjectReference, bool) {
	b := bc.BackendOf(repo)
	if b == nil || b.RetentionPolicy == nil {
		return kmapi.ObjectReference{}, false
	}
	return bc.inNamespace(*b.RetentionPolicy), true
}

func (bc *BackupConfiguration) inNamespace(ref kmapi.ObjectReference) kmapi.ObjectReference {
	if ref.Namespace == "" {
		ref.Namespace = bc.Namespace
	}
	return ref
}

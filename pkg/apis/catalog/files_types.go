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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SnapshotFilesOptions are the query parameters of snapshots/files.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type SnapshotFilesOptions struct {
	metav1.TypeMeta

	Path      string
	Recursive bool
	Limit     int64
	Continue  string
}

// SnapshotDownloadOptions are the query parameters of snapshots/download.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type SnapshotDownloadOptions struct {
	metav1.TypeMeta

	Path string
}

// SnapshotFileList is the answer of snapshots/files.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type SnapshotFileList struct {
	metav1.TypeMeta
	metav1.ListMeta

	Path  string
	Items []SnapshotFile
}

// SnapshotFile is one entry of a SnapshotFileList.
type SnapshotFile struct {
	Name        string
	Path        string
	Type        string
	Size        int64
	Mode        string
	Permissions string
	UID         int64
	GID         int64
	Mtime       *metav1.Time
	LinkTarget  string
}

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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Subresources of a Snapshot that show what it holds (docs/browse.md).
const (
	SubresourceFiles    = "files"
	SubresourceDownload = "download"
)

// File types of a SnapshotFile.
const (
	FileTypeFile    = "file"
	FileTypeDir     = "dir"
	FileTypeSymlink = "symlink"
	// FileTypeOther is a device, FIFO or socket.
	FileTypeOther = "other"
)

// SnapshotFilesOptions are the query parameters of
// GET .../snapshots/{name}/files.
//
// +k8s:conversion-gen:explicit-from=net/url.Values
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type SnapshotFilesOptions struct {
	metav1.TypeMeta `json:",inline"`

	// Path of a directory in the snapshot's dump component, relative to
	// the backed-up volume's root: "/" (the default) is the root.
	// +optional
	Path string `json:"path,omitempty"`
	// Recursive lists the whole subtree below Path instead of one
	// directory.
	// +optional
	Recursive bool `json:"recursive,omitempty"`
	// Limit is the most entries one answer holds; 0 means 10000, which is
	// also the maximum. An answer cut short carries metadata.continue.
	// +optional
	Limit int64 `json:"limit,omitempty"`
	// Continue is the metadata.continue of the previous answer, to get the
	// next entries of the same listing.
	// +optional
	Continue string `json:"continue,omitempty"`
}

// SnapshotDownloadOptions are the query parameters of
// GET .../snapshots/{name}/download.
//
// +k8s:conversion-gen:explicit-from=net/url.Values
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type SnapshotDownloadOptions struct {
	metav1.TypeMeta `json:",inline"`

	// Path of a file (streamed as it is) or a directory (streamed as a tar
	// archive of its subtree) in the snapshot's dump component, relative
	// to the backed-up volume's root.
	// +optional
	Path string `json:"path,omitempty"`
}

// SnapshotFileList is what GET .../snapshots/{name}/files answers: the
// entries of one directory of a Snapshot, or of its subtree.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type SnapshotFileList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata.continue is set when more entries follow.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// Path is the directory listed.
	Path string `json:"path"`
	// Items are the entries, in the order restic stores them (by name,
	// depth first for a recursive listing).
	Items []SnapshotFile `json:"items"`
}

// SnapshotFile is one entry of a SnapshotFileList.
type SnapshotFile struct {
	// Name is the last element of Path.
	Name string `json:"name"`
	// Path relative to the backed-up volume's root, starting with "/".
	Path string `json:"path"`
	// Type is file, dir, symlink or other.
	Type string `json:"type"`
	// Size in bytes of a file; 0 for the other types.
	Size int64 `json:"size"`
	// Mode is the permission bits with the set-user-ID, set-group-ID and
	// sticky bits, in octal ("0644", "4755").
	Mode string `json:"mode"`
	// Permissions is the mode as ls -l prints it ("drwxr-xr-x").
	// +optional
	Permissions string `json:"permissions,omitempty"`
	// UID and GID of the owner.
	UID int64 `json:"uid"`
	GID int64 `json:"gid"`
	// Mtime is the modification time.
	// +optional
	Mtime *metav1.Time `json:"mtime,omitempty"`
	// LinkTarget is a symlink's target. Listings of one directory carry
	// it; recursive listings do not (restic's ls does not print it).
	// +optional
	LinkTarget string `json:"linkTarget,omitempty"`
}

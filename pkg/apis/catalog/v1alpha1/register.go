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
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of the backup catalog.
const GroupName = "catalog.kubestash.com"

// SchemeGroupVersion is the group version used to register these objects.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

// Kind takes an unqualified kind and returns back a Group qualified GroupKind.
func Kind(kind string) schema.GroupKind {
	return SchemeGroupVersion.WithKind(kind).GroupKind()
}

// Resource takes an unqualified resource and returns back a Group qualified GroupResource.
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

var (
	// SchemeBuilder registers the types, conversions, defaults and field
	// label conversions of this version.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes, addDefaultingFuncs, addFieldLabelConversionFuncs)
	// localSchemeBuilder is what the generated conversion and defaulting
	// code registers itself with.
	localSchemeBuilder = &SchemeBuilder
	// AddToScheme adds this version to a scheme.
	AddToScheme = localSchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion,
		&Repository{},
		&RepositoryList{},
		&Snapshot{},
		&SnapshotList{},
		&BackupSession{},
		&BackupSessionList{},
		&RestoreSession{},
		&RestoreSessionList{},
		&SnapshotFilesOptions{},
		&SnapshotDownloadOptions{},
		&SnapshotFileList{},
	)
	metav1.AddToGroupVersion(scheme, SchemeGroupVersion)
	return nil
}

// Field selectors each kind supports. metadata.name and metadata.namespace
// work everywhere; the rest are what kubectl users and the controller filter
// on. The registry's GetAttrs must expose the same set.
var selectableFields = map[string][]string{
	ResourceKindRepository:     {"spec.storageRef.name", "status.phase"},
	ResourceKindSnapshot:       {"spec.repository", "spec.session", "spec.backupSession", "status.phase"},
	ResourceKindBackupSession:  {"spec.invoker.name", "spec.invoker.kind", "spec.session", "status.phase"},
	ResourceKindRestoreSession: {"spec.dataSource.repository", "status.phase"},
}

// SelectableFields returns the field selector labels supported for kind
// (including metadata.name and metadata.namespace), or nil for an unknown kind.
func SelectableFields(kind string) []string {
	extra, ok := selectableFields[kind]
	if !ok {
		return nil
	}
	return append([]string{"metadata.name", "metadata.namespace"}, extra...)
}

func addFieldLabelConversionFuncs(scheme *runtime.Scheme) error {
	for kind := range selectableFields {
		allowed := map[string]bool{}
		for _, f := range SelectableFields(kind) {
			allowed[f] = true
		}
		err := scheme.AddFieldLabelConversionFunc(SchemeGroupVersion.WithKind(kind),
			func(label, value string) (string, string, error) {
				if allowed[label] {
					return label, value, nil
				}
				return "", "", fmt.Errorf("field label %q not supported for %s", label, kind)
			})
		if err != nil {
			return err
		}
	}
	return nil
}

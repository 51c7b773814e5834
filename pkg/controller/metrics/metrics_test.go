package metrics

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		watch        bool
		verb, group  string
		resource     string
	}{
		{"GET", "/api/v1/namespaces/demo/pods", false, "list", "", "pods"},
		{"GET", "/api/v1/namespaces/demo/pods/p-1", false, "get", "", "pods"},
		{"GET", "/api/v1/namespaces/demo/pods/p-1/log", false, "get", "", "pods/log"},
		{"GET", "/api/v1/namespaces", false, "list", "", "namespaces"},
		{"GET", "/api/v1/namespaces/demo", false, "get", "", "namespaces"},
		{"GET", "/api/v1/pods", true, "watch", "", "pods"},
		{"GET", "/apis/batch/v1/namespaces/demo/jobs", true, "watch", "batch", "jobs"},
		{"POST", "/apis/batch/v1/namespaces/demo/jobs", false, "create", "batch", "jobs"},
		{"PUT", "/apis/catalog.kubestash.com/v1alpha1/namespaces/demo/backupsessions/s/status", false, "update", "catalog.kubestash.com", "backupsessions/status"},
		{"PATCH", "/apis/core.kubestash.com/v1alpha1/namespaces/demo/backupconfigurations/bc", false, "patch", "core.kubestash.com", "backupconfigurations"},
		{"DELETE", "/apis/batch/v1/namespaces/demo/jobs/j", false, "delete", "batch", "jobs"},
		{"DELETE", "/apis/batch/v1/namespaces/demo/jobs", false, "deletecollection", "batch", "jobs"},
		{"GET", "/apis/storage.kubestash.com/v1alpha1/backupstorages", false, "list", "storage.kubestash.com", "backupstorages"},
		{"GET", "/apis/catalog.kubestash.com/v1alpha1", false, "list", "catalog.kubestash.com", "discovery"},
		{"GET", "/version", false, "get", "", "other"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			verb, group, resource := Classify(tc.method, tc.path, tc.watch)
			assert.Equal(t, []string{tc.verb, tc.group, tc.resource}, []string{verb, group, resource})
		})
	}
}

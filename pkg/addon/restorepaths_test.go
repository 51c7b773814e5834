package addon

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
)

func TestValidateRestorePaths(t *testing.T) {
	fld := field.NewPath("spec", "addon", "tasks").Index(0)
	for _, tc := range []struct {
		name   string
		params string
		// want are the fields refused, in order.
		want []string
	}{
		{name: "no params"},
		{name: "other params only", params: `{"enableCache":"true"}`},
		{name: "absolute include", params: `{"include":"/data/dir"}`},
		{name: "list of absolute paths and a pattern", params: `{"include":["/a","/b/c"],"exclude":"/a/*.tmp"}`},
		{name: "comma separated", params: `{"include":"/a, /b"}`},
		{name: "relative include", params: `{"include":"data"}`, want: []string{"spec.addon.tasks[0].params.include"}},
		{name: "dot dot", params: `{"include":"/a/../../etc"}`, want: []string{"spec.addon.tasks[0].params.include"}},
		{name: "relative exclude in a list", params: `{"exclude":["/ok","*.log"]}`, want: []string{"spec.addon.tasks[0].params.exclude"}},
		{name: "both wrong", params: `{"include":"x","exclude":"/.."}`, want: []string{"spec.addon.tasks[0].params.include", "spec.addon.tasks[0].params.exclude"}},
		{name: "not a list of strings", params: `{"include":{"a":1}}`, want: []string{"spec.addon.tasks[0].params.include"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := &corev1alpha1.TaskReference{Name: "logical-backup-restore"}
			if tc.params != "" {
				ref.Params = &runtime.RawExtension{Raw: []byte(tc.params)}
			}
			var got []string
			for _, e := range ValidateRestorePaths(fld, ref) {
				got = append(got, e.Field)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

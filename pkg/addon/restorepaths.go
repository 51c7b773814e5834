package addon

import (
	"encoding/json"
	"errors"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
)

// Params of a restore task that select what is restored, as upstream's
// workload addon names them; the pvc-restore Function passes them to the
// agent as --include and --exclude, which hands them to restic restore.
const (
	ParamInclude = "include"
	ParamExclude = "exclude"
)

// SplitPaths splits a rendered include or exclude param (comma-separated,
// as Params renders a list) into its paths.
func SplitPaths(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// CheckSnapshotPath says why p cannot select files of a snapshot (without
// quoting p, which the caller names with its field): it must
// be absolute in the snapshot ("/" is the backed-up volume's root; a
// pattern such as /logs/*.gz is fine) and may not contain "..", which
// would only ever match nothing or climb out of the restore target.
func CheckSnapshotPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return errors.New("must be an absolute path in the snapshot (/dir or /dir/file; / is the volume's root)")
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return errors.New("must not contain ..")
		}
	}
	return nil
}

// ValidateRestorePaths checks the include and exclude params of a restore
// task reference at fld (spec.addon.tasks[i]), naming the param.
func ValidateRestorePaths(fld *field.Path, ref *corev1alpha1.TaskReference) field.ErrorList {
	if ref == nil || ref.Params == nil || len(ref.Params.Raw) == 0 {
		return nil
	}
	var raw map[string]any
	if err := json.Unmarshal(ref.Params.Raw, &raw); err != nil {
		return field.ErrorList{field.Invalid(fld.Child("params"), string(ref.Params.Raw), "must be an object")}
	}
	var errs field.ErrorList
	for _, name := range []string{ParamInclude, ParamExclude} {
		v, ok := raw[name]
		if !ok {
			continue
		}
		s, err := paramString(v)
		if err != nil {
			errs = append(errs, field.Invalid(fld.Child("params", name), v, "must be a path or a list of paths"))
			continue
		}
		for _, p := range SplitPaths(s) {
			if err := CheckSnapshotPath(p); err != nil {
				errs = append(errs, field.Invalid(fld.Child("params", name), p, err.Error()))
			}
		}
	}
	return errs
}

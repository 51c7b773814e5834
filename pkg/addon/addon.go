// Package addon turns an Addon task and its Function into the pod spec of
// the Job that runs it: parameters from the Addon's defaults, the
// configuration's task params and the built-in inputs, substituted into the
// Function's args and the task's volumes with upstream's ${name:=default}
// syntax.
package addon

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	addonsv1alpha1 "kubestash.dev/kubestash/pkg/apis/addons/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
)

// Built-in inputs every task gets (upstream apis constants).
const (
	InputNamespace      = "namespace"
	InputBackupSession  = "backupSession"
	InputRestoreSession = "restoreSession"
	InputSnapshot       = "snapshot"
	InputPVCName        = "PVC_NAME"
)

// FindTask returns the named backup (or restore) task of an Addon.
func FindTask(a *addonsv1alpha1.Addon, name string, backup bool) (*addonsv1alpha1.Task, error) {
	tasks, kind := a.Spec.RestoreTasks, "restore"
	if backup {
		tasks, kind = a.Spec.BackupTasks, "backup"
	}
	for i := range tasks {
		if tasks[i].Name == name {
			return &tasks[i], nil
		}
	}
	return nil, fmt.Errorf("Addon %s has no %s task %q", a.Name, kind, name)
}

// Params merges, later winning: the task's parameter defaults, the params
// of the configuration's task reference, and the built-in inputs. A
// required parameter without a value is an error that names it.
func Params(task *addonsv1alpha1.Task, ref *corev1alpha1.TaskReference, builtins map[string]string) (map[string]string, error) {
	p := map[string]string{}
	for _, d := range task.Parameters {
		if d.Default != "" {
			p[d.Name] = d.Default
		}
	}
	if ref != nil && ref.Params != nil && len(ref.Params.Raw) > 0 {
		var raw map[string]any
		if err := json.Unmarshal(ref.Params.Raw, &raw); err != nil {
			return nil, fmt.Errorf("task %s: params must be an object: %w", task.Name, err)
		}
		for k, v := range raw {
			s, err := paramString(v)
			if err != nil {
				return nil, fmt.Errorf("task %s: param %s: %w", task.Name, k, err)
			}
			p[k] = s
		}
	}
	for k, v := range builtins {
		p[k] = v
	}
	var missing []string
	for _, d := range task.Parameters {
		if d.Required && p[d.Name] == "" {
			missing = append(missing, d.Name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("task %s: required params not set: %s", task.Name, strings.Join(missing, ", "))
	}
	return p, nil
}

// paramString renders a param value as upstream does: lists are comma
// separated, scalars as written.
func paramString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case nil:
		return "", nil
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			s, err := paramString(e)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("unsupported value %v (want a string, number, bool or list)", v)
}

var placeholder = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::=([^}]*))?\}`)

// Expand substitutes ${name} and ${name:=default} from vars; an unknown
// name without a default becomes empty, as envsubst does.
func Expand(s string, vars map[string]string) string {
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		g := placeholder.FindStringSubmatch(m)
		if v, ok := vars[g[1]]; ok && v != "" {
			return v
		}
		return g[2]
	})
}

// expandJSON is Expand for JSON text: the values are escaped as JSON
// string content, so that a parameter (the user's params, a target's name)
// can only ever become part of the string it was put in, never new keys;
// a volume source built from a template keeps the kind of its template.
// Defaults come from the template's own JSON and are already escaped.
func expandJSON(s string, vars map[string]string) string {
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		g := placeholder.FindStringSubmatch(m)
		if v, ok := vars[g[1]]; ok && v != "" {
			b, _ := json.Marshal(v) // a string always encodes
			return string(b[1 : len(b)-1])
		}
		return g[2]
	})
}

// Input is what a task's pod needs.
type Input struct {
	Task     *addonsv1alpha1.Task
	Function *addonsv1alpha1.Function
	// Ref is the task as the BackupConfiguration or RestoreSession names
	// it: params, variables and volume overrides.
	Ref *corev1alpha1.TaskReference
	// Field is where Ref is in its object (spec.addon.tasks[0]), to name
	// the field in errors; nil means tasks[<name>].
	Field  *field.Path
	Params map[string]string
	// Env is added to the container, e.g. secrets by secretKeyRef.
	Env []corev1.EnvVar
}

// PodSpec builds the pod of a task's Job: one container from the Function,
// the task's volumes and mounts.
func PodSpec(in Input) (corev1.PodSpec, error) {
	fn := in.Function.Spec
	c := corev1.Container{
		Name:         strings.ReplaceAll(in.Task.Name, "_", "-"),
		Image:        Expand(fn.Image, in.Params),
		WorkingDir:   fn.WorkingDir,
		VolumeMounts: append(append([]corev1.VolumeMount(nil), in.Task.VolumeMounts...), fn.VolumeMounts...),
		// The Function's, as upstream; the pod Security admission of the
		// namespace still judges them.
		Ports:         fn.Ports,
		VolumeDevices: fn.VolumeDevices,
	}
	for _, a := range fn.Command {
		c.Command = append(c.Command, Expand(a, in.Params))
	}
	for _, a := range fn.Args {
		c.Args = append(c.Args, Expand(a, in.Params))
	}
	if in.Ref != nil {
		// The controller's own variables (the Secrets by secretKeyRef) come
		// after a task's and would win; a task's variable of the same name
		// would be accepted and ignored, so it is refused.
		reserved := map[string]bool{}
		for _, e := range in.Env {
			reserved[e.Name] = true
		}
		for i, v := range in.Ref.Variables {
			if reserved[v.Name] {
				fld := in.Field
				if fld == nil {
					fld = field.NewPath("tasks").Key(in.Task.Name)
				}
				return corev1.PodSpec{}, field.Invalid(fld.Child("variables").Index(i).Child("name"), v.Name, "is set by the controller (from the storage's or the encryption Secret); choose another name")
			}
		}
		c.Env = append(c.Env, in.Ref.Variables...)
	}
	c.Env = append(c.Env, in.Env...)
	if rs := fn.RuntimeSettings; rs != nil {
		if rs.Resources != nil {
			c.Resources = *rs.Resources
		}
		c.SecurityContext = rs.SecurityContext
		c.Env = append(c.Env, rs.Env...)
		c.EnvFrom = append(c.EnvFrom, rs.EnvFrom...)
	}

	// A user's addonVolumes may replace a volumeTemplate's source only with
	// a source of their own namespace (UserVolumeSources). The admission
	// rules say so too (the CRD's CEL rule, the catalog server's
	// validation); this check is for what was stored before them, so that
	// no such object ever becomes a Job with a hostPath.
	fld := in.Field
	if fld == nil {
		fld = field.NewPath("tasks").Key(in.Task.Name)
	}
	overrides := map[string]*addonsv1alpha1.VolumeSource{}
	overrideField := map[string]*field.Path{}
	if in.Ref != nil {
		// Accepted and never mounted would be worse than refused. The
		// BackupConfiguration CRD refuses it at admission; this catches a
		// RestoreSession and what was stored before the rule.
		if in.Ref.TargetVolumes != nil {
			return corev1.PodSpec{}, fmt.Errorf("task %s: %s", in.Task.Name, field.Forbidden(fld.Child("targetVolumes"), "not supported yet; remove it"))
		}
		if errs := ValidateAddonVolumes(fld.Child("addonVolumes"), in.Ref.AddonVolumes); len(errs) > 0 {
			return corev1.PodSpec{}, fmt.Errorf("task %s: %w", in.Task.Name, errs.ToAggregate())
		}
		for i, v := range in.Ref.AddonVolumes {
			overrides[v.Name] = v.Source
			overrideField[v.Name] = fld.Child("addonVolumes").Index(i).Child("source")
		}
	}
	var vols []corev1.Volume
	for i, vt := range in.Task.VolumeTemplate {
		src := vt.Source
		srcField := field.NewPath("volumeTemplate").Index(i).Child("source")
		o, byUser := overrides[vt.Name]
		if byUser && o != nil {
			src, srcField = o, overrideField[vt.Name]
		} else {
			byUser = false
		}
		if src == nil {
			return corev1.PodSpec{}, fmt.Errorf("task %s: volume %s has no source", in.Task.Name, vt.Name)
		}
		if src.VolumeClaimTemplate != nil {
			return corev1.PodSpec{}, fmt.Errorf("task %s: volume %s: volumeClaimTemplate is not supported yet", in.Task.Name, vt.Name)
		}
		// Substitute in the whole source, as upstream does, so that
		// claimName: ${PVC_NAME} becomes the target.
		tmpl := src.VolumeSource.ToCore()
		raw, err := json.Marshal(tmpl)
		if err != nil {
			return corev1.PodSpec{}, fmt.Errorf("task %s: volume %s: encode source: %w", in.Task.Name, vt.Name, err)
		}
		var vs corev1.VolumeSource
		if err := json.Unmarshal([]byte(expandJSON(string(raw), in.Params)), &vs); err != nil {
			return corev1.PodSpec{}, fmt.Errorf("task %s: volume %s: %w", in.Task.Name, vt.Name, err)
		}
		if err := checkBuiltSource(srcField, tmpl, vs, byUser); err != nil {
			return corev1.PodSpec{}, fmt.Errorf("task %s: volume %s: %w", in.Task.Name, vt.Name, err)
		}
		vols = append(vols, corev1.Volume{Name: vt.Name, VolumeSource: vs})
	}
	return corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		Containers:    []corev1.Container{c},
		Volumes:       vols,
	}, nil
}

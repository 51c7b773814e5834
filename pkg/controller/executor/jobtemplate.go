package executor

import (
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/controller/access"
)

// baselineCapabilities are the capabilities the Pod Security Standards'
// baseline level lets a container add: a jobTemplate may add no other, so
// that a user without the right to create pods cannot get, through the
// controller, a pod more privileged than baseline allows.
var baselineCapabilities = map[corev1.Capability]bool{
	"AUDIT_WRITE": true, "CHOWN": true, "DAC_OVERRIDE": true, "FOWNER": true, "FSETID": true, "KILL": true, "MKNOD": true,
	"NET_BIND_SERVICE": true, "SETFCAP": true, "SETGID": true, "SETPCAP": true, "SETUID": true, "SYS_CHROOT": true,
}

// ApplyJobTemplate applies a user's jobTemplate (fld) to a backup or
// restore Job: every field takes effect or is refused with an error naming
// it. Labels and annotations are added without replacing the controller's
// own; the pod's ServiceAccount may be the user's only as access.CheckUserAccount
// allows (acct is the controller's own, storages the BackupStorages the
// Job uses).
func ApplyJobTemplate(job *batchv1.Job, jt *storagev1alpha1.PodTemplateSpec, fld *field.Path, acct access.Account, storages []kmapi.ObjectReference) error {
	if jt == nil {
		return nil
	}
	var errs field.ErrorList
	if jt.Metadata.Name != "" {
		errs = append(errs, field.Forbidden(fld.Child("metadata", "name"), "the Job names its pods"))
	}
	if jt.Controller.Name != "" {
		errs = append(errs, field.Forbidden(fld.Child("controller", "name"), "the controller names the Job after its session"))
	}
	spec := jt.Spec
	sf := fld.Child("spec")
	if ferr := access.CheckUserAccount(sf.Child("serviceAccountName"), spec.ServiceAccountName, acct.Namespace(), acct.Name(), storages); ferr != nil {
		errs = append(errs, ferr)
	}
	if spec.Priority != nil {
		errs = append(errs, field.Forbidden(sf.Child("priority"), "set priorityClassName instead: the Priority admission plugin sets priority from it"))
	}
	if p := spec.SecurityContext; p != nil {
		pf := sf.Child("securityContext")
		errs = append(errs, beyondBaseline(pf, p.SeccompProfile, p.AppArmorProfile, p.SELinuxOptions)...)
		if len(p.Sysctls) > 0 {
			errs = append(errs, field.Forbidden(pf.Child("sysctls"), "not supported for backup and restore Jobs"))
		}
	}
	if c := spec.ContainerSecurityContext; c != nil {
		errs = append(errs, containerBeyondBaseline(sf.Child("containerSecurityContext"), c)...)
	}
	if len(errs) > 0 {
		return errs.ToAggregate()
	}

	job.Labels = merge(job.Labels, jt.Controller.Labels)
	job.Annotations = merge(job.Annotations, jt.Controller.Annotations)
	tpl := &job.Spec.Template
	tpl.Labels = merge(tpl.Labels, jt.Metadata.Labels)
	tpl.Annotations = merge(tpl.Annotations, jt.Metadata.Annotations)
	pod := &tpl.Spec
	if spec.NodeSelector != nil {
		pod.NodeSelector = spec.NodeSelector
	}
	if spec.ServiceAccountName != "" {
		pod.ServiceAccountName = spec.ServiceAccountName
	}
	if spec.AutomountServiceAccountToken != nil {
		pod.AutomountServiceAccountToken = spec.AutomountServiceAccountToken
	}
	if spec.SecurityContext != nil {
		pod.SecurityContext = spec.SecurityContext
	}
	if spec.Tolerations != nil {
		pod.Tolerations = spec.Tolerations
	}
	if spec.Affinity != nil {
		pod.Affinity = spec.Affinity
	}
	if spec.ImagePullSecrets != nil {
		pod.ImagePullSecrets = spec.ImagePullSecrets
	}
	if spec.PriorityClassName != "" {
		pod.PriorityClassName = spec.PriorityClassName
	}
	if spec.SchedulerName != "" {
		pod.SchedulerName = spec.SchedulerName
	}
	if spec.RuntimeClassName != nil {
		pod.RuntimeClassName = spec.RuntimeClassName
	}
	if spec.TerminationGracePeriodSeconds != nil {
		pod.TerminationGracePeriodSeconds = spec.TerminationGracePeriodSeconds
	}
	for i := range pod.Containers {
		c := &pod.Containers[i]
		if spec.ContainerSecurityContext != nil {
			c.SecurityContext = spec.ContainerSecurityContext
		}
		if spec.Resources != nil {
			c.Resources = *spec.Resources
		}
	}
	return nil
}

// containerBeyondBaseline refuses what in a container's security context
// the baseline Pod Security level forbids.
func containerBeyondBaseline(fld *field.Path, c *corev1.SecurityContext) field.ErrorList {
	errs := beyondBaseline(fld, c.SeccompProfile, c.AppArmorProfile, c.SELinuxOptions)
	if c.Privileged != nil && *c.Privileged {
		errs = append(errs, field.Forbidden(fld.Child("privileged"), "the Jobs run within the baseline Pod Security level"))
	}
	if c.ProcMount != nil && *c.ProcMount != corev1.DefaultProcMount {
		errs = append(errs, field.Forbidden(fld.Child("procMount"), "the Jobs run within the baseline Pod Security level"))
	}
	if c.Capabilities != nil {
		for i, cap := range c.Capabilities.Add {
			if !baselineCapabilities[cap] {
				errs = append(errs, field.Forbidden(fld.Child("capabilities", "add").Index(i), fmt.Sprintf("%s is beyond the baseline Pod Security level", cap)))
			}
		}
	}
	return errs
}

// beyondBaseline refuses the security profiles the baseline Pod Security
// level forbids: no seccomp or AppArmor confinement, SELinux users, roles
// or types of the host's.
func beyondBaseline(fld *field.Path, seccomp *corev1.SeccompProfile, apparmor *corev1.AppArmorProfile, selinux *corev1.SELinuxOptions) field.ErrorList {
	var errs field.ErrorList
	const why = "the Jobs run within the baseline Pod Security level"
	if seccomp != nil && seccomp.Type == corev1.SeccompProfileTypeUnconfined {
		errs = append(errs, field.Forbidden(fld.Child("seccompProfile", "type"), why))
	}
	if apparmor != nil && apparmor.Type == corev1.AppArmorProfileTypeUnconfined {
		errs = append(errs, field.Forbidden(fld.Child("appArmorProfile", "type"), why))
	}
	if selinux != nil {
		switch selinux.Type {
		case "", "container_t", "container_init_t", "container_kvm_t", "container_engine_t":
		default:
			errs = append(errs, field.Forbidden(fld.Child("seLinuxOptions", "type"), why))
		}
		if selinux.User != "" || selinux.Role != "" {
			errs = append(errs, field.Forbidden(fld.Child("seLinuxOptions"), why+": no user or role"))
		}
	}
	return errs
}

// merge adds add to base; base's keys win: the controller's labels say
// what the Job is, and a user may not change that.
func merge(base, add map[string]string) map[string]string {
	if len(add) == 0 {
		return base
	}
	out := make(map[string]string, len(base)+len(add))
	for k, v := range add {
		out[k] = v
	}
	for k, v := range base {
		out[k] = v
	}
	return out
}

// reservedEnvPrefixes are the variables the agent and restic read.
var reservedEnvPrefixes = []string{"RESTIC_", "AWS_", "AZURE_", "GOOGLE_", "B2_", "KUBESTASH_", "RCLONE_", "CA_CERT_DATA"}

// ApplyRuntimeSettings applies a user's addon.containerRuntimeSettings
// (fld) to the Job's containers, after the Function's own: resources and a
// security context replace the Function's, env is added.
// nice and ionice are refused at admission (not supported yet); they are
// refused here too for objects stored before that rule.
func ApplyRuntimeSettings(job *batchv1.Job, rs *storagev1alpha1.ContainerRuntimeSettings, fld *field.Path) error {
	if rs == nil {
		return nil
	}
	var errs field.ErrorList
	if rs.Nice != nil {
		errs = append(errs, field.Forbidden(fld.Child("nice"), "not supported yet"))
	}
	if rs.Ionice != nil {
		errs = append(errs, field.Forbidden(fld.Child("ionice"), "not supported yet"))
	}
	if c := rs.SecurityContext; c != nil {
		errs = append(errs, containerBeyondBaseline(fld.Child("securityContext"), c)...)
	}
	// The agent and restic take credentials and the repository from the
	// environment: a user's variable must not redirect a shared storage's
	// credentials elsewhere. envFrom could bring any name, so it is not
	// taken at all.
	for i, e := range rs.Env {
		for _, p := range reservedEnvPrefixes {
			if strings.HasPrefix(e.Name, p) {
				errs = append(errs, field.Forbidden(fld.Child("env").Index(i).Child("name"), fmt.Sprintf("variables starting with %s are the agent's", p)))
				break
			}
		}
	}
	if len(rs.EnvFrom) > 0 {
		errs = append(errs, field.Forbidden(fld.Child("envFrom"), "not supported: name each variable in env"))
	}
	if len(errs) > 0 {
		return errs.ToAggregate()
	}
	pod := &job.Spec.Template.Spec
	for i := range pod.Containers {
		c := &pod.Containers[i]
		if rs.Resources != nil {
			c.Resources = *rs.Resources
		}
		if rs.SecurityContext != nil {
			c.SecurityContext = rs.SecurityContext
		}
		// Before the controller's own, which win on a name both set.
		c.Env = append(append([]corev1.EnvVar(nil), rs.Env...), c.Env...)
	}
	return nil
}

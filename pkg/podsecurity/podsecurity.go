// Package podsecurity holds the security contexts of the controller's own
// containers, chosen so that every Job runs in a namespace that enforces
// the Pod Security Standards' baseline level, and the trigger in one that
// enforces restricted (docs/security.md says which needs what and why).
package podsecurity

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// NonRootUID is the user of our images that need no root.
const NonRootUID = 65532

// Root is a container that runs as root, as the agent must to read and
// restore files of any owner, with no capability but add and no way to
// gain more: baseline allows this when add holds only its default set
// (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, ...).
func Root(add ...corev1.Capability) *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: add},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// Restricted is a container that meets the restricted level: not root, no
// capability, no privilege escalation, the runtime's seccomp profile.
func Restricted() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To(int64(NonRootUID)),
		RunAsGroup:               ptr.To(int64(NonRootUID)),
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

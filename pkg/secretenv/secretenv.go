// Package secretenv is the contract by which the controller hands the
// agent the Secrets a repository needs: environment variables filled by
// the kubelet from secretKeyRefs, so the Job's ServiceAccount needs no
// access to Secrets. One variable per repository and key, named
// <KEY>_<repository> (RESTIC_PASSWORD_s3-repo), since a session may write
// to several repositories with different Secrets.
//
// A secretKeyRef can only name a Secret of the pod's namespace; for a
// Secret elsewhere (a BackupStorage shared from another namespace) no
// variable is set and the agent reads it through the API, as upstream
// does, which needs RBAC in that namespace.
package secretenv

import (
	"os"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// Keys of the Secrets: the encryption Secret's and an S3 storage's.
const (
	KeyResticPassword  = "RESTIC_PASSWORD"
	KeyAccessKeyID     = "AWS_ACCESS_KEY_ID"
	KeySecretAccessKey = "AWS_SECRET_ACCESS_KEY"
	KeyCACertData      = "CA_CERT_DATA"
)

// Name is the variable that carries key of repository's Secret.
func Name(key, repository string) string {
	return key + "_" + repository
}

// Ref is one Secret a repository needs.
type Ref struct {
	// Namespace and Name of the Secret.
	Namespace, Name string
	// Keys to pass; Optional ones may be absent from the Secret.
	Keys     []string
	Optional []string
}

// Env returns the variables for repository's Secrets refs, for a pod in
// namespace podNS; Secrets of other namespaces are left out (see the
// package comment).
func Env(podNS, repository string, refs ...Ref) []corev1.EnvVar {
	var out []corev1.EnvVar
	for _, r := range refs {
		if r.Name == "" || r.Namespace != podNS {
			continue
		}
		add := func(key string, optional bool) {
			ref := &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: r.Name}, Key: key}
			if optional {
				ref.Optional = ptr.To(true)
			}
			out = append(out, corev1.EnvVar{Name: Name(key, repository), ValueFrom: &corev1.EnvVarSource{SecretKeyRef: ref}})
		}
		for _, k := range r.Keys {
			add(k, false)
		}
		for _, k := range r.Optional {
			add(k, true)
		}
	}
	return out
}

// Lookup returns the value of key for repository from the environment;
// ok is false when the controller passed none.
func Lookup(key, repository string) (value string, ok bool) {
	return os.LookupEnv(Name(key, repository))
}

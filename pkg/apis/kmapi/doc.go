// Package kmapi holds the small reference and condition types that every
// KubeStash API group shares. Upstream takes them from kmodules.xyz
// (imported there as kmapi); the field names and JSON keys are the same, so
// manifests written for upstream decode unchanged.
//
// +k8s:deepcopy-gen=package
// +k8s:openapi-gen=true
// +k8s:openapi-model-package=dev.kubestash.kubestash.pkg.apis.kmapi
// +groupName=kmapi.kubestash.com
package kmapi

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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Allows says whether namespace may use a resource of ownNamespace under
// this policy; nil means yes, an error says why not. ns is the Namespace
// object, needed (for its labels) only when from is Selector; a nil ns is
// then not allowed. A nil policy is Same, the default.
func (p *UsagePolicy) Allows(ownNamespace, namespace string, ns *corev1.Namespace) error {
	from := NamespacesFromSame
	var sel *metav1.LabelSelector
	if p != nil {
		if p.AllowedNamespaces.From != nil {
			from = *p.AllowedNamespaces.From
		}
		sel = p.AllowedNamespaces.Selector
	}
	switch from {
	case NamespacesFromAll:
		return nil
	case NamespacesFromSame:
		if namespace == ownNamespace {
			return nil
		}
		return fmt.Errorf("usagePolicy allows only namespace %s (from: Same), not %s", ownNamespace, namespace)
	case NamespacesFromSelector:
		if sel == nil {
			return fmt.Errorf("usagePolicy has from: Selector but no selector")
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return fmt.Errorf("usagePolicy selector: %w", err)
		}
		if ns == nil {
			return fmt.Errorf("namespace %s not found to match the usagePolicy selector", namespace)
		}
		if !s.Matches(labels.Set(ns.Labels)) {
			return fmt.Errorf("namespace %s does not match the usagePolicy selector %s", namespace, s)
		}
		return nil
	}
	return fmt.Errorf("usagePolicy has an unknown from %q", from)
}

// AllowedFrom returns how bs picks the namespaces allowed to use it; Same
// when the policy is missing, as upstream's defaulting webhook sets it.
func AllowedFrom(bs *BackupStorage) FromNamespaces {
	if bs.Spec.UsagePolicy == nil || bs.Spec.UsagePolicy.AllowedNamespaces.From == nil {
		return NamespacesFromSame
	}
	return *bs.Spec.UsagePolicy.AllowedNamespaces.From
}

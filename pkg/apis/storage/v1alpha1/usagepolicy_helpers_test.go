package v1alpha1

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestUsagePolicyAllows(t *testing.T) {
	team := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: map[string]string{"team": "x"}}}
	policy := func(f FromNamespaces, sel *metav1.LabelSelector) *UsagePolicy {
		return &UsagePolicy{AllowedNamespaces: AllowedNamespaces{From: ptr.To(f), Selector: sel}}
	}
	cases := []struct {
		name    string
		p       *UsagePolicy
		ns      string
		nsObj   *corev1.Namespace
		wantErr string
	}{
		{"nil policy is Same: own namespace", nil, "a", nil, ""},
		{"nil policy is Same: other namespace", nil, "b", nil, "from: Same"},
		{"All", policy(NamespacesFromAll, nil), "b", nil, ""},
		{"Same", policy(NamespacesFromSame, nil), "b", nil, "not b"},
		{"Selector matches", policy(NamespacesFromSelector, &metav1.LabelSelector{MatchLabels: map[string]string{"team": "x"}}), "b", team, ""},
		{"Selector does not match", policy(NamespacesFromSelector, &metav1.LabelSelector{MatchLabels: map[string]string{"team": "y"}}), "b", team, "does not match"},
		{"Selector without namespace object", policy(NamespacesFromSelector, &metav1.LabelSelector{}), "b", nil, "not found"},
		{"Selector without selector", policy(NamespacesFromSelector, nil), "b", team, "no selector"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.p.Allows("a", c.ns, c.nsObj)
			if c.wantErr == "" {
				assert.NoError(t, err)
			} else {
				assert.ErrorContains(t, err, c.wantErr)
			}
		})
	}
}

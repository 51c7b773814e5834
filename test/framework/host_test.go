package framework

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSaveFields(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`-A FORWARD -j KUBE-FORWARD`, []string{"-A", "FORWARD", "-j", "KUBE-FORWARD"}},
		{`-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
			[]string{"-A", "OUTPUT", "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"}},
		{`-A INPUT -m comment --comment "a \"quoted\" word" -j KUBE-X`,
			[]string{"-A", "INPUT", "-m", "comment", "--comment", `a "quoted" word`, "-j", "KUBE-X"}},
		{`-A X --comment ""  -j Y`, []string{"-A", "X", "--comment", "", "-j", "Y"}},
	} {
		assert.Equal(t, tc.want, saveFields(tc.in), tc.in)
	}
}

func TestUnescapeMount(t *testing.T) {
	assert.Equal(t, "/a b/c", unescapeMount(`/a\040b/c`))
}

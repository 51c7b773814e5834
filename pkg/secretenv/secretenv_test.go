package secretenv

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEnv(t *testing.T) {
	enc := Ref{Namespace: "demo", Name: "encrypt-secret", Keys: []string{KeyResticPassword}}
	s3 := Ref{Namespace: "demo", Name: "s3-secret", Keys: []string{KeyAccessKeyID, KeySecretAccessKey}, Optional: []string{KeyCACertData}}
	shared := Ref{Namespace: "stash", Name: "s3-secret", Keys: []string{KeyAccessKeyID}}
	for _, c := range []struct {
		name string
		refs []Ref
		want map[string]string // variable -> secret/key(?)
	}{
		{"encryption and storage", []Ref{enc, s3}, map[string]string{
			"RESTIC_PASSWORD_repo": "encrypt-secret/RESTIC_PASSWORD", "AWS_ACCESS_KEY_ID_repo": "s3-secret/AWS_ACCESS_KEY_ID",
			"AWS_SECRET_ACCESS_KEY_repo": "s3-secret/AWS_SECRET_ACCESS_KEY", "CA_CERT_DATA_repo": "s3-secret/CA_CERT_DATA?"}},
		{"a Secret of another namespace is left to the API", []Ref{enc, shared}, map[string]string{
			"RESTIC_PASSWORD_repo": "encrypt-secret/RESTIC_PASSWORD"}},
		{"no name, no variable", []Ref{{Namespace: "demo", Keys: []string{KeyResticPassword}}}, map[string]string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := map[string]string{}
			for _, e := range Env("demo", "repo", c.refs...) {
				assert.Empty(t, e.Value, "never a value")
				ref := e.ValueFrom.SecretKeyRef
				v := ref.Name + "/" + ref.Key
				if ref.Optional != nil && *ref.Optional {
					v += "?"
				}
				got[e.Name] = v
			}
			assert.Equal(t, c.want, got)
		})
	}
}

func TestLookup(t *testing.T) {
	t.Setenv(Name(KeyResticPassword, "repo"), "pw")
	v, ok := Lookup(KeyResticPassword, "repo")
	assert.True(t, ok)
	assert.Equal(t, "pw", v)
	_, ok = Lookup(KeyResticPassword, "other")
	assert.False(t, ok)
}

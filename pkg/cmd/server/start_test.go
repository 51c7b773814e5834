package server

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFlags(t *testing.T) {
	cmd := NewCommand(context.Background(), NewOptions())
	fs := cmd.Flags()
	for _, name := range []string{"kubeconfig", "authentication-kubeconfig", "authorization-kubeconfig",
		"poll-interval", "secure-port", "bind-address", "tls-cert-file", "tls-private-key-file"} {
		assert.NotNil(t, fs.Lookup(name), "--%s", name)
	}
	assert.Nil(t, fs.Lookup("etcd-servers"), "the catalog lives in the backends, not in etcd")

	o := NewOptions()
	cmd = NewCommand(context.Background(), o)
	require.NoError(t, cmd.Flags().Parse([]string{"--poll-interval=2s"}))
	assert.Equal(t, 2*time.Second, o.PollInterval)
	o.PollInterval = 0
	assert.ErrorContains(t, o.Validate(), "--poll-interval")
}

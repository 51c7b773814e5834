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

func TestLimitFlags(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		maxObject int64
		logBytes  int64
		invalid   string
	}{
		{"defaults", nil, 1 << 20, 16 << 20, ""},
		{"quantities", []string{"--max-object-size=256Ki", "--event-log-bytes=64Mi"}, 256 << 10, 64 << 20, ""},
		{"plain bytes", []string{"--max-object-size=2000000"}, 2000000, 16 << 20, ""},
		{"zero", []string{"--max-object-size=0"}, 0, 16 << 20, "--max-object-size"},
		{"log smaller than an object", []string{"--max-object-size=4Mi", "--event-log-bytes=1Mi"}, 4 << 20, 1 << 20, "--event-log-bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			cmd := NewCommand(context.Background(), o)
			require.NoError(t, cmd.Flags().Parse(tc.args))
			assert.Equal(t, tc.maxObject, o.MaxObjectSize.Value())
			assert.Equal(t, tc.logBytes, o.EventLogBytes.Value())
			err := o.Validate()
			if tc.invalid == "" {
				if err != nil {
					assert.NotContains(t, err.Error(), "--max-object-size")
					assert.NotContains(t, err.Error(), "--event-log-bytes")
				}
				return
			}
			assert.ErrorContains(t, err, tc.invalid)
		})
	}
}

// TestHTTP2OffByDefault: the server speaks HTTP/1.1 unless told otherwise
// (downloads through the aggregation proxy are cheaper so).
func TestHTTP2OffByDefault(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"--disable-http2-serving=false"}, false},
	} {
		o := NewOptions()
		require.NoError(t, NewCommand(context.Background(), o).Flags().Parse(tc.args))
		assert.Equal(t, tc.want, o.RecommendedOptions.SecureServing.DisableHTTP2Serving, "%v", tc.args)
	}
}

package main

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Functions substitute unset parameters with empty strings; the
// commands must accept upstream's argument lists as they come.
func TestUpstreamArgumentContract(t *testing.T) {
	root := newRootCommand()
	for _, args := range [][]string{
		{"backup", "--namespace=demo", "--backupsession=nfs-pvc-backup-frequent-backup-1704281100", "--enable-cache=true", "--scratch-dir=/kubestash-tmp", "--exclude=", "--paths=/kubestash-data"},
		{"backup", "--namespace=demo", "--backupsession=bs", "--enable-cache=", "--scratch-dir=", "--exclude=/kubestash-data/cache,*.tmp", "--paths="},
		{"restore", "--namespace=demo", "--restoresession=nfs-pvc-restore", "--snapshot=gcs-repository-nfs-pvc-backup-frequent-backup-1704281100", "--enable-cache=true", "--scratch-dir=/kubestash-tmp"},
		{"trigger", "--namespace=demo", "--invoker-name=nfs-pvc-backup", "--invoker-kind=BackupConfiguration", "--session-name=frequent-backup"},
		{"trigger-backup", "--invoker-name=nfs-pvc-backup", "--invoker-kind=BackupConfiguration", "--session-name=frequent-backup"},
	} {
		cmd, rest, err := root.Find(args)
		require.NoError(t, err, args)
		require.NoError(t, cmd.ParseFlags(rest), args)
	}
}

func TestFlagHelpers(t *testing.T) {
	assert.Nil(t, list(""))
	assert.Equal(t, []string{"/a", "*.tmp"}, list(" /a , ,*.tmp,"))
	for in, want := range map[string]bool{"": true, "true": true, "false": false, "0": false} {
		got, err := boolDefault(in, true)
		require.NoError(t, err)
		assert.Equal(t, want, got, in)
	}
	_, err := boolDefault("maybe", true)
	assert.Error(t, err)
}

func TestPodNamespace(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "demo")
	assert.Equal(t, "demo", podNamespace())
	if _, err := os.Stat(serviceAccountNamespace); err == nil {
		t.Skip("running in a Pod: its ServiceAccount namespace would answer")
	}
	t.Setenv("POD_NAMESPACE", "")
	assert.Empty(t, podNamespace(), "outside a Pod")
}

package layout

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKeyAndParse(t *testing.T) {
	cases := []struct {
		kind     Kind
		repo     string
		name     string
		key      string
		wantRepo string
	}{
		{KindRepository, "/pvc-backup-demo", "", "pvc-backup-demo/repository.yaml", "pvc-backup-demo"},
		{KindSnapshot, "demo/pvc/", "s3-repo-bc-frequent-1704281100", "demo/pvc/snapshots/s3-repo-bc-frequent-1704281100.yaml", "demo/pvc"},
		{KindBackupSession, "r", "bc-s-1", "r/backupsessions/bc-s-1.yaml", "r"},
		{KindRestoreSession, "r", "restore", "r/restoresessions/restore.yaml", "r"},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			key, err := Key(c.kind, c.repo, c.name)
			require.NoError(t, err)
			assert.Equal(t, c.key, key)
			k, repo, name, ok := Parse(key)
			require.True(t, ok)
			assert.Equal(t, c.kind, k)
			assert.Equal(t, c.wantRepo, repo)
			assert.Equal(t, c.name, name)
		})
	}
}

func TestKeyRejects(t *testing.T) {
	for _, c := range []struct{ repo, name string }{
		{"", "x"}, {"/", "x"}, {"a/../b", "x"}, {"a//b", "x"}, {"a/snapshots/b", "x"}, {"a/repository", "x"},
		{"r", ""}, {"r", "a/b"}, {"r", ".."},
	} {
		_, err := Key(KindSnapshot, c.repo, c.name)
		assert.Error(t, err, "%q %q", c.repo, c.name)
	}
}

func TestParseIgnoresOtherFiles(t *testing.T) {
	for _, k := range []string{
		"metadata.yaml", "r/repository/v1/s/dump/config", "r/snapshots/x.json", "snapshots/x.yaml",
		"r/other/x.yaml", "r/snapshots/.yaml",
	} {
		_, _, _, ok := Parse(k)
		assert.False(t, ok, k)
	}
}

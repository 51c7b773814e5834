package backenddirs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
)

func TestCheck(t *testing.T) {
	host := func(p, sub string) *storagev1alpha1.LocalSpec {
		return &storagev1alpha1.LocalSpec{MountPath: "/kubestash", SubPath: sub,
			VolumeSource: storagev1alpha1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: p}}}
	}
	pvc := func(mount string) *storagev1alpha1.LocalSpec {
		return &storagev1alpha1.LocalSpec{MountPath: mount,
			VolumeSource: storagev1alpha1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}}
	}
	allowed := Policy{Allowed: []string{"/srv/backups", "/mnt/nfs"}}
	everything := Policy{Allowed: []string{"/"}}
	for _, c := range []struct {
		name    string
		policy  Policy
		local   *storagev1alpha1.LocalSpec
		wantErr string
	}{
		{name: "allowed host path", policy: allowed, local: host("/srv/backups/team-a", "")},
		{name: "the allowed directory itself", policy: allowed, local: host("/srv/backups", "x")},
		{name: "mounted volume under an allowed directory", policy: allowed, local: pvc("/mnt/nfs/a")},
		{name: "nothing allowed by default", local: host("/srv/backups", ""),
			wantErr: "spec.storage.local.hostPath.path: Forbidden: /srv/backups is not allowed: an administrator allows directories for local backends with the servers' --local-backend-dirs"},
		{name: "outside the allowed directories", policy: allowed, local: host("/srv/other", ""),
			wantErr: "spec.storage.local.hostPath.path: Forbidden: /srv/other is not under a directory allowed for local backends (/srv/backups,/mnt/nfs)"},
		{name: "a sibling with the same prefix", policy: allowed, local: host("/srv/backups-evil", ""),
			wantErr: "is not under a directory allowed"},
		{name: "/usr even when / is allowed", policy: everything, local: host("/usr", ""),
			wantErr: "spec.storage.local.hostPath.path: Forbidden: /usr is a system directory (under /usr)"},
		{name: "the kubelet's state", policy: everything, local: host("/var/lib/kubelet/pods", ""),
			wantErr: "is a system directory (under /var/lib/kubelet)"},
		{name: "the root", policy: everything, local: host("/", ""), wantErr: "/ is the root directory"},
		{name: "dot-dot out of an allowed directory", policy: allowed, local: host("/srv/backups/../../etc", ""),
			wantErr: "spec.storage.local.hostPath.path: Invalid value: \"/srv/backups/../../etc\": must be an absolute path without '..'"},
		{name: "relative host path", policy: allowed, local: host("srv/backups", ""), wantErr: "must be an absolute path"},
		{name: "subPath climbing out", policy: allowed, local: host("/srv/backups", "../../etc"),
			wantErr: "spec.storage.local.subPath: Invalid value: \"../../etc\": must be a relative path without '..'"},
		{name: "mounted volume on a system directory", policy: everything, local: pvc("/etc"),
			wantErr: "spec.storage.local.mountPath: Forbidden: /etc is a system directory"},
		{name: "mounted volume outside", policy: allowed, local: pvc("/data"),
			wantErr: "spec.storage.local.mountPath: Forbidden: /data is not under"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.policy.Check(c.local)
			if c.wantErr == "" {
				assert.Nil(t, err)
				return
			}
			require.NotNil(t, err)
			assert.Contains(t, err.Error(), c.wantErr)
		})
	}
}

func TestParse(t *testing.T) {
	p, err := Parse(" /srv/backups/, /mnt/nfs ,")
	require.NoError(t, err)
	assert.Equal(t, []string{"/srv/backups", "/mnt/nfs"}, p.Allowed)
	_, err = Parse("/srv,relative")
	assert.ErrorContains(t, err, `"relative" is not an absolute path`)
}

// TestCheckResolved: a link inside an allowed directory that points at a
// system directory is refused; a plain directory is fine.
func TestCheckResolved(t *testing.T) {
	root := t.TempDir()
	p := Policy{Allowed: []string{root}}
	require.NoError(t, os.Mkdir(filepath.Join(root, "plain"), 0o755))
	require.NoError(t, os.Symlink("/usr", filepath.Join(root, "link")))
	assert.NoError(t, p.CheckResolved(filepath.Join(root, "plain")))
	assert.NoError(t, p.CheckResolved(filepath.Join(root, "not-yet")))
	assert.ErrorContains(t, p.CheckResolved(filepath.Join(root, "link")), "resolves to /usr, which is a system directory")
}

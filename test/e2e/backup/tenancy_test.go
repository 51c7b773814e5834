package backup

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/conditions"
	"kubestash.dev/kubestash/pkg/controller/restoresession"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
	"kubestash.dev/kubestash/pkg/sharing"
)

// TestRestoreStaysInItsNamespace is issue 11's probe 3 rerun: a
// RestoreSession in namespace attacker may neither restore into namespace
// victim nor read victim's snapshots (although victim's storage is shared
// with every namespace): it is Invalid naming the field, pauses none of
// victim's backups and tells nothing of them. Once an administrator lets
// victim share its snapshots with attacker, the same restore works, into
// attacker's own PVC. A restore's pause is undone when its RestoreSession
// is deleted while it runs.
func TestRestoreStaysInItsNamespace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	podLogsOnFailure(t, "attacker")
	victim := newFailEnv(ctx, t, failOptions{NS: "victim", StorageNS: "victim-storage", BC: "victim-backup", Directory: "/victim"})
	snap := victim.snapshot(victim.first)
	client := victim.client

	for _, ns := range []string{"attacker", "pauser"} {
		_, err := env.KubeClient.CoreV1().Namespaces().Create(ctx, tenantNamespace(ns), metav1.CreateOptions{})
		require.NoError(t, err)
		// The attacker knows the password (or guesses it): only the
		// controller's refusal stands between it and the data.
		_, _, err = env.Kubectl(ctx, fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: encrypt-secret, namespace: %s}\nstringData: {RESTIC_PASSWORD: %s}\n",
			ns, victim.o.Password), "apply", "-f", "-")
		require.NoError(t, err)
	}
	pvClaim(ctx, t, "attacker", "target-pvc", t.TempDir())

	restore := func(ns, name, target string) {
		_, _, err := env.Kubectl(ctx, fmt.Sprintf(`apiVersion: catalog.kubestash.com/v1alpha1
kind: RestoreSession
metadata: {name: %s, namespace: %s}
spec:
  target: %s
  dataSource: {namespace: victim, repository: %s, snapshot: latest, encryptionSecret: {name: encrypt-secret}}
  addon: {name: pvc-addon, tasks: [{name: logical-backup-restore}]}
`, name, ns, target, failRepo), "apply", "-f", "-")
		require.NoError(t, err)
	}
	ended := func(ns, name string) *catalogv1alpha1.RestoreSession {
		var rs *catalogv1alpha1.RestoreSession
		require.Eventually(t, func() bool {
			var err error
			rs, err = client.CatalogV1alpha1().RestoreSessions(ns).Get(ctx, name, metav1.GetOptions{})
			return err == nil && rs.Status.Phase.IsTerminal()
		}, time.Minute, time.Second, "RestoreSession %s/%s ends", ns, name)
		return rs
	}
	assertRefused := func(rs *catalogv1alpha1.RestoreSession, field string) {
		t.Helper()
		assert.Equal(t, catalogv1alpha1.RestoreInvalid, rs.Status.Phase)
		msg := ""
		for _, c := range rs.Status.Conditions {
			msg += c.Message + "\n"
		}
		assert.Contains(t, msg, field)
		status, err := json.Marshal(rs.Status)
		require.NoError(t, err)
		for _, secret := range []string{snap.Name, "victim-backup"} {
			assert.NotContains(t, string(status), secret, "the status tells nothing of namespace victim")
		}
		assert.Empty(t, rs.Status.PausedBackups)
	}

	// Into victim's PVC: refused.
	restore("attacker", "into-victim", `{apiGroup: "", kind: PersistentVolumeClaim, name: target-pvc, namespace: victim}`)
	assertRefused(ended("attacker", "into-victim"), `spec.target.namespace: "victim" is not the RestoreSession's namespace "attacker"`)
	// From victim's snapshots into its own PVC: refused too.
	restore("attacker", "from-victim", `{apiGroup: "", kind: PersistentVolumeClaim, name: target-pvc}`)
	assertRefused(ended("attacker", "from-victim"), `spec.dataSource.namespace: namespace "victim" does not share its snapshots with namespace "attacker"`)
	bc, err := client.CoreV1alpha1().BackupConfigurations("victim").Get(ctx, "victim-backup", metav1.GetOptions{})
	require.NoError(t, err)
	assert.False(t, bc.Spec.Paused, "victim's backups were never paused")

	// The administrator shares victim's snapshots with attacker and
	// pauser: the restore works, into attacker's namespace only.
	_, err = env.KubeClient.CoreV1().Namespaces().Patch(ctx, "victim", types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"`+sharing.Annotation+`":"attacker,pauser"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	rs := restoreLatestFrom(ctx, t, env, "attacker", "shared", "victim", failRepo, victim.data)
	assert.Equal(t, catalogv1alpha1.RestoreSucceeded, rs.Status.Phase)

	// pauser: a configuration of a PVC that no pod can mount (unbound),
	// never Ready, and a restore into that PVC that waits for ever. The
	// restore pauses the configuration; deleting the RestoreSession while
	// it waits resumes it.
	_, _, err = env.Kubectl(ctx, fmt.Sprintf(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: unbound-pvc, namespace: pauser}
spec: {accessModes: [ReadWriteOnce], storageClassName: "", resources: {requests: {storage: 1Gi}}}
---
apiVersion: core.kubestash.com/v1alpha1
kind: BackupConfiguration
metadata: {name: unbound-backup, namespace: pauser}
spec:
  target: {apiGroup: "", kind: PersistentVolumeClaim, name: unbound-pvc}
  backends: [{name: s3, storageRef: {name: absent}, retentionPolicy: {name: absent}}]
  sessions:
  - name: frequent
    scheduler: {schedule: "0 0 1 1 *"}
    repositories: [{name: pauser-repo, backend: s3, directory: /pauser, encryptionSecret: {name: encrypt-secret}}]
    addon: {name: pvc-addon, tasks: [{name: logical-backup}]}
`), "apply", "-f", "-")
	require.NoError(t, err)
	restore("pauser", "waits", `{apiGroup: "", kind: PersistentVolumeClaim, name: unbound-pvc}`)
	require.Eventually(t, func() bool {
		bc, err := client.CoreV1alpha1().BackupConfigurations("pauser").Get(ctx, "unbound-backup", metav1.GetOptions{})
		return err == nil && bc.Spec.Paused && strings.HasPrefix(bc.Annotations[restoresession.PausedByAnnotation], "pauser/waits/")
	}, time.Minute, time.Second, "the restore pauses the configuration of its target")
	require.NoError(t, client.CatalogV1alpha1().RestoreSessions("pauser").Delete(ctx, "waits", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		bc, err := client.CoreV1alpha1().BackupConfigurations("pauser").Get(ctx, "unbound-backup", metav1.GetOptions{})
		_, marked := bc.Annotations[restoresession.PausedByAnnotation]
		return err == nil && !bc.Spec.Paused && !marked
	}, time.Minute, time.Second, "deleting the RestoreSession resumes the backups it paused")
}

// TestLocalStorageOnlyWhereAllowed is issue 11's probe 2 rerun: a tenant's
// BackupStorage with provider local on /usr, or on any folder while the
// servers allow none (no --local-backend-dirs here), stays NotReady naming
// the field, and neither server writes or reads there.
func TestLocalStorageOnlyWhereAllowed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	client, err := versioned.NewForConfig(env.Config)
	require.NoError(t, err)
	_, err = env.KubeClient.CoreV1().Namespaces().Create(ctx, tenantNamespace("local-tenant"), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = os.Stat("/usr/metadata.yaml")
	require.True(t, os.IsNotExist(err), "no /usr/metadata.yaml before the test: %v", err)
	folder := t.TempDir()
	t.Cleanup(func() {
		_, _, _ = env.Kubectl(context.Background(), "", "delete", "backupstorages", "--all", "-n", "local-tenant", "--wait")
	})

	for _, c := range []struct{ name, path, want string }{
		{name: "on-usr", path: "/usr", want: "spec.storage.local.hostPath.path: Forbidden: /usr is a system directory (under /usr)"},
		{name: "on-a-folder", path: folder, want: "spec.storage.local.hostPath.path: Forbidden: " + folder + " is not allowed: an administrator allows directories for local backends with the servers' --local-backend-dirs (none are allowed now)"},
	} {
		_, _, err := env.Kubectl(ctx, fmt.Sprintf(`apiVersion: storage.kubestash.com/v1alpha1
kind: BackupStorage
metadata: {name: %s, namespace: local-tenant}
spec:
  storage: {provider: local, local: {mountPath: /data, hostPath: {path: %q}}}
  usagePolicy: {allowedNamespaces: {from: Same}}
  deletionPolicy: Delete
`, c.name, c.path), "apply", "-f", "-")
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			bs, err := client.StorageV1alpha1().BackupStorages("local-tenant").Get(ctx, c.name, metav1.GetOptions{})
			if err != nil || bs.Status.Phase != storagev1alpha1.BackupStoragePhaseNotReady {
				return false
			}
			cond := conditions.Get(bs.Status.Conditions, storagev1alpha1.TypeBackendInitialized)
			return cond != nil && strings.Contains(cond.Message, c.want)
		}, time.Minute, time.Second, "BackupStorage %s NotReady with %q", c.name, c.want)
	}
	for _, f := range []string{"/usr/metadata.yaml", "/usr/.kubestash.lock", filepath.Join(folder, "metadata.yaml")} {
		_, err := os.Stat(f)
		assert.True(t, os.IsNotExist(err), "%s not written: %v", f, err)
	}
	// Nor does the catalog server open them: a Repository there is refused.
	_, _, err = env.Kubectl(ctx, `apiVersion: catalog.kubestash.com/v1alpha1
kind: Repository
metadata: {name: on-usr, namespace: local-tenant}
spec: {storageRef: {name: on-usr}, path: /r, encryptionSecret: {name: encrypt-secret}}
`, "apply", "-f", "-")
	require.Error(t, err, "the catalog server does not serve a storage on /usr")
}

// TestUserAccountNeverGrantedSharedStorage is issue 11's probe 4 rerun: a
// configuration in sa-tenant that uses sa-owner's shared storage and names
// its own ServiceAccount in jobTemplate is Invalid naming the field, and
// that account is never bound to read the owner's Secret.
func TestUserAccountNeverGrantedSharedStorage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	client, err := versioned.NewForConfig(env.Config)
	require.NoError(t, err)
	_, _, err = env.Kubectl(ctx, s3StorageManifest("sa-owner", "sa-owner", "pw-owner")+"  usagePolicy: {allowedNamespaces: {from: All}}\n", "apply", "-f", "-")
	require.NoError(t, err)
	_, err = env.KubeClient.CoreV1().Namespaces().Create(ctx, tenantNamespace("sa-tenant"), metav1.CreateOptions{})
	require.NoError(t, err)
	pvClaim(ctx, t, "sa-tenant", "target-pvc", t.TempDir())
	_, _, err = env.Kubectl(ctx, `apiVersion: v1
kind: ServiceAccount
metadata: {name: my-sa, namespace: sa-tenant}
---
apiVersion: v1
kind: Secret
metadata: {name: encrypt-secret, namespace: sa-tenant}
stringData: {RESTIC_PASSWORD: pw-tenant}
---
apiVersion: storage.kubestash.com/v1alpha1
kind: RetentionPolicy
metadata: {name: keep, namespace: sa-tenant}
spec: {successfulSnapshots: {last: 3}}
---
apiVersion: core.kubestash.com/v1alpha1
kind: BackupConfiguration
metadata: {name: my-backup, namespace: sa-tenant}
spec:
  target: {apiGroup: "", kind: PersistentVolumeClaim, name: target-pvc}
  backends: [{name: s3, storageRef: {name: s3-storage, namespace: sa-owner}, retentionPolicy: {name: keep}}]
  sessions:
  - name: daily
    scheduler: {schedule: "0 0 1 1 *"}
    repositories: [{name: my-repo, backend: s3, directory: /sa-tenant, encryptionSecret: {name: encrypt-secret}}]
    addon:
      name: pvc-addon
      tasks: [{name: logical-backup}]
      jobTemplate: {spec: {serviceAccountName: my-sa}}
`, "apply", "-f", "-")
	require.NoError(t, err)

	want := `spec.sessions[daily].addon.jobTemplate.spec.serviceAccountName: Forbidden: the controller grants BackupStorage sa-owner/s3-storage of another namespace only to the ServiceAccount it makes for its Jobs`
	require.Eventually(t, func() bool {
		bc, err := client.CoreV1alpha1().BackupConfigurations("sa-tenant").Get(ctx, "my-backup", metav1.GetOptions{})
		if err != nil || bc.Status.Phase != corev1alpha1.BackupInvokerInvalid {
			return false
		}
		c := conditions.Get(bc.Status.Conditions, corev1alpha1.TypeValidationPassed)
		return c != nil && strings.Contains(c.Message, want)
	}, time.Minute, time.Second, "the configuration is Invalid naming jobTemplate.spec.serviceAccountName")
	assert.False(t, canGet(ctx, t, "system:serviceaccount:sa-tenant:my-sa", "sa-owner", "secrets", "s3-secret"), "the user's account cannot read the owner's Secret")
	bindings, err := env.KubeClient.RbacV1().RoleBindings("sa-owner").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, b := range bindings.Items {
		for _, s := range b.Subjects {
			assert.False(t, s.Namespace == "sa-tenant" && s.Name == "my-sa", "RoleBinding %s binds my-sa", b.Name)
		}
	}
	sessions, err := client.CatalogV1alpha1().BackupSessions("sa-tenant").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, sessions.Items, "no backup ran")
}

// TestConfigurationTellsNothingOfOtherNamespaces is issue 11's probe 8
// (the status half) rerun: a BackupConfiguration naming another
// namespace's PVC, storage and encryption Secret reads the same whether
// they exist (oracle-full) or not (oracle-empty), and none is used.
func TestConfigurationTellsNothingOfOtherNamespaces(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	client, err := versioned.NewForConfig(env.Config)
	require.NoError(t, err)
	// oracle-full holds all three, its storage not shared (usagePolicy
	// Same by default); oracle-empty holds nothing.
	_, _, err = env.Kubectl(ctx, s3StorageManifest("oracle-full", "oracle-full", "pw-full"), "apply", "-f", "-")
	require.NoError(t, err)
	pvClaim(ctx, t, "oracle-full", "target-pvc", t.TempDir())
	for _, ns := range []string{"oracle", "oracle-empty"} {
		_, err = env.KubeClient.CoreV1().Namespaces().Create(ctx, tenantNamespace(ns), metav1.CreateOptions{})
		require.NoError(t, err)
	}
	messages := map[string]string{}
	for _, other := range []string{"oracle-full", "oracle-empty"} {
		name := "probe-" + strings.TrimPrefix(other, "oracle-")
		_, _, err = env.Kubectl(ctx, fmt.Sprintf(`apiVersion: core.kubestash.com/v1alpha1
kind: BackupConfiguration
metadata: {name: %[1]s, namespace: oracle}
spec:
  target: {apiGroup: "", kind: PersistentVolumeClaim, name: target-pvc, namespace: %[2]s}
  backends: [{name: s3, storageRef: {name: s3-storage, namespace: %[2]s}, retentionPolicy: {name: keep}}]
  sessions:
  - name: daily
    scheduler: {schedule: "0 0 1 1 *"}
    repositories: [{name: repo, backend: s3, directory: /%[1]s, encryptionSecret: {name: encrypt-secret, namespace: %[2]s}}]
    addon: {name: pvc-addon, tasks: [{name: logical-backup}]}
`, name, other), "apply", "-f", "-")
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			bc, err := client.CoreV1alpha1().BackupConfigurations("oracle").Get(ctx, name, metav1.GetOptions{})
			if err != nil || bc.Status.Phase != corev1alpha1.BackupInvokerInvalid {
				return false
			}
			status, err := json.Marshal(bc.Status)
			require.NoError(t, err)
			messages[other] = strings.ReplaceAll(strings.ReplaceAll(string(status), other, "OTHER"), name, "NAME")
			return true
		}, time.Minute, time.Second, "BackupConfiguration %s is Invalid", name)
	}
	// Times aside, the two statuses are the same.
	strip := func(s string) string {
		var st corev1alpha1.BackupConfigurationStatus
		require.NoError(t, json.Unmarshal([]byte(s), &st))
		for i := range st.Conditions {
			st.Conditions[i].LastTransitionTime = metav1.Time{}
		}
		out, err := json.Marshal(st)
		require.NoError(t, err)
		return string(out)
	}
	assert.Equal(t, strip(messages["oracle-full"]), strip(messages["oracle-empty"]))
	assert.Contains(t, messages["oracle-full"], `spec.target.namespace: \"OTHER\" is not the configuration's namespace`)
	assert.Contains(t, messages["oracle-full"], `encryptionSecret.namespace: \"OTHER\" is not the configuration's namespace`)
	assert.Contains(t, messages["oracle-full"], `BackupStorage OTHER/s3-storage does not exist or its usagePolicy does not allow namespace \"oracle\"`)
}

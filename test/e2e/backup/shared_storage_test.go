package backup

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/controller/backupsession"
	"kubestash.dev/kubestash/pkg/controller/restoresession"
)

// TestSharedStorageFromAnotherNamespace: a BackupStorage shared by its
// usagePolicy with every namespace backs up and restores a PVC of another
// namespace. The Jobs there read the storage's Secret, and only that
// Secret, through a grant the controller makes; narrowing the policy
// revokes it, widening it again lets the next backup succeed.
func TestSharedStorageFromAnotherNamespace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	require.NoError(t, startSystem(ctx))
	logsOnFailure(t)
	podLogsOnFailure(t, "shared-user")
	e := newFailEnv(ctx, t, failOptions{NS: "shared-user", StorageNS: "shared-storage", BC: "pvc-backup", Directory: "/shared"})

	backupSA := "system:serviceaccount:shared-user:" + backupsession.BackupServiceAccount
	restoreSA := "system:serviceaccount:shared-user:" + restoresession.RestoreServiceAccount
	assert.True(t, canGet(ctx, t, backupSA, "shared-storage", "secrets", "s3-secret"), "the backup Job reads the shared storage's Secret")
	assert.True(t, canGet(ctx, t, backupSA, "shared-storage", "backupstorages", "s3-storage"), "and the BackupStorage")
	assert.False(t, canGet(ctx, t, backupSA, "shared-storage", "secrets", "another-secret"), "and no other Secret of that namespace")
	assert.False(t, canGet(ctx, t, backupSA, "shared-storage", "secrets", ""), "nor lists them")

	rs := restoreLatest(ctx, t, env, "shared-user", "restore", failRepo, e.data)
	assert.Empty(t, rs.Status.PausedBackups, "backups resumed")
	assert.True(t, canGet(ctx, t, restoreSA, "shared-storage", "secrets", "s3-secret"), "the restore Job was granted the storage's Secret")

	// The storage's owner stops sharing it: the grants go, and the
	// configuration says why it cannot back up.
	setUsage := func(from string) {
		_, err := e.client.StorageV1alpha1().BackupStorages("shared-storage").Patch(ctx, "s3-storage", types.MergePatchType,
			[]byte(`{"spec":{"usagePolicy":{"allowedNamespaces":{"from":"`+from+`"}}}}`), metav1.PatchOptions{})
		require.NoError(t, err)
	}
	setUsage("Same")
	require.Eventually(t, func() bool {
		return !canGet(ctx, t, backupSA, "shared-storage", "secrets", "s3-secret") && !canGet(ctx, t, restoreSA, "shared-storage", "secrets", "s3-secret")
	}, time.Minute, time.Second, "access revoked once the usagePolicy no longer allows the namespace")
	e.waitBC("NotReady naming the usagePolicy", func(bc *corev1alpha1.BackupConfiguration) bool {
		return !isReady(bc) && strings.Contains(readyMessage(bc), "usagePolicy")
	})

	setUsage("All")
	e.waitBC("Ready again", isReady)
	e.backupNow(e.sessionName(2))
	assert.Equal(t, catalogv1alpha1.BackupSessionSucceeded, e.waitSession(e.sessionName(2)), "a backup once the storage is shared again")
}

// canGet asks the API server whether user may get the object ns/name of
// resource (of the core group, or storage.kubestash.com for
// backupstorages); list them when name is empty.
func canGet(ctx context.Context, t *testing.T, user, ns, resource, name string) bool {
	t.Helper()
	verb, group := "get", ""
	if name == "" {
		verb = "list"
	}
	if resource == "backupstorages" {
		group = "storage.kubestash.com"
	}
	sar, err := env.KubeClient.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               user,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + strings.Split(user, ":")[2], "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: group, Resource: resource, Name: name},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return sar.Status.Allowed
}

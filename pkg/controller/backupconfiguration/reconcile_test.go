package backupconfiguration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	addonsv1alpha1 "kubestash.dev/kubestash/pkg/apis/addons/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/conditions"
	"kubestash.dev/kubestash/pkg/controller/access"
	"kubestash.dev/kubestash/pkg/controller/lookup/lookuptest"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned/fake"
)

var now = time.Date(2026, 11, 26, 10, 2, 3, 0, time.UTC)

func fixtures() (kube []runtime.Object, ks []runtime.Object) {
	kube = []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "target-pvc"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "encrypt-secret"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte("x")}},
	}
	all := storagev1alpha1.NamespacesFromAll
	ks = []runtime.Object{
		&storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "s3-storage"},
			Spec:   storagev1alpha1.BackupStorageSpec{UsagePolicy: &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: &all}}},
			Status: storagev1alpha1.BackupStorageStatus{Phase: storagev1alpha1.BackupStoragePhaseReady}},
		&storagev1alpha1.RetentionPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "keep"}},
		&addonsv1alpha1.Addon{ObjectMeta: metav1.ObjectMeta{Name: "pvc-addon"},
			Spec: addonsv1alpha1.AddonSpec{BackupTasks: []addonsv1alpha1.Task{{Name: "logical-backup", Function: "pvc-backup"}}}},
		backupConfiguration(),
	}
	return kube, ks
}

func backupConfiguration() *corev1alpha1.BackupConfiguration {
	bc := &corev1alpha1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "pvc-backup", UID: "bc-uid", CreationTimestamp: metav1.NewTime(now)},
		Spec: corev1alpha1.BackupConfigurationSpec{
			Target: &kmapi.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "target-pvc", Namespace: "demo"},
			Backends: []corev1alpha1.BackendReference{{Name: "s3", StorageRef: &kmapi.ObjectReference{Name: "s3-storage"},
				RetentionPolicy: &kmapi.ObjectReference{Name: "keep"}}},
			Sessions: []corev1alpha1.Session{{
				SessionConfig: corev1alpha1.SessionConfig{Name: "frequent-backup", Scheduler: &corev1alpha1.SchedulerSpec{Schedule: "*/5 * * * *"},
					RetryConfig: &corev1alpha1.RetryConfig{MaxRetry: 2}},
				Addon:        &corev1alpha1.AddonInfo{Name: "pvc-addon", Tasks: []corev1alpha1.TaskReference{{Name: "logical-backup"}}},
				Repositories: []corev1alpha1.RepositoryInfo{{Name: "s3-repo", Backend: "s3", Directory: "/pvc-backup-demo", EncryptionSecret: &kmapi.ObjectReference{Name: "encrypt-secret"}}},
			}},
		},
	}
	return bc
}

type env struct {
	r        *Reconciler
	kube     *kubefake.Clientset
	ks       *fake.Clientset
	informed *lookuptest.Informed
}

// newEnv is the fixtures, changed by mutate, in the fakes, and a
// reconciler that reads them through started, synced informers, as the
// controller's does, with the controller's default catalog server account.
func newEnv(t *testing.T, mutate func(kube, ks *[]runtime.Object)) *env {
	kube, ks := fixtures()
	if mutate != nil {
		mutate(&kube, &ks)
	}
	e := &env{kube: kubefake.NewSimpleClientset(kube...), ks: fake.NewSimpleClientset(ks...)}
	e.informed = lookuptest.NewInformed(t, e.kube, e.ks)
	e.r = &Reconciler{Kube: e.kube, Client: e.ks, Recorder: record.NewFakeRecorder(100), AgentImage: "kubestash/agent:dev", Clock: clocktesting.NewFakePassiveClock(now),
		CatalogServerAccount: access.DefaultCatalogServerAccount, Reads: e.informed.Reads}
	return e
}

// reconcile reconciles demo/pvc-backup once the caches have caught up
// with the fakes, and returns the writes it made to both.
func (e *env) reconcile(t *testing.T) ([]string, error) {
	t.Helper()
	return e.informed.Reconcile(t, func() error { return e.r.Reconcile(context.Background(), "demo", "pvc-backup") })
}

func (e *env) bc(t *testing.T) *corev1alpha1.BackupConfiguration {
	bc, err := e.ks.CoreV1alpha1().BackupConfigurations("demo").Get(context.Background(), "pvc-backup", metav1.GetOptions{})
	require.NoError(t, err)
	return bc
}

func TestReconcileReady(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	writes, err := e.reconcile(t)
	require.NoError(t, err)
	// The grant of the encryption Secret to the catalog server, the
	// trigger's account, the CronJob and the Repository; the status says
	// Ready before the first backup is created, and then that it was.
	assert.Equal(t, []string{
		"create roles demo/kubestash-catalog-encryption-pvc-backup", "create rolebindings demo/kubestash-catalog-encryption-pvc-backup",
		"create serviceaccounts demo/kubestash-trigger", "create rolebindings demo/kubestash-trigger",
		"create cronjobs demo/trigger-pvc-backup-frequent-backup",
		"create repositories demo/s3-repo", "update backupconfigurations/status demo/pvc-backup",
		fmt.Sprintf("create backupsessions demo/pvc-backup-frequent-backup-%d", now.Unix()), "update backupconfigurations/status demo/pvc-backup",
	}, writes)

	bc := e.bc(t)
	assert.Equal(t, corev1alpha1.BackupInvokerReady, bc.Status.Phase)
	assert.True(t, ptr.Deref(bc.Status.TargetFound, false))
	require.Len(t, bc.Status.Sessions, 1)
	assert.Equal(t, "2026-11-26T10:05:00Z", bc.Status.Sessions[0].NextSchedule)
	assert.True(t, conditions.IsTrue(bc.Status.Sessions[0].Conditions, corev1alpha1.TypeSchedulerEnsured))
	assert.True(t, conditions.IsTrue(bc.Status.Sessions[0].Conditions, corev1alpha1.TypeInitialBackupTriggered))
	assert.True(t, conditions.IsTrue(bc.Status.Conditions, corev1alpha1.TypeReady))
	assert.Contains(t, bc.Status.Dependencies, corev1alpha1.ResourceFoundStatus{Kind: "Secret", Namespace: "demo", Name: "encrypt-secret", Found: ptr.To(true)})

	repo, err := e.ks.CatalogV1alpha1().Repositories("demo").Get(ctx, "s3-repo", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "/pvc-backup-demo", repo.Spec.Path)
	assert.Equal(t, kmapi.ObjectReference{Namespace: "demo", Name: "s3-storage"}, repo.Spec.StorageRef)
	assert.Equal(t, "target-pvc", repo.Spec.AppRef.Name)
	assert.Empty(t, repo.OwnerReferences, "catalog objects never carry owner references")

	cj, err := e.kube.BatchV1().CronJobs("demo").Get(ctx, "trigger-pvc-backup-frequent-backup", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "*/5 * * * *", cj.Spec.Schedule)
	assert.False(t, *cj.Spec.Suspend)
	c := cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "kubestash/agent:dev", c.Image)
	assert.Equal(t, []string{"trigger", "--namespace=demo", "--invoker-name=pvc-backup", "--invoker-kind=BackupConfiguration", "--session-name=frequent-backup"}, c.Args)
	assert.Equal(t, TriggerServiceAccount, cj.Spec.JobTemplate.Spec.Template.Spec.ServiceAccountName)
	assert.True(t, metav1.IsControlledBy(cj, bc))
	_, err = e.kube.RbacV1().RoleBindings("demo").Get(ctx, TriggerServiceAccount, metav1.GetOptions{})
	require.NoError(t, err)

	sessions, err := e.ks.CatalogV1alpha1().BackupSessions("demo").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, sessions.Items, 1)
	bs := sessions.Items[0]
	assert.Equal(t, fmt.Sprintf("pvc-backup-frequent-backup-%d", now.Unix()), bs.Name)
	assert.Equal(t, "frequent-backup", bs.Spec.Session)
	assert.Equal(t, int32(2), bs.Spec.RetryLeft)
	assert.Equal(t, "pvc-backup", bs.Labels["kubestash.com/invoker-name"])

	// Idempotent: a second pass changes nothing and triggers no second backup.
	e.r.Clock = clocktesting.NewFakePassiveClock(now.Add(time.Minute))
	writes, err = e.reconcile(t)
	require.NoError(t, err)
	assert.Empty(t, writes)
	sessions, err = e.ks.CatalogV1alpha1().BackupSessions("demo").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, sessions.Items, 1)
}

func TestReconcileProblems(t *testing.T) {
	// Not ready: the schedule is in place (its BackupSessions wait for
	// Ready), but no Repository is created and nothing is granted yet.
	notReadyWrites := []string{"create serviceaccounts demo/kubestash-trigger", "create rolebindings demo/kubestash-trigger",
		"create cronjobs demo/trigger-pvc-backup-frequent-backup", "update backupconfigurations/status demo/pvc-backup"}
	// Invalid: only the status says why.
	invalidWrites := []string{"update backupconfigurations/status demo/pvc-backup"}
	cases := []struct {
		name      string
		mutate    func(kube, ks *[]runtime.Object)
		phase     corev1alpha1.BackupInvokerPhase
		cronJob   bool
		repo      bool
		inMessage string
		// notReady is in the message of the Ready condition.
		notReady   string
		wantWrites []string
	}{
		{
			name: "missing PVC",
			mutate: func(kube, _ *[]runtime.Object) {
				*kube = (*kube)[:1:1]
				*kube = append(*kube, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "encrypt-secret"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte("x")}})
			},
			phase: corev1alpha1.BackupInvokerNotReady, cronJob: true, wantWrites: notReadyWrites,
			notReady: "target PersistentVolumeClaim demo/target-pvc not found",
		},
		{
			name: "PVC being deleted",
			mutate: func(kube, _ *[]runtime.Object) {
				pvc := (*kube)[1].(*corev1.PersistentVolumeClaim)
				pvc.DeletionTimestamp = &metav1.Time{Time: now}
				pvc.Finalizers = []string{"kubernetes.io/pvc-protection"}
			},
			phase: corev1alpha1.BackupInvokerNotReady, cronJob: true, wantWrites: notReadyWrites,
			notReady: "target PersistentVolumeClaim demo/target-pvc is being deleted",
		},
		{
			name: "encryption secret without RESTIC_PASSWORD",
			mutate: func(kube, _ *[]runtime.Object) {
				(*kube)[2].(*corev1.Secret).Data = map[string][]byte{"OTHER": []byte("x")}
			},
			phase: corev1alpha1.BackupInvokerNotReady, cronJob: true, wantWrites: notReadyWrites,
			notReady: "encryption Secret demo/encrypt-secret has no RESTIC_PASSWORD",
		},
		{
			name:   "missing encryption secret",
			mutate: func(kube, _ *[]runtime.Object) { *kube = (*kube)[:2:2] },
			phase:  corev1alpha1.BackupInvokerNotReady, cronJob: true, wantWrites: notReadyWrites,
			notReady: "encryption Secret demo/encrypt-secret of repository s3-repo not found",
		},
		{
			name: "storage not Ready: its Secret is missing",
			mutate: func(_, ks *[]runtime.Object) {
				st := &(*ks)[0].(*storagev1alpha1.BackupStorage).Status
				st.Phase = storagev1alpha1.BackupStoragePhaseNotReady
				st.Conditions = []kmapi.Condition{
					conditions.False(storagev1alpha1.TypeBackendSecretFound, storagev1alpha1.ReasonBackendSecretNotAvailable, "Secret demo/s3-secret: not found"),
				}
			},
			phase: corev1alpha1.BackupInvokerNotReady, cronJob: true, wantWrites: notReadyWrites,
			notReady: "BackupStorage demo/s3-storage is not Ready: Secret demo/s3-secret: not found",
		},
		{
			name: "storage not usable from this namespace",
			mutate: func(_, ks *[]runtime.Object) {
				(*ks)[0].(*storagev1alpha1.BackupStorage).Namespace = "stash"
				bc := (*ks)[3].(*corev1alpha1.BackupConfiguration)
				bc.Spec.Backends[0].StorageRef.Namespace = "stash"
				(*ks)[0].(*storagev1alpha1.BackupStorage).Spec.UsagePolicy = nil
			},
			// The same words as for a storage that does not exist.
			phase: corev1alpha1.BackupInvokerNotReady, cronJob: true, wantWrites: notReadyWrites,
			notReady: `BackupStorage stash/s3-storage does not exist or its usagePolicy does not allow namespace "demo"`,
		},
		{
			name: "storage of another namespace that does not exist",
			mutate: func(_, ks *[]runtime.Object) {
				bc := (*ks)[3].(*corev1alpha1.BackupConfiguration)
				bc.Spec.Backends[0].StorageRef.Namespace = "stash"
			},
			phase: corev1alpha1.BackupInvokerNotReady, cronJob: true, wantWrites: notReadyWrites,
			notReady: `BackupStorage stash/s3-storage does not exist or its usagePolicy does not allow namespace "demo"`,
		},
		{
			name: "own storage not usable: the owner sees why",
			mutate: func(_, ks *[]runtime.Object) {
				(*ks)[0].(*storagev1alpha1.BackupStorage).Spec.UsagePolicy = &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: ptr.To(storagev1alpha1.NamespacesFromSelector)}}
			},
			phase: corev1alpha1.BackupInvokerInvalid, wantWrites: invalidWrites, inMessage: "BackupStorage demo/s3-storage:",
		},
		{
			name: "target in another namespace",
			mutate: func(_, ks *[]runtime.Object) {
				(*ks)[3].(*corev1alpha1.BackupConfiguration).Spec.Target.Namespace = "other"
			},
			phase: corev1alpha1.BackupInvokerInvalid, wantWrites: invalidWrites,
			inMessage: `spec.target.namespace: "other" is not the configuration's namespace "demo"`,
		},
		{
			name: "encryption secret in another namespace",
			mutate: func(_, ks *[]runtime.Object) {
				bc := (*ks)[3].(*corev1alpha1.BackupConfiguration)
				bc.Spec.Sessions[0].Repositories[0].EncryptionSecret.Namespace = "other"
			},
			phase: corev1alpha1.BackupInvokerInvalid, wantWrites: invalidWrites,
			inMessage: `spec.sessions[frequent-backup].repositories[s3-repo].encryptionSecret.namespace: "other" is not the configuration's namespace "demo"`,
		},
		{
			// Stored before the CRD's CEL rule refused it.
			name: "hostPath in addonVolumes",
			mutate: func(_, ks *[]runtime.Object) {
				bc := (*ks)[3].(*corev1alpha1.BackupConfiguration)
				bc.Spec.Sessions[0].Addon.Tasks[0].AddonVolumes = []corev1alpha1.AddonVolumeInfo{{Name: "kubestash-tmp-volume",
					Source: &addonsv1alpha1.VolumeSource{VolumeSource: storagev1alpha1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc"}}}}}
			},
			phase: corev1alpha1.BackupInvokerInvalid, wantWrites: invalidWrites,
			inMessage: "spec.sessions[frequent-backup].addon.tasks[0].addonVolumes[0].source.hostPath: Forbidden: only persistentVolumeClaim, emptyDir, " +
				"configMap, secret and volumeClaimTemplate (ephemeral) volumes may be set by a user; hostPath, nfs and other node-level sources only come from the Addon's volumeTemplate",
		},
		{
			name: "the user's ServiceAccount with a shared storage",
			mutate: func(_, ks *[]runtime.Object) {
				(*ks)[0].(*storagev1alpha1.BackupStorage).Namespace = "stash"
				bc := (*ks)[3].(*corev1alpha1.BackupConfiguration)
				bc.Spec.Backends[0].StorageRef.Namespace = "stash"
				bc.Spec.Sessions[0].Addon.JobTemplate = &storagev1alpha1.PodTemplateSpec{Spec: storagev1alpha1.PodSpec{ServiceAccountName: "my-sa"}}
			},
			phase: corev1alpha1.BackupInvokerInvalid, wantWrites: invalidWrites,
			inMessage: `spec.sessions[frequent-backup].addon.jobTemplate.spec.serviceAccountName: Forbidden: the controller grants BackupStorage stash/s3-storage ` +
				`of another namespace only to the ServiceAccount it makes for its Jobs (kubestash-backup), not to ServiceAccount "my-sa"`,
		},
		{
			name: "addon without the task",
			mutate: func(_, ks *[]runtime.Object) {
				(*ks)[2].(*addonsv1alpha1.Addon).Spec.BackupTasks[0].Name = "other"
			},
			phase: corev1alpha1.BackupInvokerInvalid, wantWrites: invalidWrites, inMessage: "no backup task logical-backup",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, c.mutate)
			writes, err := e.reconcile(t)
			assert.Equal(t, c.wantWrites, writes)
			if c.phase == corev1alpha1.BackupInvokerNotReady {
				assert.True(t, IsRequeue(err), "not ready: look again later, got %v", err)
			}
			bc := e.bc(t)
			assert.Equal(t, c.phase, bc.Status.Phase)
			if c.inMessage != "" {
				assert.Contains(t, conditions.Get(bc.Status.Conditions, corev1alpha1.TypeValidationPassed).Message, c.inMessage)
			}
			ready := conditions.Get(bc.Status.Conditions, corev1alpha1.TypeReady)
			require.NotNil(t, ready)
			assert.Equal(t, metav1.ConditionFalse, ready.Status)
			if c.notReady != "" {
				assert.Equal(t, corev1alpha1.ReasonDependenciesNotReady, ready.Reason)
				assert.Contains(t, ready.Message, c.notReady)
			}
			if c.inMessage != "" {
				assert.Contains(t, ready.Message, c.inMessage)
			}
			_, err = e.kube.BatchV1().CronJobs("demo").Get(ctx, "trigger-pvc-backup-frequent-backup", metav1.GetOptions{})
			assert.Equal(t, c.cronJob, err == nil, "cron job exists: %v", err)
			_, err = e.ks.CatalogV1alpha1().Repositories("demo").Get(ctx, "s3-repo", metav1.GetOptions{})
			assert.Equal(t, c.repo, err == nil, "repository exists")
			sessions, err := e.ks.CatalogV1alpha1().BackupSessions("demo").List(ctx, metav1.ListOptions{})
			require.NoError(t, err)
			assert.Empty(t, sessions.Items, "no backup is triggered")

			// The requeue of a configuration that is not ready, or a resync
			// of an invalid one, writes nothing while nothing changed.
			writes, _ = e.reconcile(t)
			assert.Empty(t, writes)
		})
	}
}

// TestUserServiceAccountWithOwnStorage: a jobTemplate's serviceAccountName
// is fine while every storage is of the configuration's namespace (the
// Job's Secrets come by secretKeyRef; nothing is granted), and also with a
// shared storage when it names the controller's own backup account.
func TestUserServiceAccountWithOwnStorage(t *testing.T) {
	for _, c := range []struct {
		name, sa string
		shared   bool
	}{
		{name: "the user's account, own storage", sa: "my-sa"},
		{name: "the controller's account, shared storage", sa: "kubestash-backup", shared: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(_, ks *[]runtime.Object) {
				bc := (*ks)[3].(*corev1alpha1.BackupConfiguration)
				bc.Spec.Sessions[0].Addon.JobTemplate = &storagev1alpha1.PodTemplateSpec{Spec: storagev1alpha1.PodSpec{ServiceAccountName: c.sa}}
				if c.shared {
					(*ks)[0].(*storagev1alpha1.BackupStorage).Namespace = "stash"
					bc.Spec.Backends[0].StorageRef.Namespace = "stash"
				}
			})
			_, err := e.reconcile(t)
			require.NoError(t, err)
			assert.Equal(t, corev1alpha1.BackupInvokerReady, e.bc(t).Status.Phase)
		})
	}
}

func TestPausedSuspendsAndTriggersNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(_, ks *[]runtime.Object) { (*ks)[3].(*corev1alpha1.BackupConfiguration).Spec.Paused = true })
	writes, err := e.reconcile(t)
	require.NoError(t, err)
	// All in place but no BackupSession.
	assert.Equal(t, []string{
		"create roles demo/kubestash-catalog-encryption-pvc-backup", "create rolebindings demo/kubestash-catalog-encryption-pvc-backup",
		"create serviceaccounts demo/kubestash-trigger", "create rolebindings demo/kubestash-trigger",
		"create cronjobs demo/trigger-pvc-backup-frequent-backup",
		"create repositories demo/s3-repo", "update backupconfigurations/status demo/pvc-backup",
	}, writes)
	cj, err := e.kube.BatchV1().CronJobs("demo").Get(ctx, "trigger-pvc-backup-frequent-backup", metav1.GetOptions{})
	require.NoError(t, err)
	assert.True(t, *cj.Spec.Suspend)
	sessions, err := e.ks.CatalogV1alpha1().BackupSessions("demo").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, sessions.Items)
	assert.Empty(t, e.bc(t).Status.Sessions[0].NextSchedule)

	// Resume: the CronJob runs again and the first backup is taken.
	bc := e.bc(t)
	bc.Spec.Paused = false
	_, err = e.ks.CoreV1alpha1().BackupConfigurations("demo").Update(ctx, bc, metav1.UpdateOptions{})
	require.NoError(t, err)
	writes, err = e.reconcile(t)
	require.NoError(t, err)
	assert.Equal(t, []string{"update cronjobs demo/trigger-pvc-backup-frequent-backup",
		"update backupconfigurations/status demo/pvc-backup", // the next schedule
		fmt.Sprintf("create backupsessions demo/pvc-backup-frequent-backup-%d", now.Unix()), "update backupconfigurations/status demo/pvc-backup",
	}, writes)
	cj, err = e.kube.BatchV1().CronJobs("demo").Get(ctx, "trigger-pvc-backup-frequent-backup", metav1.GetOptions{})
	require.NoError(t, err)
	assert.False(t, *cj.Spec.Suspend)
	sessions, err = e.ks.CatalogV1alpha1().BackupSessions("demo").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, sessions.Items, 1)
}

func TestCronJobName(t *testing.T) {
	assert.Equal(t, "trigger-pvc-backup-frequent-backup", CronJobName("pvc-backup", "frequent-backup"))
	long := CronJobName("a-very-long-backup-configuration-name-for-tests", "and-a-long-session-name")
	assert.LessOrEqual(t, len(long), maxCronJobName)
}

// TestLookupFailureIsNotMissing: an Addon that cannot be read now (not in
// the cache yet, and the API answers 503) is not reported as not found,
// and the configuration is not Ready until it is read.
func TestLookupFailureIsNotMissing(t *testing.T) {
	// The cache answers only with what it has: a failure can only come
	// from the API, asked for what the cache lacks.
	e := newEnv(t, func(_, ks *[]runtime.Object) {
		*ks = append((*ks)[:2:2], (*ks)[3])
	})
	e.ks.PrependReactor("get", "addons", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("etcd leader changed")
	})
	_, _ = e.reconcile(t)
	bc := e.bc(t)
	assert.NotEqual(t, corev1alpha1.BackupInvokerReady, bc.Status.Phase)
	ready := conditions.Get(bc.Status.Conditions, corev1alpha1.TypeReady)
	require.NotNil(t, ready)
	assert.Contains(t, ready.Message, "Addon pvc-addon: etcd leader changed")
	assert.NotContains(t, ready.Message, "not found")
	for _, d := range bc.Status.Dependencies {
		if d.Kind == "Addon" {
			assert.Nil(t, d.Found, "not known either way")
		}
	}
}

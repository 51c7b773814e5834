package restoresession

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	addonsv1alpha1 "kubestash.dev/kubestash/pkg/apis/addons/v1alpha1"
	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/conditions"
	"kubestash.dev/kubestash/pkg/controller/lookup/lookuptest"
	"kubestash.dev/kubestash/pkg/controller/loop"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned/fake"
)

var now = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func load[T any](t *testing.T, name string) *T {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "artifacts", "addons", name))
	require.NoError(t, err)
	var v T
	require.NoError(t, yaml.UnmarshalStrict(b, &v))
	return &v
}

// newEnv is a restore of Snapshot repo-1 of Repository repo (namespace
// demo) into PVC target-pvc, kept in BackupStorage storageNS/s3-storage,
// shared with every namespace; mutate changes the RestoreSession. The
// reconciler reads through the informers it returns.
func newEnv(t *testing.T, storageNS string, mutate func(*catalogv1alpha1.RestoreSession)) (*Reconciler, *kubefake.Clientset, *fake.Clientset, *lookuptest.Informed) {
	all := storagev1alpha1.NamespacesFromAll
	storage := &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: storageNS, Name: "s3-storage", UID: "bs-uid"}, Spec: storagev1alpha1.BackupStorageSpec{
		Storage:     storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderS3, S3: &storagev1alpha1.S3Spec{Bucket: "b", SecretName: "s3-secret"}},
		UsagePolicy: &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: &all}}}}
	repo := &catalogv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "repo"}, Spec: catalogv1alpha1.RepositorySpec{
		StorageRef: kmapi.ObjectReference{Namespace: storageNS, Name: "s3-storage"}, EncryptionSecret: &kmapi.ObjectReference{Name: "encrypt-secret"}}}
	snap := &catalogv1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "repo-1"},
		Spec:   catalogv1alpha1.SnapshotSpec{Repository: "repo", AppRef: kmapi.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "target-pvc", Namespace: "demo"}},
		Status: catalogv1alpha1.SnapshotStatus{Phase: catalogv1alpha1.SnapshotSucceeded, Components: map[string]catalogv1alpha1.Component{"dump": {}}}}
	rs := &catalogv1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "restore", CreationTimestamp: metav1.NewTime(now)},
		Spec: catalogv1alpha1.RestoreSessionSpec{
			DataSource: catalogv1alpha1.RestoreDataSource{Namespace: "demo", Repository: "repo", Snapshot: "repo-1"},
			Addon:      &corev1alpha1.AddonInfo{Name: "pvc-addon", Tasks: []corev1alpha1.TaskReference{{Name: "logical-backup-restore"}}},
		}}
	if mutate != nil {
		mutate(rs)
	}
	kube := kubefake.NewClientset(&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "target-pvc"}})
	ks := fake.NewSimpleClientset(storage, repo, snap, rs,
		load[addonsv1alpha1.Addon](t, "pvc-addon.yaml"), load[addonsv1alpha1.Function](t, "pvc-restore-function.yaml"))
	informed := lookuptest.NewInformed(t, kube, ks)
	r := &Reconciler{Kube: kube, Client: ks, Recorder: record.NewFakeRecorder(100), Clock: clocktesting.NewFakePassiveClock(now), Reads: informed.Reads}
	return r, kube, ks, informed
}

// TestRestoreStorageGrantedOnlyToOwnAccount: a storage of another namespace
// is granted only to the controller's kubestash-restore. A jobTemplate
// naming the user's account is honoured with a storage of the namespace,
// and refused, naming the field, with a shared one: nothing is granted to
// the user's account.
func TestRestoreStorageGrantedOnlyToOwnAccount(t *testing.T) {
	for _, c := range []struct {
		name, storageNS, userSA string
		wantSA                  string // "": no Job
		wantGrant               bool
		wantErr                 string
		wantWrites              []string
	}{
		{name: "shared storage", storageNS: "stash", wantSA: RestoreServiceAccount, wantGrant: true, wantWrites: []string{
			"create serviceaccounts demo/kubestash-restore", "create rolebindings demo/kubestash-restore",
			"create roles stash/kubestash-use-s3-storage", "create rolebindings stash/kubestash-use-s3-storage-fcdf843d7e",
			"create jobs demo/restore", "update restoresessions/status demo/restore"}},
		{name: "shared storage, the user's account in jobTemplate", storageNS: "stash", userSA: "my-sa",
			wantErr: `spec.addon.jobTemplate.spec.serviceAccountName: Forbidden: the controller grants BackupStorage stash/s3-storage of another namespace only to the ServiceAccount it makes for its Jobs (kubestash-restore), not to ServiceAccount "my-sa"`,
			wantWrites: []string{"create serviceaccounts demo/kubestash-restore", "create rolebindings demo/kubestash-restore",
				"update restoresessions/status demo/restore"}},
		{name: "own storage, the user's account in jobTemplate", storageNS: "demo", userSA: "my-sa", wantSA: "my-sa", wantWrites: []string{
			"create serviceaccounts demo/kubestash-restore", "create rolebindings demo/kubestash-restore",
			"create jobs demo/restore", "update restoresessions/status demo/restore"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			r, kube, ks, informed := newEnv(t, c.storageNS, func(rs *catalogv1alpha1.RestoreSession) {
				if c.userSA != "" {
					rs.Spec.Addon.JobTemplate = &storagev1alpha1.PodTemplateSpec{Spec: storagev1alpha1.PodSpec{ServiceAccountName: c.userSA}}
				}
			})
			writes, _ := informed.Reconcile(t, func() error { return r.Reconcile(ctx, "demo", "restore") })
			assert.Equal(t, c.wantWrites, writes)
			job, err := kube.BatchV1().Jobs("demo").Get(ctx, "restore", metav1.GetOptions{})
			if c.wantErr != "" {
				assert.True(t, apierrors.IsNotFound(err), "no Job: %v", err)
				assertExecutorRefused(t, ks, c.wantErr)
			} else {
				require.NoError(t, err)
				assert.Equal(t, c.wantSA, job.Spec.Template.Spec.ServiceAccountName)
			}

			grants, err := kube.RbacV1().RoleBindings("stash").List(ctx, metav1.ListOptions{})
			require.NoError(t, err)
			if !c.wantGrant {
				assert.Empty(t, grants.Items)
				return
			}
			require.Len(t, grants.Items, 1)
			assert.Equal(t, []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: RestoreServiceAccount, Namespace: "demo"}}, grants.Items[0].Subjects)
		})
	}
}

// TestRestoreJobTemplateApplied: every field of a RestoreSession's
// jobTemplate reaches the Job, the controller's labels win, and what would
// lift the pod above the baseline Pod Security level is refused.
func TestRestoreJobTemplateApplied(t *testing.T) {
	ctx := context.Background()
	jt := &storagev1alpha1.PodTemplateSpec{
		Metadata:   storagev1alpha1.PartialObjectMeta{Labels: map[string]string{"team": "a", storagev1alpha1.LabelComponent: "mine"}, Annotations: map[string]string{"note": "pod"}},
		Controller: storagev1alpha1.PartialObjectMeta{Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"note": "job"}},
		Spec: storagev1alpha1.PodSpec{
			NodeSelector:                  map[string]string{"disk": "ssd"},
			Tolerations:                   []corev1.Toleration{{Key: "backup", Operator: corev1.TolerationOpExists}},
			PriorityClassName:             "low",
			SchedulerName:                 "my-scheduler",
			RuntimeClassName:              ptr.To("gvisor"),
			TerminationGracePeriodSeconds: ptr.To(int64(5)),
			SecurityContext:               &corev1.PodSecurityContext{FSGroup: ptr.To(int64(2000))},
			ContainerSecurityContext:      &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"CHOWN"}}},
			Resources:                     &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}},
			ImagePullSecrets:              []corev1.LocalObjectReference{{Name: "regcred"}},
			AutomountServiceAccountToken:  ptr.To(true),
		},
	}
	r, kube, _, _ := newEnv(t, "demo", func(rs *catalogv1alpha1.RestoreSession) { rs.Spec.Addon.JobTemplate = jt })
	_ = r.Reconcile(ctx, "demo", "restore")
	job, err := kube.BatchV1().Jobs("demo").Get(ctx, "restore", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "a", job.Labels["team"])
	assert.Equal(t, "job", job.Annotations["note"])
	tpl := job.Spec.Template
	assert.Equal(t, "a", tpl.Labels["team"])
	assert.Equal(t, "kubestash-restore", tpl.Labels[storagev1alpha1.LabelComponent], "the controller's labels win")
	assert.Equal(t, "pod", tpl.Annotations["note"])
	pod := tpl.Spec
	assert.Equal(t, jt.Spec.NodeSelector, pod.NodeSelector)
	assert.Equal(t, jt.Spec.Tolerations, pod.Tolerations)
	assert.Equal(t, "low", pod.PriorityClassName)
	assert.Equal(t, "my-scheduler", pod.SchedulerName)
	assert.Equal(t, ptr.To("gvisor"), pod.RuntimeClassName)
	assert.Equal(t, ptr.To(int64(5)), pod.TerminationGracePeriodSeconds)
	assert.Equal(t, jt.Spec.SecurityContext, pod.SecurityContext)
	assert.Equal(t, jt.Spec.ImagePullSecrets, pod.ImagePullSecrets)
	assert.Equal(t, ptr.To(true), pod.AutomountServiceAccountToken)
	require.Len(t, pod.Containers, 1)
	assert.Equal(t, jt.Spec.ContainerSecurityContext, pod.Containers[0].SecurityContext)
	assert.Equal(t, *jt.Spec.Resources, pod.Containers[0].Resources)

	for _, c := range []struct {
		name    string
		mutate  func(*storagev1alpha1.PodTemplateSpec)
		wantErr string
	}{
		{name: "privileged", mutate: func(jt *storagev1alpha1.PodTemplateSpec) {
			jt.Spec.ContainerSecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		}, wantErr: "spec.addon.jobTemplate.spec.containerSecurityContext.privileged: Forbidden"},
		{name: "SYS_ADMIN", mutate: func(jt *storagev1alpha1.PodTemplateSpec) {
			jt.Spec.ContainerSecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}}}
		}, wantErr: "spec.addon.jobTemplate.spec.containerSecurityContext.capabilities.add[0]: Forbidden: SYS_ADMIN is beyond the baseline Pod Security level"},
		{name: "unconfined seccomp", mutate: func(jt *storagev1alpha1.PodTemplateSpec) {
			jt.Spec.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}}
		}, wantErr: "spec.addon.jobTemplate.spec.securityContext.seccompProfile.type: Forbidden"},
		{name: "sysctls", mutate: func(jt *storagev1alpha1.PodTemplateSpec) {
			jt.Spec.SecurityContext = &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "kernel.shm_rmid_forced", Value: "1"}}}
		}, wantErr: "spec.addon.jobTemplate.spec.securityContext.sysctls: Forbidden"},
		{name: "priority", mutate: func(jt *storagev1alpha1.PodTemplateSpec) { jt.Spec.Priority = ptr.To(int32(1000)) },
			wantErr: "spec.addon.jobTemplate.spec.priority: Forbidden"},
		{name: "pod name", mutate: func(jt *storagev1alpha1.PodTemplateSpec) { jt.Metadata.Name = "x" },
			wantErr: "spec.addon.jobTemplate.metadata.name: Forbidden"},
	} {
		t.Run(c.name, func(t *testing.T) {
			jt := &storagev1alpha1.PodTemplateSpec{}
			c.mutate(jt)
			r, kube, ks, _ := newEnv(t, "demo", func(rs *catalogv1alpha1.RestoreSession) { rs.Spec.Addon.JobTemplate = jt })
			_ = r.Reconcile(ctx, "demo", "restore")
			_, err := kube.BatchV1().Jobs("demo").Get(ctx, "restore", metav1.GetOptions{})
			assert.True(t, apierrors.IsNotFound(err), "no Job: %v", err)
			assertExecutorRefused(t, ks, c.wantErr)
		})
	}
}

// assertExecutorRefused checks that demo/restore says, in its
// RestoreExecutorEnsured condition, why its Job was not made.
func assertExecutorRefused(t *testing.T, ks *fake.Clientset, want string) {
	t.Helper()
	rs, err := ks.CatalogV1alpha1().RestoreSessions("demo").Get(context.Background(), "restore", metav1.GetOptions{})
	require.NoError(t, err)
	cond := conditions.Get(rs.Status.Conditions, catalogv1alpha1.TypeRestoreExecutorEnsured)
	require.NotNil(t, cond)
	assert.Contains(t, cond.Message, want)
}

// TestRestoreRefusesUserHostPath: a RestoreSession stored before the
// catalog server refused it, with a hostPath in addonVolumes, gets no Job
// (it would write into the node's folder as root): the restore fails,
// naming the field.
func TestRestoreRefusesUserHostPath(t *testing.T) {
	for _, c := range []struct {
		name    string
		source  storagev1alpha1.VolumeSource
		wantErr string
	}{
		{name: "emptyDir", source: storagev1alpha1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{name: "hostPath", source: storagev1alpha1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc"}},
			wantErr: "task logical-backup-restore: spec.addon.tasks[0].addonVolumes[0].source.hostPath: Forbidden: only persistentVolumeClaim"},
		{name: "nfs", source: storagev1alpha1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs", Path: "/"}},
			wantErr: "spec.addon.tasks[0].addonVolumes[0].source.nfs: Forbidden"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			r, kube, ks, _ := newEnv(t, "demo", func(rs *catalogv1alpha1.RestoreSession) {
				rs.Spec.Addon.Tasks[0].AddonVolumes = []corev1alpha1.AddonVolumeInfo{{Name: "kubestash-data-volume",
					Source: &addonsv1alpha1.VolumeSource{VolumeSource: c.source}}}
			})
			_ = r.Reconcile(ctx, "demo", "restore")
			_, jobErr := kube.BatchV1().Jobs("demo").Get(ctx, "restore", metav1.GetOptions{})
			rs, err := ks.CatalogV1alpha1().RestoreSessions("demo").Get(ctx, "restore", metav1.GetOptions{})
			require.NoError(t, err)
			cond := conditions.Get(rs.Status.Conditions, catalogv1alpha1.TypeRestoreExecutorEnsured)
			require.NotNil(t, cond)
			if c.wantErr == "" {
				assert.NoError(t, jobErr)
				assert.Equal(t, metav1.ConditionTrue, cond.Status)
				return
			}
			assert.True(t, apierrors.IsNotFound(jobErr), "no Job: %v", jobErr)
			assert.Equal(t, catalogv1alpha1.ReasonFailedToEnsureRestoreExecutor, cond.Reason)
			assert.Contains(t, cond.Message, c.wantErr)
			assert.Equal(t, catalogv1alpha1.RestoreFailed, rs.Status.Phase)
		})
	}
}

// TestRestoreLifecycle follows one restore through the reconciles the
// controller makes of it, with the caches caught up between them as the
// controller's are, and checks the writes each one makes: a reconcile of
// an unchanged state writes nothing.
func TestRestoreLifecycle(t *testing.T) {
	ctx := context.Background()
	r, kube, ks, informed := newEnv(t, "demo", nil)
	for _, step := range []struct {
		name        string
		before      func(t *testing.T)
		wantWrites  []string
		wantRequeue bool
		wantPhase   catalogv1alpha1.RestorePhase // "": the RestoreSession is gone
	}{
		{name: "new", wantRequeue: true, wantPhase: catalogv1alpha1.RestorePending, wantWrites: []string{
			"create serviceaccounts demo/kubestash-restore", "create rolebindings demo/kubestash-restore", "create jobs demo/restore",
			"update restoresessions/status demo/restore"}},
		{name: "Job running", wantRequeue: true, wantPhase: catalogv1alpha1.RestorePending},
		{name: "Job succeeded", before: func(t *testing.T) {
			// The agent records its component, then its Job completes.
			rs, err := ks.CatalogV1alpha1().RestoreSessions("demo").Get(ctx, "restore", metav1.GetOptions{})
			require.NoError(t, err)
			rs.Status.Components = map[string]catalogv1alpha1.RestoreComponent{"dump": {Phase: catalogv1alpha1.RestoreSucceeded, Duration: "3s"}}
			_, err = ks.CatalogV1alpha1().RestoreSessions("demo").UpdateStatus(ctx, rs, metav1.UpdateOptions{})
			require.NoError(t, err)
			job, err := kube.BatchV1().Jobs("demo").Get(ctx, "restore", metav1.GetOptions{})
			require.NoError(t, err)
			job.Status = batchv1.JobStatus{Succeeded: 1, CompletionTime: ptr.To(metav1.NewTime(now)), Conditions: []batchv1.JobCondition{
				{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue}, {Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}
			_, err = kube.BatchV1().Jobs("demo").UpdateStatus(ctx, job, metav1.UpdateOptions{})
			require.NoError(t, err)
		}, wantPhase: catalogv1alpha1.RestoreSucceeded, wantWrites: []string{"update restoresessions/status demo/restore"}},
		{name: "outcome recorded", wantPhase: catalogv1alpha1.RestoreSucceeded},
		{name: "RestoreSession deleted", before: func(t *testing.T) {
			require.NoError(t, ks.CatalogV1alpha1().RestoreSessions("demo").Delete(ctx, "restore", metav1.DeleteOptions{}))
		}, wantWrites: []string{"delete jobs demo/restore"}},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.before != nil {
				step.before(t)
			}
			writes, err := informed.Reconcile(t, func() error { return r.Reconcile(ctx, "demo", "restore") })
			if step.wantRequeue {
				assert.ErrorIs(t, err, loop.ErrRequeue)
			} else {
				assert.NoError(t, err)
			}
			assert.Equal(t, step.wantWrites, writes)
			rs, err := ks.CatalogV1alpha1().RestoreSessions("demo").Get(ctx, "restore", metav1.GetOptions{})
			if step.wantPhase == "" {
				assert.True(t, apierrors.IsNotFound(err), "gone: %v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, step.wantPhase, rs.Status.Phase)
		})
	}
}

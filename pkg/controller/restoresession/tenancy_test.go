package restoresession

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	"kubestash.dev/kubestash/pkg/conditions"
	"kubestash.dev/kubestash/pkg/controller/access"
	"kubestash.dev/kubestash/pkg/sharing"
)

// TestRestoreStaysInItsNamespace: a RestoreSession of namespace demo may
// neither restore into another namespace nor read another namespace's
// snapshots unless that namespace shares them; a refusal names the field,
// reads the same whether the other namespace exists, pauses nothing there
// and puts none of its names into the status.
func TestRestoreStaysInItsNamespace(t *testing.T) {
	victimBC := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Namespace: "victim", Name: "victim-backup"},
		Spec: corev1alpha1.BackupConfigurationSpec{Target: &kmapi.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "target-pvc"}}}
	for _, c := range []struct {
		name      string
		mutate    func(*catalogv1alpha1.RestoreSession)
		namespace *corev1.Namespace // the namespace "victim", if it exists
		wantErr   string            // in ValidationPassed; "" means the restore runs
	}{
		{name: "target in another namespace",
			mutate: func(rs *catalogv1alpha1.RestoreSession) {
				rs.Spec.Target = &kmapi.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "target-pvc", Namespace: "victim"}
			},
			namespace: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "victim"}},
			wantErr:   `spec.target.namespace: "victim" is not the RestoreSession's namespace "demo"`},
		{name: "snapshots of a namespace that does not share them",
			mutate: func(rs *catalogv1alpha1.RestoreSession) {
				rs.Spec.DataSource.Namespace = "victim"
				rs.Spec.DataSource.Snapshot = "latest"
			},
			namespace: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "victim"}},
			wantErr:   `spec.dataSource.namespace: namespace "victim" does not share its snapshots with namespace "demo"`},
		{name: "snapshots of a namespace that does not exist",
			mutate: func(rs *catalogv1alpha1.RestoreSession) {
				rs.Spec.DataSource.Namespace = "victim"
				rs.Spec.DataSource.Snapshot = "latest"
			},
			wantErr: `spec.dataSource.namespace: namespace "victim" does not share its snapshots with namespace "demo"`},
		{name: "snapshots of a namespace that shares them with another",
			mutate: func(rs *catalogv1alpha1.RestoreSession) { rs.Spec.DataSource.Namespace = "victim" },
			namespace: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "victim",
				Annotations: map[string]string{sharing.Annotation: "someone-else"}}},
			wantErr: `spec.dataSource.namespace: namespace "victim" does not share its snapshots with namespace "demo"`},
		{name: "own namespace", namespace: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "victim"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			r, kube, ks, _ := newEnv(t, "demo", c.mutate)
			if c.namespace != nil {
				_, err := kube.CoreV1().Namespaces().Create(ctx, c.namespace, metav1.CreateOptions{})
				require.NoError(t, err)
			}
			_, err := ks.CoreV1alpha1().BackupConfigurations("victim").Create(ctx, victimBC, metav1.CreateOptions{})
			require.NoError(t, err)

			_ = r.Reconcile(ctx, "demo", "restore")
			rs, err := ks.CatalogV1alpha1().RestoreSessions("demo").Get(ctx, "restore", metav1.GetOptions{})
			require.NoError(t, err)
			_, jobErr := kube.BatchV1().Jobs("demo").Get(ctx, "restore", metav1.GetOptions{})
			bc, err := ks.CoreV1alpha1().BackupConfigurations("victim").Get(ctx, "victim-backup", metav1.GetOptions{})
			require.NoError(t, err)
			assert.False(t, bc.Spec.Paused, "another namespace's backups are never paused")
			if c.wantErr == "" {
				assert.NoError(t, jobErr)
				return
			}
			assert.True(t, apierrors.IsNotFound(jobErr), "no Job: %v", jobErr)
			assert.Equal(t, catalogv1alpha1.RestoreInvalid, rs.Status.Phase)
			cond := conditions.Get(rs.Status.Conditions, catalogv1alpha1.TypeValidationPassed)
			require.NotNil(t, cond)
			assert.Contains(t, cond.Message, c.wantErr)
			assert.Empty(t, rs.Status.Dependencies, "nothing of another namespace is looked up")
			assert.Empty(t, rs.Status.PausedBackups)
		})
	}
}

// TestRestoreFromSharedNamespace: with the annotation on the namespace
// that holds the backups, the restore reads its Snapshot and writes into
// the RestoreSession's own namespace.
func TestRestoreFromSharedNamespace(t *testing.T) {
	ctx := context.Background()
	r, kube, ks, informed := newEnv(t, "demo", nil)
	// The backups are demo's; the restore is the tenant's.
	rs, err := ks.CatalogV1alpha1().RestoreSessions("demo").Get(ctx, "restore", metav1.GetOptions{})
	require.NoError(t, err)
	rs = rs.DeepCopy()
	rs.Namespace, rs.ResourceVersion = "tenant", ""
	_, err = ks.CatalogV1alpha1().RestoreSessions("tenant").Create(ctx, rs, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kube.CoreV1().PersistentVolumeClaims("tenant").Create(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "target-pvc"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo",
		Annotations: map[string]string{sharing.Annotation: "tenant"}}}, metav1.CreateOptions{})
	require.NoError(t, err)

	informed.Settle(t)
	_ = r.Reconcile(ctx, "tenant", "restore")
	job, err := kube.BatchV1().Jobs("tenant").Get(ctx, "restore", metav1.GetOptions{})
	require.NoError(t, err)
	var claims []string
	for _, v := range job.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claims = append(claims, v.PersistentVolumeClaim.ClaimName)
		}
	}
	assert.Contains(t, claims, "target-pvc")
	got, err := ks.CatalogV1alpha1().RestoreSessions("tenant").Get(ctx, "restore", metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotEqual(t, catalogv1alpha1.RestoreInvalid, got.Status.Phase)

	// The restore account may read that Snapshot and its Repository in
	// demo, by name, while the restore runs.
	roles, err := kube.RbacV1().Roles("demo").List(ctx, metav1.ListOptions{LabelSelector: access.LabelGrantRestore})
	require.NoError(t, err)
	require.Len(t, roles.Items, 1)
	assert.Equal(t, []rbacv1.PolicyRule{
		{APIGroups: []string{"catalog.kubestash.com"}, Resources: []string{"snapshots"}, Verbs: []string{"get"}, ResourceNames: []string{"repo-1"}},
		{APIGroups: []string{"catalog.kubestash.com"}, Resources: []string{"repositories"}, Verbs: []string{"get"}, ResourceNames: []string{"repo"}},
	}, roles.Items[0].Rules)
	bindings, err := kube.RbacV1().RoleBindings("demo").List(ctx, metav1.ListOptions{LabelSelector: access.LabelGrantRestore})
	require.NoError(t, err)
	require.Len(t, bindings.Items, 1)
	assert.Equal(t, []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: RestoreServiceAccount, Namespace: "tenant"}}, bindings.Items[0].Subjects)

	// It ends with the restore.
	job.Status.Failed = 1
	job.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded"}}
	_, err = kube.BatchV1().Jobs("tenant").UpdateStatus(ctx, job, metav1.UpdateOptions{})
	require.NoError(t, err)
	informed.Settle(t)
	require.NoError(t, r.Reconcile(ctx, "tenant", "restore"))
	roles, err = kube.RbacV1().Roles("demo").List(ctx, metav1.ListOptions{LabelSelector: access.LabelGrantRestore})
	require.NoError(t, err)
	assert.Empty(t, roles.Items)
	bindings, err = kube.RbacV1().RoleBindings("demo").List(ctx, metav1.ListOptions{LabelSelector: access.LabelGrantRestore})
	require.NoError(t, err)
	assert.Empty(t, bindings.Items)
}

// TestPauseIsMarkedAndUndone: the restore pauses its target's backups with
// its mark, resumes them when it ends, takes over a pause whose restore is
// gone, and leaves alone one its owner paused.
func TestPauseIsMarkedAndUndone(t *testing.T) {
	bc := func(name string, paused bool, mark string) *corev1alpha1.BackupConfiguration {
		b := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: name},
			Spec: corev1alpha1.BackupConfigurationSpec{Paused: paused, Target: &kmapi.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "target-pvc"}}}
		if mark != "" {
			b.Annotations = map[string]string{PausedByAnnotation: mark}
		}
		return b
	}
	ctx := context.Background()
	r, kube, ks, informed := newEnv(t, "demo", func(rs *catalogv1alpha1.RestoreSession) { rs.UID = "uid-1" })
	for _, b := range []*corev1alpha1.BackupConfiguration{
		bc("running", false, ""),
		bc("paused-by-owner", true, ""),
		bc("paused-by-a-gone-restore", true, "demo/old-restore/old-uid"),
	} {
		_, err := ks.CoreV1alpha1().BackupConfigurations("demo").Create(ctx, b, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	informed.Settle(t)
	_ = r.Reconcile(ctx, "demo", "restore")
	rs, err := ks.CatalogV1alpha1().RestoreSessions("demo").Get(ctx, "restore", metav1.GetOptions{})
	require.NoError(t, err)
	mark := pauseMark(rs)
	get := func(name string) *corev1alpha1.BackupConfiguration {
		b, err := ks.CoreV1alpha1().BackupConfigurations("demo").Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		return b
	}
	for _, name := range []string{"running", "paused-by-a-gone-restore"} {
		b := get(name)
		assert.True(t, b.Spec.Paused, name)
		assert.Equal(t, mark, b.Annotations[PausedByAnnotation], name)
	}
	assert.Empty(t, get("paused-by-owner").Annotations[PausedByAnnotation])
	assert.Len(t, rs.Status.PausedBackups, 2)

	// The restore's Job fails: what it paused runs again; the owner's
	// pause stays.
	job, err := kube.BatchV1().Jobs("demo").Get(ctx, "restore", metav1.GetOptions{})
	require.NoError(t, err)
	job.Status.Failed = 1
	job.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded"}}
	_, err = kube.BatchV1().Jobs("demo").UpdateStatus(ctx, job, metav1.UpdateOptions{})
	require.NoError(t, err)
	informed.Settle(t)
	require.NoError(t, r.Reconcile(ctx, "demo", "restore"))
	rs, err = ks.CatalogV1alpha1().RestoreSessions("demo").Get(ctx, "restore", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, catalogv1alpha1.RestoreFailed, rs.Status.Phase)
	assert.Empty(t, rs.Status.PausedBackups)
	for _, name := range []string{"running", "paused-by-a-gone-restore"} {
		b := get(name)
		assert.False(t, b.Spec.Paused, name)
		assert.NotContains(t, b.Annotations, PausedByAnnotation, name)
	}
	assert.True(t, get("paused-by-owner").Spec.Paused)
}

// TestPauseOrphaned tells a live restore from one that is over or gone,
// and a failed lookup from either.
func TestPauseOrphaned(t *testing.T) {
	ctx := context.Background()
	_, _, ks, _ := newEnv(t, "demo", func(rs *catalogv1alpha1.RestoreSession) { rs.UID = "uid-1" })
	for mark, want := range map[string]bool{
		"demo/restore/uid-1": false,
		"demo/restore/uid-0": true, // an earlier RestoreSession of that name
		"demo/missing/uid-1": true,
		"not a mark of ours": true,
	} {
		got, err := PauseOrphaned(ctx, ks, mark)
		require.NoError(t, err, mark)
		assert.Equal(t, want, got, mark)
	}
}

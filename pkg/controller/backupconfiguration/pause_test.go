package backupconfiguration

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	corev1alpha1 "kubestash.dev/kubestash/pkg/apis/core/v1alpha1"
	"kubestash.dev/kubestash/pkg/controller/restoresession"
)

// TestPauseOfAGoneRestoreIsUndone: a configuration paused by a restore
// runs again once that RestoreSession is deleted, even though no restore
// reconcile saw the deletion; while the restore runs, or while the catalog
// cannot tell, it stays paused.
func TestPauseOfAGoneRestoreIsUndone(t *testing.T) {
	live := &catalogv1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "restore", UID: "uid-1"},
		Status: catalogv1alpha1.RestoreSessionStatus{Phase: catalogv1alpha1.RestoreRunning}}
	// What the first reconcile of the configuration makes in either case.
	placed := []string{"create roles demo/kubestash-catalog-encryption-pvc-backup", "create rolebindings demo/kubestash-catalog-encryption-pvc-backup",
		"create serviceaccounts demo/kubestash-trigger", "create rolebindings demo/kubestash-trigger",
		"create cronjobs demo/trigger-pvc-backup-frequent-backup"}
	// Resumed (the spec first), it takes its first backup.
	resumed := slices.Concat(placed, []string{"update backupconfigurations demo/pvc-backup",
		"create repositories demo/s3-repo", "update backupconfigurations/status demo/pvc-backup",
		fmt.Sprintf("create backupsessions demo/pvc-backup-frequent-backup-%d", now.Unix()), "update backupconfigurations/status demo/pvc-backup"})
	for _, c := range []struct {
		name        string
		mark        string
		catalogDown bool
		wantPaused  bool
		wantWrites  []string
	}{
		{name: "RestoreSession deleted", mark: "demo/deleted/uid-9", wantWrites: resumed},
		{name: "RestoreSession replaced by a new one of that name", mark: "demo/restore/uid-0", wantWrites: resumed},
		{name: "restore running", mark: "demo/restore/uid-1", wantPaused: true,
			wantWrites: slices.Concat(placed, []string{"create repositories demo/s3-repo", "update backupconfigurations/status demo/pvc-backup"})},
		// Nothing is done before the pause is settled.
		{name: "catalog unavailable", mark: "demo/deleted/uid-9", catalogDown: true, wantPaused: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(_, ks *[]runtime.Object) {
				bc := (*ks)[3].(*corev1alpha1.BackupConfiguration)
				bc.Spec.Paused = true
				bc.Annotations = map[string]string{restoresession.PausedByAnnotation: c.mark}
				*ks = append(*ks, live)
			})
			if c.catalogDown {
				e.ks.PrependReactor("get", "restoresessions", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, errors.New("the server is currently unable to handle the request")
				})
			}
			writes, err := e.reconcile(t)
			if c.catalogDown {
				assert.Error(t, err, "retried")
			}
			assert.Equal(t, c.wantWrites, writes)
			bc := e.bc(t)
			assert.Equal(t, c.wantPaused, bc.Spec.Paused)
			if c.wantPaused {
				assert.Equal(t, c.mark, bc.Annotations[restoresession.PausedByAnnotation])
			} else {
				assert.NotContains(t, bc.Annotations, restoresession.PausedByAnnotation)
			}
		})
	}
}

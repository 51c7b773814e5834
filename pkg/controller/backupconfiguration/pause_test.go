package backupconfiguration

import (
	"context"
	"errors"
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
	for _, c := range []struct {
		name        string
		mark        string
		catalogDown bool
		wantPaused  bool
	}{
		{name: "RestoreSession deleted", mark: "demo/deleted/uid-9"},
		{name: "RestoreSession replaced by a new one of that name", mark: "demo/restore/uid-0"},
		{name: "restore running", mark: "demo/restore/uid-1", wantPaused: true},
		{name: "catalog unavailable", mark: "demo/deleted/uid-9", catalogDown: true, wantPaused: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
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
			err := e.r.Reconcile(ctx, "demo", "pvc-backup")
			if c.catalogDown {
				assert.Error(t, err, "retried")
			}
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

package backupsession

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/apis/kmapi"
	"kubestash.dev/kubestash/pkg/conditions"
)

func snapWith(name string, phase catalogv1alpha1.SnapshotPhase, comps map[string]catalogv1alpha1.Component, conds ...kmapi.Condition) *catalogv1alpha1.Snapshot {
	s := &catalogv1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: name}}
	s.Status.Phase, s.Status.Components, s.Status.Conditions = phase, comps, conds
	return s
}

func TestFailureOf(t *testing.T) {
	wrong := "Fatal: wrong password or no key found"
	cases := []struct {
		name       string
		snaps      []*catalogv1alpha1.Snapshot
		wantReason string
		wantMsg    string
	}{
		{name: "all succeeded", snaps: []*catalogv1alpha1.Snapshot{snapWith("s1", catalogv1alpha1.SnapshotSucceeded, nil)}},
		{
			name: "a component failed: its error",
			snaps: []*catalogv1alpha1.Snapshot{snapWith("s1", catalogv1alpha1.SnapshotFailed, map[string]catalogv1alpha1.Component{
				"dump": {Phase: catalogv1alpha1.ComponentPhaseFailed, Error: wrong},
			})},
			wantReason: ReasonComponentBackupFailed, wantMsg: "Snapshot s1, component dump: " + wrong,
		},
		{
			name: "the executor ended first: the Snapshot's condition",
			snaps: []*catalogv1alpha1.Snapshot{snapWith("s1", catalogv1alpha1.SnapshotFailed, nil,
				conditions.True(catalogv1alpha1.TypeBackupIncomplete, catalogv1alpha1.ReasonBackupExecutorTerminatedBeforeCompletion, "Job failed: DeadlineExceeded"))},
			wantReason: catalogv1alpha1.ReasonBackupExecutorTerminatedBeforeCompletion, wantMsg: "Snapshot s1: Job failed: DeadlineExceeded",
		},
		{
			name:       "failed without a word",
			snaps:      []*catalogv1alpha1.Snapshot{snapWith("s1", catalogv1alpha1.SnapshotFailed, nil)},
			wantReason: ReasonSnapshotBackupFailed, wantMsg: "Snapshot s1 failed",
		},
		{
			name: "a long error is cut",
			snaps: []*catalogv1alpha1.Snapshot{snapWith("s1", catalogv1alpha1.SnapshotFailed, map[string]catalogv1alpha1.Component{
				"dump": {Phase: catalogv1alpha1.ComponentPhaseFailed, Error: strings.Repeat("x", 5000)},
			})},
			wantReason: ReasonComponentBackupFailed, wantMsg: "Snapshot s1, component dump: " + strings.Repeat("x", maxConditionMessage-len("Snapshot s1, component dump: ")-3) + "...",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reason, msg := failureOf(c.snaps)
			assert.Equal(t, c.wantReason, reason)
			assert.Equal(t, c.wantMsg, msg)
		})
	}
}

// TestRecordOutcomeOnce: the failure is in the session's conditions and in
// one Warning event, not one per look.
func TestRecordOutcomeOnce(t *testing.T) {
	rec := record.NewFakeRecorder(10)
	r := &Reconciler{Recorder: rec}
	bs := &catalogv1alpha1.BackupSession{}
	snaps := []*catalogv1alpha1.Snapshot{snapWith("s1", catalogv1alpha1.SnapshotFailed, map[string]catalogv1alpha1.Component{
		"dump": {Phase: catalogv1alpha1.ComponentPhaseFailed, Error: "wrong password"},
	})}
	for range 3 {
		st := bs.Status.DeepCopy()
		r.recordOutcome(bs, st, snaps)
		bs.Status = *st
	}
	c := conditions.Get(bs.Status.Conditions, TypeBackupSucceeded)
	require.NotNil(t, c)
	assert.Equal(t, metav1.ConditionFalse, c.Status)
	assert.Equal(t, ReasonComponentBackupFailed, c.Reason)
	assert.Equal(t, "Snapshot s1, component dump: wrong password", c.Message)
	require.Len(t, rec.Events, 1)
	assert.Equal(t, "Warning ComponentBackupFailed Snapshot s1, component dump: wrong password", <-rec.Events)
}

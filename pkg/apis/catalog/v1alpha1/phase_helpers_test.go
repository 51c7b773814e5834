package v1alpha1

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"kubestash.dev/kubestash/pkg/apis/kmapi"
	"kubestash.dev/kubestash/pkg/conditions"
)

func conds(cs ...kmapi.Condition) []kmapi.Condition { return cs }

var (
	uploaded    = conditions.True(TypeSnapshotMetadataUploaded, ReasonSuccessfullyUploadedSnapshotMetadata, "")
	uploadFail  = conditions.False(TypeSnapshotMetadataUploaded, ReasonFailedToUploadSnapshotMetadata, "")
	incomplete  = conditions.True(TypeBackupIncomplete, ReasonBackupExecutorTerminatedBeforeCompletion, "")
	metricsOK   = conditions.True(TypeMetricsPushed, ReasonSuccessfullyPushedMetrics, "")
	metricsFail = conditions.False(TypeMetricsPushed, ReasonFailedToPushMetrics, "")
)

func TestSnapshotPhase(t *testing.T) {
	comp := func(ps ...ComponentPhase) map[string]Component {
		m := map[string]Component{}
		for i, p := range ps {
			m[string(rune('a'+i))] = Component{Phase: p}
		}
		return m
	}
	cases := []struct {
		name  string
		total int32
		comps map[string]Component
		conds []kmapi.Condition
		want  SnapshotPhase
	}{
		{"no components", 1, nil, nil, SnapshotPending},
		{"running", 1, comp(ComponentPhaseRunning), nil, SnapshotRunning},
		{"succeeded but not uploaded", 1, comp(ComponentPhaseSucceeded), nil, SnapshotRunning},
		{"succeeded and uploaded", 1, comp(ComponentPhaseSucceeded), conds(uploaded), SnapshotSucceeded},
		{"one of two failed: fail fast", 2, comp(ComponentPhaseFailed, ComponentPhaseRunning), conds(uploaded), SnapshotFailed},
		{"upload failed", 1, comp(ComponentPhaseSucceeded), conds(uploadFail), SnapshotFailed},
		{"executor ended early", 1, comp(ComponentPhaseRunning), conds(incomplete), SnapshotFailed},
		{"incomplete without components", 1, nil, conds(incomplete), SnapshotFailed},
	}
	for _, c := range cases {
		s := &Snapshot{Status: SnapshotStatus{TotalComponents: c.total, Components: c.comps, Conditions: c.conds}}
		assert.Equal(t, c.want, s.CalculatePhase(), c.name)
	}
}

func TestBackupSessionPhase(t *testing.T) {
	snaps := func(ps ...SnapshotPhase) []BackupSessionSnapshotStatus {
		var out []BackupSessionSnapshotStatus
		for _, p := range ps {
			out = append(out, BackupSessionSnapshotStatus{Phase: p})
		}
		return out
	}
	cases := []struct {
		name  string
		snaps []BackupSessionSnapshotStatus
		conds []kmapi.Condition
		ret   []RetentionPolicyApplyStatus
		want  BackupSessionPhase
	}{
		{"new", nil, nil, nil, BackupSessionPending},
		{"all pending", snaps(SnapshotPending, SnapshotPending), nil, nil, BackupSessionPending},
		{"one running", snaps(SnapshotRunning, SnapshotPending), nil, nil, BackupSessionRunning},
		{"done but metrics not pushed", snaps(SnapshotSucceeded), nil, nil, BackupSessionRunning},
		{"succeeded", snaps(SnapshotSucceeded), conds(metricsOK), nil, BackupSessionSucceeded},
		{"a snapshot failed", snaps(SnapshotSucceeded, SnapshotFailed), conds(metricsOK), nil, BackupSessionFailed},
		{"metrics failed", snaps(SnapshotSucceeded), conds(metricsFail), nil, BackupSessionFailed},
		{"skipped", nil, conds(conditions.True(TypeBackupSkipped, ReasonSkippedTakingNewBackup, "")), nil, BackupSessionSkipped},
		{"retention failed", snaps(SnapshotSucceeded), conds(metricsOK), []RetentionPolicyApplyStatus{{Phase: RetentionPolicyFailedToApply}}, BackupSessionFailed},
		{"executor not ensured", snaps(SnapshotPending), conds(metricsOK, conditions.False(TypeBackupExecutorEnsured, ReasonFailedToEnsureBackupExecutor, "")), nil, BackupSessionFailed},
	}
	for _, c := range cases {
		b := &BackupSession{Status: BackupSessionStatus{Snapshots: c.snaps, Conditions: c.conds, RetentionPolicies: c.ret}}
		assert.Equal(t, c.want, b.CalculatePhase(), c.name)
	}
	assert.True(t, BackupSessionSkipped.IsTerminal())
	assert.False(t, BackupSessionRunning.IsTerminal())
}

func TestRestoreSessionPhase(t *testing.T) {
	comp := func(ps ...RestorePhase) map[string]RestoreComponent {
		m := map[string]RestoreComponent{}
		for i, p := range ps {
			m[string(rune('a'+i))] = RestoreComponent{Phase: p}
		}
		return m
	}
	cases := []struct {
		name  string
		total int32
		comps map[string]RestoreComponent
		conds []kmapi.Condition
		want  RestorePhase
	}{
		{"new", 1, nil, nil, RestorePending},
		{"invalid", 1, nil, conds(conditions.False(TypeValidationPassed, ReasonResourceValidationFailed, "")), RestoreInvalid},
		{"running", 1, comp(RestoreRunning), nil, RestoreRunning},
		{"done, metrics not pushed", 1, comp(RestoreSucceeded), nil, RestoreRunning},
		{"succeeded", 1, comp(RestoreSucceeded), conds(metricsOK), RestoreSucceeded},
		{"failed", 1, comp(RestoreFailed), conds(metricsOK), RestoreFailed},
		{"incomplete", 1, comp(RestoreRunning), conds(metricsOK, conditions.True(TypeRestoreIncomplete, ReasonRestoreExecutorTerminatedBeforeCompletion, "")), RestoreFailed},
		{"unknown", 1, comp(RestorePhaseUnknown), nil, RestorePhaseUnknown},
	}
	for _, c := range cases {
		r := &RestoreSession{Status: RestoreSessionStatus{TotalComponents: c.total, Components: c.comps, Conditions: c.conds}}
		assert.Equal(t, c.want, r.CalculatePhase(), c.name)
	}
}

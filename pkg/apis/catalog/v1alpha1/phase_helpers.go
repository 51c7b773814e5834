/*
Copyright The KubeStash Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package v1alpha1

import (
	"kubestash.dev/kubestash/pkg/conditions"
)

// The phase rules of upstream (reference §5.3-5.5): a phase is derived
// from observed facts (components, conditions) every time, never stored as
// a step to trust.

// CalculatePhase is a Snapshot's phase: Failed on a failed upload or an
// incomplete backup; otherwise its components' phase, reported as
// Succeeded only once the metadata is uploaded.
func (s *Snapshot) CalculatePhase() SnapshotPhase {
	c := s.Status.Conditions
	if conditions.IsFalse(c, TypeSnapshotMetadataUploaded) || conditions.IsFalse(c, TypeRecentSnapshotListUpdated) ||
		conditions.IsTrue(c, TypeBackupIncomplete) {
		return SnapshotFailed
	}
	p := s.componentsPhase()
	if p == SnapshotPending {
		return SnapshotPending
	}
	if conditions.Get(c, TypeSnapshotMetadataUploaded) != nil {
		return p
	}
	return SnapshotRunning
}

func (s *Snapshot) componentsPhase() SnapshotPhase {
	if len(s.Status.Components) == 0 {
		return SnapshotPending
	}
	var succeeded, failed int32
	for _, c := range s.Status.Components {
		switch c.Phase {
		case ComponentPhaseSucceeded:
			succeeded++
		case ComponentPhaseFailed:
			failed++
		}
	}
	switch {
	case succeeded == s.Status.TotalComponents:
		return SnapshotSucceeded
	case failed > 0:
		// Fail fast: one failed component fails the Snapshot.
		return SnapshotFailed
	}
	return SnapshotRunning
}

// CalculatePhase is a BackupSession's phase, from its conditions and the
// phases of its Snapshots.
func (b *BackupSession) CalculatePhase() BackupSessionPhase {
	c := b.Status.Conditions
	if conditions.IsFalse(c, TypeMetricsPushed) {
		return BackupSessionFailed
	}
	if conditions.IsTrue(c, TypeBackupSkipped) {
		return BackupSessionSkipped
	}
	if conditions.IsTrue(c, TypeMetricsPushed) && (conditions.IsFalse(c, TypeBackupExecutorEnsured) ||
		conditions.IsFalse(c, TypeSnapshotsEnsured) || conditions.IsFalse(c, TypePreBackupHooksExecutionSucceeded) ||
		conditions.IsFalse(c, TypePostBackupHooksExecutionSucceeded) || b.retentionFailed() ||
		conditions.IsFalse(c, TypeSessionHistoryCleaned) || conditions.IsTrue(c, TypeSnapshotCleanupIncomplete)) {
		return BackupSessionFailed
	}
	p := b.snapshotsPhase()
	if p == BackupSessionPending {
		return BackupSessionPending
	}
	if conditions.Get(c, TypeMetricsPushed) != nil {
		return p
	}
	return BackupSessionRunning
}

func (b *BackupSession) retentionFailed() bool {
	for _, r := range b.Status.RetentionPolicies {
		if r.Phase == RetentionPolicyFailedToApply {
			return true
		}
	}
	return false
}

func (b *BackupSession) snapshotsPhase() BackupSessionPhase {
	snaps := b.Status.Snapshots
	if len(snaps) == 0 {
		return BackupSessionPending
	}
	pending, terminal, failed := 0, 0, 0
	for _, s := range snaps {
		switch s.Phase {
		case SnapshotPending, "":
			pending++
		case SnapshotSucceeded:
			terminal++
		case SnapshotFailed:
			terminal++
			failed++
		}
	}
	switch {
	case pending == len(snaps):
		return BackupSessionPending
	case terminal != len(snaps):
		return BackupSessionRunning
	case failed > 0:
		return BackupSessionFailed
	}
	return BackupSessionSucceeded
}

// IsTerminal reports whether the session has ended.
func (p BackupSessionPhase) IsTerminal() bool {
	return p == BackupSessionSucceeded || p == BackupSessionFailed || p == BackupSessionSkipped
}

// CalculatePhase is a RestoreSession's phase.
func (r *RestoreSession) CalculatePhase() RestorePhase {
	c := r.Status.Conditions
	if conditions.IsFalse(c, TypeMetricsPushed) {
		return RestoreFailed
	}
	if conditions.IsFalse(c, TypeValidationPassed) {
		return RestoreInvalid
	}
	if conditions.IsTrue(c, TypeMetricsPushed) && (conditions.IsFalse(c, TypePreRestoreHooksExecutionSucceeded) ||
		conditions.IsFalse(c, TypePostRestoreHooksExecutionSucceeded) || conditions.IsFalse(c, TypeRestoreExecutorEnsured) ||
		conditions.IsTrue(c, TypeRestoreIncomplete)) {
		return RestoreFailed
	}
	p := r.componentsPhase()
	switch {
	case p == RestorePending:
		return RestorePending
	case conditions.Get(c, TypeMetricsPushed) != nil:
		return p
	case p == RestorePhaseUnknown:
		return RestorePhaseUnknown
	}
	return RestoreRunning
}

func (r *RestoreSession) componentsPhase() RestorePhase {
	if len(r.Status.Components) == 0 {
		return RestorePending
	}
	var succeeded, failed, unknown int32
	for _, c := range r.Status.Components {
		switch c.Phase {
		case RestoreSucceeded:
			succeeded++
		case RestoreFailed:
			failed++
		case RestorePhaseUnknown:
			unknown++
		}
	}
	total := r.Status.TotalComponents
	switch {
	case succeeded == total:
		return RestoreSucceeded
	case succeeded+failed+unknown == total:
		if failed > 0 {
			return RestoreFailed
		}
		return RestorePhaseUnknown
	case failed > 0:
		return RestoreFailed
	}
	return RestoreRunning
}

// IsTerminal reports whether the restore has ended.
func (p RestorePhase) IsTerminal() bool {
	return p == RestoreSucceeded || p == RestoreFailed || p == RestoreInvalid || p == RestorePhaseUnknown
}

package retention

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
)

const (
	ok   = catalogv1alpha1.SnapshotSucceeded
	bad  = catalogv1alpha1.SnapshotFailed
	pend = catalogv1alpha1.SnapshotPending
	run  = catalogv1alpha1.SnapshotRunning
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// snap is a Snapshot taken at t (RFC 3339).
func snap(name string, phase catalogv1alpha1.SnapshotPhase, t string) catalogv1alpha1.Snapshot {
	mt := metav1.NewTime(at(t))
	return catalogv1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(at(t).Add(-time.Minute))},
		Status:     catalogv1alpha1.SnapshotStatus{Phase: phase, SnapshotTime: &mt},
	}
}

// created is a Snapshot with no snapshotTime, created at t.
func created(name string, phase catalogv1alpha1.SnapshotPhase, t string) catalogv1alpha1.Snapshot {
	return catalogv1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(at(t))},
		Status:     catalogv1alpha1.SnapshotStatus{Phase: phase},
	}
}

func names(snaps []catalogv1alpha1.Snapshot) []string {
	out := []string{}
	for _, s := range snaps {
		out = append(out, s.Name)
	}
	return out
}

func TestSelect(t *testing.T) {
	now := at("2026-06-15T12:00:00Z")
	successes := func(s *storagev1alpha1.SuccessfulSnapshotsKeepPolicy) *storagev1alpha1.RetentionPolicySpec {
		return &storagev1alpha1.RetentionPolicySpec{SuccessfulSnapshots: s}
	}
	// Four successes on four days and two failures, newest first: s1..s4.
	daily4 := []catalogv1alpha1.Snapshot{
		snap("s3", ok, "2026-06-13T10:00:00Z"),
		snap("s1", ok, "2026-06-15T10:00:00Z"),
		snap("f2", bad, "2026-06-12T08:00:00Z"),
		snap("s4", ok, "2026-06-12T09:00:00Z"),
		snap("s2", ok, "2026-06-14T10:00:00Z"),
		snap("f1", bad, "2026-06-14T11:00:00Z"),
	}
	// Around the ISO week boundary: 2026 has 53 ISO weeks, so Thursday
	// 2026-12-31 and Friday 2027-01-01 are both in 2026-W53, while Sunday
	// 2026-12-27 is 2026-W52 and Monday 2027-01-04 is 2027-W01.
	newYear := []catalogv1alpha1.Snapshot{
		snap("mon-0104", ok, "2027-01-04T08:00:00Z"),
		snap("fri-0101", ok, "2027-01-01T08:00:00Z"),
		snap("thu-1231", ok, "2026-12-31T08:00:00Z"),
		snap("sun-1227", ok, "2026-12-27T08:00:00Z"),
	}

	tests := []struct {
		name       string
		policy     *storagev1alpha1.RetentionPolicySpec
		snaps      []catalogv1alpha1.Snapshot
		now        time.Time
		keep, drop []string
	}{
		{
			name:   "nil policy keeps everything, newest first",
			policy: nil,
			snaps:  daily4,
			keep:   []string{"s1", "f1", "s2", "s3", "s4", "f2"},
			drop:   []string{},
		},
		{
			name:   "nil successfulSnapshots and failedSnapshots: all successes, newest failure",
			policy: &storagev1alpha1.RetentionPolicySpec{},
			snaps:  daily4,
			keep:   []string{"s1", "f1", "s2", "s3", "s4"},
			drop:   []string{"f2"},
		},
		{
			name:   "failedSnapshots without last defaults to 1",
			policy: &storagev1alpha1.RetentionPolicySpec{FailedSnapshots: &storagev1alpha1.FailedSnapshotsKeepPolicy{}},
			snaps:  daily4,
			keep:   []string{"s1", "f1", "s2", "s3", "s4"},
			drop:   []string{"f2"},
		},
		{
			name:   "failedSnapshots.last 0 removes every failure",
			policy: &storagev1alpha1.RetentionPolicySpec{FailedSnapshots: &storagev1alpha1.FailedSnapshotsKeepPolicy{Last: ptr.To[int32](0)}},
			snaps:  daily4,
			keep:   []string{"s1", "s2", "s3", "s4"},
			drop:   []string{"f1", "f2"},
		},
		{
			name:   "failedSnapshots.last 5 keeps both failures",
			policy: &storagev1alpha1.RetentionPolicySpec{FailedSnapshots: &storagev1alpha1.FailedSnapshotsKeepPolicy{Last: ptr.To[int32](5)}},
			snaps:  daily4,
			keep:   []string{"s1", "f1", "s2", "s3", "s4", "f2"},
			drop:   []string{},
		},
		{
			name:   "last 2",
			policy: successes(&storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Last: ptr.To[int32](2)}),
			snaps:  daily4,
			keep:   []string{"s1", "f1", "s2"},
			drop:   []string{"s3", "s4", "f2"},
		},
		{
			name:   "last larger than the number of successes",
			policy: successes(&storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Last: ptr.To[int32](10)}),
			snaps:  daily4,
			keep:   []string{"s1", "f1", "s2", "s3", "s4"},
			drop:   []string{"f2"},
		},
		{
			name:   "empty successfulSnapshots prunes no success",
			policy: successes(&storagev1alpha1.SuccessfulSnapshotsKeepPolicy{}),
			snaps:  daily4,
			keep:   []string{"s1", "f1", "s2", "s3", "s4"},
			drop:   []string{"f2"},
		},
		{
			name:   "successfulSnapshots with only zero counts prunes no success",
			policy: successes(&storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Last: ptr.To[int32](0), Daily: ptr.To[int32](0)}),
			snaps:  daily4,
			keep:   []string{"s1", "f1", "s2", "s3", "s4"},
			drop:   []string{"f2"},
		},
		{
			name:   "hourly keeps the newest of each of the last N hours",
			policy: successes(&storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Hourly: ptr.To[int32](2)}),
			snaps: []catalogv1alpha1.Snapshot{
				snap("h10b", ok, "2026-06-15T10:50:00Z"),
				snap("h10a", ok, "2026-06-15T10:10:00Z"),
				snap("h09", ok, "2026-06-15T09:30:00Z"),
				snap("h08b", ok, "2026-06-15T08:59:00Z"),
				snap("h08a", ok, "2026-06-15T08:01:00Z"),
			},
			keep: []string{"h10b", "h09"},
			drop: []string{"h10a", "h08b", "h08a"},
		},
		{
			name:   "hourly bucket includes the date",
			policy: successes(&storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Hourly: ptr.To[int32](2)}),
			snaps: []catalogv1alpha1.Snapshot{
				snap("d15", ok, "2026-06-15T10:00:00Z"),
				snap("d14", ok, "2026-06-14T10:00:00Z"),
				snap("d13", ok, "2026-06-13T10:00:00Z"),
			},
			keep: []string{"d15", "d14"},
			drop: []string{"d13"},
		},
		{
			name:   "daily",
			policy: successes(&storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Daily: ptr.To[int32](2)}),
			snaps: []catalogv1alpha1.Snapshot{
				snap("d15b", ok, "2026-06-15T23:59:00Z"),
				snap("d15a", ok, "2026-06-15T00:00:00Z"),
				snap("d14", ok, "2026-06-14T12:00:00Z"),
				snap("d13", ok, "2026-06-13T12:00:00Z"),
			},
			keep: []string{"d15b", "d14"},
			drop: []string{"d15a", "d13"},
		},
		{
			name:   "daily buckets are UTC days",
			policy: successes(&storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Daily: ptr.To[int32](2)}),
			snaps: []catalogv1alpha1.Snapshot{
				// 2026-06-15 locally, 2026-06-14T23:00Z.
				snap("local15", ok, "2026-06-15T01:00:00+02:00"),
				snap("utc14", ok, "2026-06-14T22:00:00Z"),
				snap("utc13", ok, "2026-06-13T12:00:00Z"),
			},
			keep: []string{"local15", "utc13"},
			drop: []string{"utc14"},
		},
		{
			name:   "weekly across the ISO year boundary",
			policy: successes(&storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Weekly: ptr.To[int32](3)}),
			snaps:  newYear,
			now:    at("2027-01-05T00:00:00Z"),
			keep:   []string{"mon-0104", "fri-0101", "sun-1227"},
			drop:   []string{"thu-1231"},
		},
		{
			name:   "the two days of 2026-W53 share one weekly bucket",
			policy: successes(&storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Weekly: ptr.To[int32](2)}),
			snaps:  newYear[1:],
			now:    at("2027-01-05T00:00:00Z"),
			keep:   []string{"fri-0101", "sun-1227"},
			drop:   []string{"thu-1231"},
		},
		{
			name:   "yearly is the calendar year, not the ISO year",
			policy: successes(&storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Yearly: ptr.To[int32](2)}),
			snaps:  newYear,
			now:    at("2027-01-05T00:00:00Z"),
			keep:   []string{"mon-0104", "thu-1231"},
			drop:   []string{"fri-0101", "sun-1227"},
		},
		{
			name:   "monthly",
			policy: successes(&storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Monthly: ptr.To[int32](2)}),
			snaps: []catalogv1alpha1.Snapshot{
				snap("jun2", ok, "2026-06-02T00:00:00Z"),
				snap("jun1", ok, "2026-06-01T00:00:00Z"),
				snap("may31", ok, "2026-05-31T23:59:59Z"),
				snap("may1", ok, "2026-05-01T00:00:00Z"),
				snap("apr", ok, "2026-04-15T00:00:00Z"),
			},
			keep: []string{"jun2", "may31"},
			drop: []string{"jun1", "may1", "apr"},
		},
		{
			name:   "union of last and daily",
			policy: successes(&storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Last: ptr.To[int32](2), Daily: ptr.To[int32](3)}),
			snaps: []catalogv1alpha1.Snapshot{
				snap("d15c", ok, "2026-06-15T11:00:00Z"),
				snap("d15b", ok, "2026-06-15T10:00:00Z"),
				snap("d15a", ok, "2026-06-15T09:00:00Z"),
				snap("d14b", ok, "2026-06-14T10:00:00Z"),
				snap("d14a", ok, "2026-06-14T09:00:00Z"),
				snap("d13", ok, "2026-06-13T10:00:00Z"),
				snap("d12", ok, "2026-06-12T10:00:00Z"),
			},
			keep: []string{"d15c", "d15b", "d14b", "d13"},
			drop: []string{"d15a", "d14a", "d12"},
		},
		{
			name: "union of every bucket rule",
			policy: successes(&storagev1alpha1.SuccessfulSnapshotsKeepPolicy{
				Hourly: ptr.To[int32](1), Daily: ptr.To[int32](2), Weekly: ptr.To[int32](2),
				Monthly: ptr.To[int32](2), Yearly: ptr.To[int32](2),
			}),
			snaps: []catalogv1alpha1.Snapshot{
				snap("a", ok, "2026-06-15T11:00:00Z"), // Monday, 2026-W25: every rule
				snap("b", ok, "2026-06-15T10:00:00Z"), // hourly 1 used up; day, week, month, year as a
				snap("c", ok, "2026-06-14T10:00:00Z"), // Sunday, 2026-W24: daily 2 and weekly 2
				snap("d", ok, "2026-06-13T10:00:00Z"), // daily and weekly used up
				snap("e", ok, "2026-05-20T10:00:00Z"), // monthly 2
				snap("f", ok, "2025-12-01T10:00:00Z"), // yearly 2
				snap("g", ok, "2024-12-01T10:00:00Z"), // every rule used up
			},
			keep: []string{"a", "c", "e", "f"},
			drop: []string{"b", "d", "g"},
		},
		{
			name:   "equal times are ordered by name, whatever the input order",
			policy: successes(&storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Last: ptr.To[int32](1)}),
			snaps: []catalogv1alpha1.Snapshot{
				snap("tie-c", ok, "2026-06-15T10:00:00Z"),
				snap("tie-a", ok, "2026-06-15T10:00:00Z"),
				snap("tie-b", ok, "2026-06-15T10:00:00Z"),
			},
			keep: []string{"tie-a"},
			drop: []string{"tie-b", "tie-c"},
		},
		{
			name:   "equal times in a bucket rule: the first by name wins",
			policy: successes(&storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Daily: ptr.To[int32](1)}),
			snaps: []catalogv1alpha1.Snapshot{
				snap("tie-b", ok, "2026-06-15T10:00:00Z"),
				snap("tie-a", ok, "2026-06-15T10:00:00Z"),
			},
			keep: []string{"tie-a"},
			drop: []string{"tie-b"},
		},
		{
			name:   "creationTimestamp when snapshotTime is unset",
			policy: successes(&storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Last: ptr.To[int32](1)}),
			snaps: []catalogv1alpha1.Snapshot{
				snap("older", ok, "2026-06-14T10:00:00Z"),
				created("newer", ok, "2026-06-15T10:00:00Z"),
			},
			keep: []string{"newer"},
			drop: []string{"older"},
		},
		{
			name: "Pending and Running are never removed",
			policy: &storagev1alpha1.RetentionPolicySpec{
				MaxRetentionPeriod:  "1d",
				SuccessfulSnapshots: &storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Last: ptr.To[int32](1)},
				FailedSnapshots:     &storagev1alpha1.FailedSnapshotsKeepPolicy{Last: ptr.To[int32](0)},
			},
			snaps: []catalogv1alpha1.Snapshot{
				snap("new", ok, "2026-06-15T10:00:00Z"),
				snap("running-old", run, "2026-01-01T00:00:00Z"),
				created("pending-old", pend, "2026-01-02T00:00:00Z"),
				snap("no-phase", "", "2026-01-03T00:00:00Z"),
				snap("old", ok, "2026-06-14T10:00:00Z"),
			},
			keep: []string{"new", "no-phase", "pending-old", "running-old"},
			drop: []string{"old"},
		},
		{
			name:   "maxRetentionPeriod alone removes old successes and failures",
			policy: &storagev1alpha1.RetentionPolicySpec{MaxRetentionPeriod: "2d"},
			snaps:  daily4,
			// Cutoff 2026-06-13T12:00Z; f1 is the newest failure, so kept.
			keep: []string{"s1", "f1", "s2"},
			drop: []string{"s3", "s4", "f2"},
		},
		{
			name: "maxRetentionPeriod overrides the counts",
			policy: &storagev1alpha1.RetentionPolicySpec{
				MaxRetentionPeriod:  "1d12h",
				SuccessfulSnapshots: &storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Last: ptr.To[int32](10)},
				FailedSnapshots:     &storagev1alpha1.FailedSnapshotsKeepPolicy{Last: ptr.To[int32](10)},
			},
			snaps: daily4,
			// Cutoff 2026-06-14T00:00Z.
			keep: []string{"s1", "f1", "s2"},
			drop: []string{"s3", "s4", "f2"},
		},
		{
			name:   "a snapshot exactly at the cutoff is kept",
			policy: &storagev1alpha1.RetentionPolicySpec{MaxRetentionPeriod: "2h"},
			snaps: []catalogv1alpha1.Snapshot{
				snap("at", ok, "2026-06-15T10:00:00Z"),
				snap("before", ok, "2026-06-15T09:59:59Z"),
			},
			keep: []string{"at"},
			drop: []string{"before"},
		},
		{
			name:   "no snapshots",
			policy: successes(&storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Last: ptr.To[int32](1)}),
			snaps:  nil,
			keep:   []string{},
			drop:   []string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.now
			if n.IsZero() {
				n = now
			}
			in := append([]catalogv1alpha1.Snapshot(nil), tc.snaps...)
			keep, remove, err := Select(tc.policy, tc.snaps, n)
			require.NoError(t, err)
			assert.Equal(t, tc.keep, names(keep), "keep")
			assert.Equal(t, tc.drop, names(remove), "remove")
			assert.Equal(t, in, tc.snaps, "the input is not reordered")
		})
	}
}

func TestSelectMalformedPeriod(t *testing.T) {
	snaps := []catalogv1alpha1.Snapshot{
		snap("old", ok, "2020-01-01T00:00:00Z"),
		snap("failed", bad, "2020-01-01T00:00:00Z"),
	}
	for _, period := range []string{"7x", "1d2y", "d", "-1d"} {
		t.Run(period, func(t *testing.T) {
			keep, remove, err := Select(&storagev1alpha1.RetentionPolicySpec{
				MaxRetentionPeriod:  storagev1alpha1.RetentionPeriod(period),
				SuccessfulSnapshots: &storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Last: ptr.To[int32](0), Daily: ptr.To[int32](1)},
			}, snaps, at("2026-06-15T12:00:00Z"))
			require.Error(t, err)
			assert.Contains(t, err.Error(), period)
			assert.Empty(t, keep)
			assert.Empty(t, remove)
		})
	}
}

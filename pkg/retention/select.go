// Package retention applies a RetentionPolicy to the Snapshots of one
// Repository: Select decides which Snapshots go, Apply deletes them through
// the catalog API.
package retention

import (
	"fmt"
	"sort"
	"time"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
)

// defaultFailedLast is how many failed Snapshots are kept when the policy
// does not say; it matches the CRD default of failedSnapshots.last, so a
// policy that was never defaulted behaves like one that was.
const defaultFailedLast = 1

// Select splits snaps, the Snapshots of one Repository, into those policy
// keeps and those it removes, at time now.
//
// Only completed Snapshots (Succeeded or Failed) are candidates; Pending
// and Running ones are always kept. A Snapshot's time is
// status.snapshotTime, or its creationTimestamp when that is unset.
//
//   - Succeeded: kept if among the newest successfulSnapshots.last, or
//     chosen by one of the hourly/daily/weekly/monthly/yearly rules (the
//     newest Snapshot of each of the newest N distinct UTC hours, days, ISO
//     weeks, months or years, as restic forget --keep-*). With no
//     successfulSnapshots, or none of its counts above zero, no Succeeded
//     Snapshot is removed by count (restic too keeps everything for an
//     empty policy, and an empty one must not wipe every backup).
//   - Failed: the newest failedSnapshots.last are kept (1 when unset).
//   - maxRetentionPeriod: any completed Snapshot older than now minus the
//     period is removed as well, whatever the counts say.
//
// A nil policy keeps everything. A malformed maxRetentionPeriod is an error
// and nothing is returned, so a caller can't remove anything by mistake.
//
// keep and remove together hold every Snapshot of snaps exactly once, each
// newest first; Snapshots of the same time are ordered by name.
func Select(policy *storagev1alpha1.RetentionPolicySpec, snaps []catalogv1alpha1.Snapshot, now time.Time) (keep, remove []catalogv1alpha1.Snapshot, err error) {
	var cutoff time.Time
	hasCutoff := false
	if policy != nil && policy.MaxRetentionPeriod != "" {
		d, perr := storagev1alpha1.ParseMaxRetentionPeriod(string(policy.MaxRetentionPeriod))
		if perr != nil {
			return nil, nil, fmt.Errorf("retention policy: %w", perr)
		}
		cutoff, hasCutoff = now.Add(-d), true
	}

	sorted := make([]catalogv1alpha1.Snapshot, len(snaps))
	copy(sorted, snaps)
	sortNewestFirst(sorted)

	if policy == nil {
		return sorted, nil, nil
	}

	var succeeded, failed []int // indexes into sorted, newest first
	for i := range sorted {
		switch sorted[i].Status.Phase {
		case catalogv1alpha1.SnapshotSucceeded:
			succeeded = append(succeeded, i)
		case catalogv1alpha1.SnapshotFailed:
			failed = append(failed, i)
		}
	}

	drop := make([]bool, len(sorted))
	if ss := policy.SuccessfulSnapshots; ss != nil && anyPositive(ss) {
		kept := keepSuccessful(ss, sorted, succeeded)
		for _, i := range succeeded {
			drop[i] = !kept[i]
		}
	}

	failedLast := defaultFailedLast
	if fs := policy.FailedSnapshots; fs != nil && fs.Last != nil {
		failedLast = count(fs.Last)
	}
	for n, i := range failed {
		drop[i] = n >= failedLast
	}

	if hasCutoff {
		for _, set := range [][]int{succeeded, failed} {
			for _, i := range set {
				if snapshotTime(&sorted[i]).Before(cutoff) {
					drop[i] = true
				}
			}
		}
	}

	for i := range sorted {
		if drop[i] {
			remove = append(remove, sorted[i])
		} else {
			keep = append(keep, sorted[i])
		}
	}
	return keep, remove, nil
}

// bucketRule is one --keep-<period> rule: how many buckets to keep and how
// a time maps to its bucket.
type bucketRule struct {
	n      int
	bucket func(time.Time) string
}

// keepSuccessful returns the indexes of succeeded (newest first, into
// sorted) that the count rules keep: the union of keep-last and every
// bucket rule.
func keepSuccessful(ss *storagev1alpha1.SuccessfulSnapshotsKeepPolicy, sorted []catalogv1alpha1.Snapshot, succeeded []int) map[int]bool {
	kept := make(map[int]bool, len(succeeded))
	for n, i := range succeeded {
		if n >= count(ss.Last) {
			break
		}
		kept[i] = true
	}

	rules := []bucketRule{
		{count(ss.Hourly), func(t time.Time) string { return t.Format("2006-01-02-15") }},
		{count(ss.Daily), func(t time.Time) string { return t.Format("2006-01-02") }},
		{count(ss.Weekly), func(t time.Time) string {
			y, w := t.ISOWeek()
			return fmt.Sprintf("%04d-%02d", y, w)
		}},
		{count(ss.Monthly), func(t time.Time) string { return t.Format("2006-01") }},
		{count(ss.Yearly), func(t time.Time) string { return t.Format("2006") }},
	}
	for _, r := range rules {
		// As restic: walking newest to oldest, a Snapshot is kept when its
		// bucket differs from the last one kept, i.e. the newest Snapshot
		// of each bucket, until n buckets are kept.
		last, left := "", r.n
		for _, i := range succeeded {
			if left <= 0 {
				break
			}
			b := r.bucket(snapshotTime(&sorted[i]).UTC())
			if b == last {
				continue
			}
			kept[i] = true
			last = b
			left--
		}
	}
	return kept
}

// anyPositive says whether any count of ss is above zero.
func anyPositive(ss *storagev1alpha1.SuccessfulSnapshotsKeepPolicy) bool {
	for _, p := range []*int32{ss.Last, ss.Hourly, ss.Daily, ss.Weekly, ss.Monthly, ss.Yearly} {
		if count(p) > 0 {
			return true
		}
	}
	return false
}

// count is the value of an optional count; unset or negative (which the
// CRD forbids) is 0.
func count(p *int32) int {
	if p == nil || *p < 0 {
		return 0
	}
	return int(*p)
}

// snapshotTime is when s was taken: status.snapshotTime, or the
// creationTimestamp for a Snapshot whose status never got that far.
func snapshotTime(s *catalogv1alpha1.Snapshot) time.Time {
	if s.Status.SnapshotTime != nil && !s.Status.SnapshotTime.IsZero() {
		return s.Status.SnapshotTime.Time
	}
	return s.CreationTimestamp.Time
}

// sortNewestFirst orders snaps newest first, by name for equal times, so
// the result does not depend on the order the API listed them in.
func sortNewestFirst(snaps []catalogv1alpha1.Snapshot) {
	sort.SliceStable(snaps, func(i, j int) bool {
		ti, tj := snapshotTime(&snaps[i]), snapshotTime(&snaps[j])
		if !ti.Equal(tj) {
			return ti.After(tj)
		}
		return snaps[i].Name < snaps[j].Name
	})
}

package agent

import (
	"context"
	"sync"
	"time"

	"k8s.io/klog/v2"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/restic"
)

// reporter forwards restic's progress to the API at a fixed pace. restic
// calls update on the goroutine that reads its output, so update only
// stores the latest line; a separate goroutine writes it out, and a slow
// or unavailable API never stalls restic.
type reporter struct {
	mu      sync.Mutex
	latest  restic.Progress
	dirty   bool
	started time.Time
	publish func(ctx context.Context, p restic.Progress, elapsed time.Duration) error

	stop chan struct{}
	done chan struct{}
}

func newReporter(publish func(ctx context.Context, p restic.Progress, elapsed time.Duration) error) *reporter {
	return &reporter{publish: publish, started: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
}

func (r *reporter) update(p restic.Progress) {
	r.mu.Lock()
	r.latest, r.dirty = p, true
	r.mu.Unlock()
}

// last is the latest progress and the time since start.
func (r *reporter) last() (restic.Progress, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.latest, time.Since(r.started)
}

// start writes the latest progress every interval until Stop.
func (r *reporter) start(ctx context.Context, interval time.Duration) {
	go func() {
		defer close(r.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-r.stop:
				return
			case <-tick.C:
				r.mu.Lock()
				p, dirty := r.latest, r.dirty
				r.dirty = false
				r.mu.Unlock()
				if !dirty {
					continue
				}
				// One attempt: the next tick brings fresher numbers.
				if err := r.publish(ctx, p, time.Since(r.started)); err != nil {
					klog.V(2).InfoS("Could not report progress", "err", err)
				}
			}
		}
	}()
}

// Stop ends the writer and waits for an ongoing write.
func (r *reporter) Stop() {
	close(r.stop)
	<-r.done
}

// speed is bytes per second over the wall-clock time restic has run
// (restic's seconds_elapsed is whole seconds and absent in the first one).
func speed(bytes uint64, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(bytes) / elapsed.Seconds()
}

func elapsedSeconds(p restic.Progress, elapsed time.Duration) int64 {
	if p.SecondsElapsed > 0 {
		return int64(p.SecondsElapsed)
	}
	return int64(elapsed / time.Second)
}

// backupProgress is restic's status in the Snapshot's words. BackupDone
// counts processed bytes, unchanged files included, against the total to
// scan, so an incremental backup's percentage is right (velero#9332).
func backupProgress(p restic.Progress, elapsed time.Duration) *catalogv1alpha1.ResticProgress {
	return &catalogv1alpha1.ResticProgress{
		SecondsElapsed: elapsedSeconds(p, elapsed),
		PercentDone:    restic.FormatPercent(p.PercentDone),
		TotalFiles:     int64(p.TotalFiles),
		FilesDone:      int64(p.FilesDone),
		BackupDone:     restic.FormatDecimal(float64(p.BytesDone)),
		Total:          restic.FormatDecimal(float64(p.TotalBytes)),
		Speed:          restic.FormatSpeed(speed(p.BytesDone, elapsed)),
	}
}

func restoreProgress(p restic.Progress, elapsed time.Duration) *catalogv1alpha1.RestoreProgress {
	return &catalogv1alpha1.RestoreProgress{
		SecondsElapsed: elapsedSeconds(p, elapsed),
		PercentDone:    restic.FormatPercent(p.PercentDone),
		TotalFiles:     int64(p.TotalFiles),
		FilesDone:      int64(p.FilesDone),
		RestoreDone:    restic.FormatDecimal(float64(p.BytesDone)),
		Total:          restic.FormatDecimal(float64(p.TotalBytes)),
		Speed:          restic.FormatSpeed(speed(p.BytesDone, elapsed)),
	}
}

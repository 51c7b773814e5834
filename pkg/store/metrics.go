package store

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Reasons a file is skipped, the "reason" label of skippedFiles.
const (
	skipDecode    = "decode"    // not YAML of a known kind
	skipKind      = "kind"      // decodes, but to another kind than this resource's
	skipAdmit     = "admit"     // the Admitter refused it (tenancy, key)
	skipDuplicate = "duplicate" // another file serves the same registry key, and takes precedence
	skipTooLarge  = "too-large" // over Config.MaxObjectSize; not read
)

const metricsSubsystem = "kubestash_catalog"

var (
	skippedFiles = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "skipped_files_total",
		Help:           "Files in a backend that the catalog store could not serve (corrupt, foreign, refused, duplicate), by reason.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"resource", "reason"})
	backendErrors = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "backend_errors_total",
		Help:           "Failed backend calls of the catalog store, by operation (get, put, delete, scan).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"resource", "operation"})
	pollDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Subsystem:      metricsSubsystem,
		Name:           "poll_duration_seconds",
		Help:           "Time to poll every storage of a resource once (list, compare ETags, read what changed).",
		Buckets:        metrics.ExponentialBuckets(0.01, 2, 12),
		StabilityLevel: metrics.ALPHA,
	}, []string{"resource"})
	indexObjects = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem:      metricsSubsystem,
		Name:           "index_objects",
		Help:           "Objects held in the in-memory index of the catalog store.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"resource"})
	terminatedWatchers = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      metricsSubsystem,
		Name:           "terminated_watchers_total",
		Help:           "Watches ended with 410 Gone: their resourceVersion was older than the bounded event log (a client too slow to keep up, or one resuming from too old a version).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"resource"})

	eventLogBytes = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem:      metricsSubsystem,
		Name:           "event_log_bytes",
		Help:           "File bytes of the objects held by the watch event log of the catalog store (bounded by --event-log-bytes).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"resource"})

	registerMetricsOnce sync.Once
)

// registerMetrics adds the store's metrics to the legacy registry, which the
// apiserver's /metrics serves.
func registerMetrics() {
	registerMetricsOnce.Do(func() {
		legacyregistry.MustRegister(skippedFiles, backendErrors, pollDuration, indexObjects, terminatedWatchers, eventLogBytes)
	})
}

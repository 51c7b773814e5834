package storagetracker

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

var (
	storagesGauge = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Subsystem:      "kubestash_catalog",
		Name:           "backup_storages",
		Help:           "BackupStorages known to the catalog server, by state: served, or failed (its backend can't be built).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"state"})

	registerOnce sync.Once
)

func registerMetrics() {
	registerOnce.Do(func() { legacyregistry.MustRegister(storagesGauge) })
}

func (m *Manager) updateMetrics() {
	m.mu.RLock()
	served, failed := len(m.served), len(m.failures)
	m.mu.RUnlock()
	storagesGauge.WithLabelValues("served").Set(float64(served))
	storagesGauge.WithLabelValues("failed").Set(float64(failed))
}

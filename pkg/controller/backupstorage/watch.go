package backupstorage

import (
	"fmt"

	"kubestash.dev/kubestash/pkg/controller/lookup"
	"kubestash.dev/kubestash/pkg/controller/loop"
)

// Watch feeds l with every change of a BackupStorage; the resync refreshes
// the list of its repositories.
func Watch(l *loop.Loop, inf lookup.Informers) error {
	if _, err := inf.Catalog.Storage().V1alpha1().BackupStorages().Informer().AddEventHandler(l.Handler()); err != nil {
		return fmt.Errorf("watch BackupStorages: %w", err)
	}
	return nil
}

// New returns the BackupStorage controller: a loop of r.Reconcile, fed by Watch from the shared
// informers inf.
func New(r *Reconciler, inf lookup.Informers) (*loop.Loop, error) {
	l := loop.New("backupstorage", r.Reconcile)
	return l, Watch(l, inf)
}

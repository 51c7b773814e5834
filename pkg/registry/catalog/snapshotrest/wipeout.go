package snapshotrest

import (
	"context"
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"

	"kubestash.dev/kubestash/pkg/apis/catalog"
	"kubestash.dev/kubestash/pkg/backend"
	"kubestash.dev/kubestash/pkg/layout"
	"kubestash.dev/kubestash/pkg/store"
)

// ForgetOnWipeOut is the DeleteHook of snapshots: deleting a Snapshot whose
// deletionPolicy is WipeOut leaves a forget mark (layout.ForgetDir) in its
// repository, naming the restic snapshots of its components, before its
// file is removed. The controller forgets them with restic; nothing here
// touches restic data. With deletionPolicy Delete the data stays and
// nothing is written.
type ForgetOnWipeOut struct {
	// Now gives the deletion time; nil is time.Now.
	Now func() time.Time
}

var _ store.DeleteHook = ForgetOnWipeOut{}

// BeforeDelete implements store.DeleteHook.
func (f ForgetOnWipeOut) BeforeDelete(ctx context.Context, b backend.Backend, loc store.Location, obj runtime.Object) (func(context.Context), error) {
	s, ok := obj.(*catalog.Snapshot)
	if !ok {
		return nil, fmt.Errorf("want a Snapshot, got %T", obj)
	}
	if s.Spec.DeletionPolicy != catalog.DeletionPolicyWipeOut {
		return nil, nil
	}
	k, repoDir, _, ok := layout.Parse(loc.Key)
	if !ok || k != layout.KindSnapshot {
		return nil, fmt.Errorf("%s is not a snapshot file", loc)
	}
	mark := ForgetMarkOf(s, f.now())
	key, err := layout.AddForgetMark(ctx, b, repoDir, mark)
	if err != nil {
		return nil, err
	}
	logger := klog.FromContext(ctx).WithValues("snapshot", klog.KObj(s), "storage", loc.Storage, "mark", key)
	logger.V(2).Info("Snapshot with deletionPolicy WipeOut: its restic data is marked to be forgotten")
	return func(ctx context.Context) {
		if err := layout.DropForgetEntry(ctx, b, key, mark.UID); err != nil {
			// Safe to leave: a mark whose Snapshot still exists is not
			// acted upon (see layout.ForgetDir).
			logger.Error(err, "Cannot take back the forget mark of a Snapshot that was not deleted")
		}
	}, nil
}

func (f ForgetOnWipeOut) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// ForgetMarkOf is the forget mark entry of s: the restic snapshot ids of
// every component, by component name.
func ForgetMarkOf(s *catalog.Snapshot, deletedAt time.Time) layout.ForgetSnapshot {
	m := layout.ForgetSnapshot{
		Name: s.Name, Namespace: s.Namespace, UID: string(s.UID),
		Repository: s.Spec.Repository, SnapshotID: s.Spec.SnapshotID,
		DeletedAt: metav1.NewTime(deletedAt.UTC().Truncate(time.Second)),
	}
	names := make([]string, 0, len(s.Status.Components))
	for name := range s.Status.Components {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c := s.Status.Components[name]
		fc := layout.ForgetComponent{Name: name, Path: c.Path}
		for _, st := range c.ResticStats {
			if st.Summary != nil && st.Summary.ID != "" {
				fc.ResticSnapshots = append(fc.ResticSnapshots, st.Summary.ID)
			}
		}
		m.Components = append(m.Components, fc)
	}
	return m
}

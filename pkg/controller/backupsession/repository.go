package backupsession

import (
	"context"
	"fmt"
	"sort"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	"kubestash.dev/kubestash/pkg/conditions"
)

// maxRecentSnapshots is upstream's length of status.recentSnapshots.
const maxRecentSnapshots = 5

// RefreshRepository brings the Repository namespace/name's status in line
// with its Snapshots; it is the reconcile of a Snapshot's deletion, which
// no session looks at once it is over. A Repository that is gone is fine.
func (r *Reconciler) RefreshRepository(ctx context.Context, namespace, name string) error {
	if err := r.refreshRepository(ctx, namespace, name); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// refreshRepository derives a Repository's status from its Snapshots: the
// count, the newest successful backup's time, integrity and size, the five
// most recent, the component paths. It is called when a session ends.
func (r *Reconciler) refreshRepository(ctx context.Context, namespace, name string) error {
	repos := r.Client.CatalogV1alpha1().Repositories(namespace)
	repo, err := repos.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get Repository %s/%s: %w", namespace, name, err)
	}
	sel := labels.SelectorFromSet(labels.Set{catalogv1alpha1.LabelRepoName: name})
	list, err := r.Client.CatalogV1alpha1().Snapshots(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return fmt.Errorf("list Snapshots of %s/%s: %w", namespace, name, err)
	}
	snaps := list.Items
	sort.Slice(snaps, func(i, j int) bool {
		ti, tj := snapTime(&snaps[i]), snapTime(&snaps[j])
		if !ti.Equal(&tj) {
			return tj.Before(&ti)
		}
		return snaps[i].Name > snaps[j].Name
	})
	st := repo.Status.DeepCopy()
	st.SnapshotCount = ptr.To(int32(len(snaps)))
	st.RecentSnapshots = nil
	paths := map[string]bool{}
	var lastOK *catalogv1alpha1.Snapshot
	for i := range snaps {
		s := &snaps[i]
		if len(st.RecentSnapshots) < maxRecentSnapshots {
			st.RecentSnapshots = append(st.RecentSnapshots, catalogv1alpha1.SnapshotInfo{
				Name: s.Name, Phase: s.Status.Phase, Session: s.Spec.Session, Size: s.Status.Size, SnapshotTime: s.Status.SnapshotTime,
			})
		}
		for _, c := range s.Status.Components {
			if c.Path != "" {
				paths[c.Path] = true
			}
		}
		if lastOK == nil && s.Status.Phase == catalogv1alpha1.SnapshotSucceeded {
			lastOK = s
		}
	}
	st.ComponentPaths = nil
	for p := range paths {
		st.ComponentPaths = append(st.ComponentPaths, p)
	}
	sort.Strings(st.ComponentPaths)
	// Without a successful Snapshot left, nothing tells the size or the
	// integrity: blank rather than the last deleted one's.
	st.Integrity, st.Size = nil, ""
	if lastOK != nil {
		st.LastBackupTime = lastOK.Status.SnapshotTime
		st.Integrity = lastOK.Status.Integrity
		st.Size = lastOK.Status.Size
		// A backup has initialized the restic repository.
		conditions.Set(&st.Conditions, conditions.True(catalogv1alpha1.TypeRepositoryInitialized, catalogv1alpha1.ReasonRepositoryInitializationSucceeded, "backed up by "+lastOK.Name))
	}
	st.Phase = catalogv1alpha1.RepositoryNotReady
	if conditions.IsTrue(st.Conditions, catalogv1alpha1.TypeRepositoryInitialized) {
		st.Phase = catalogv1alpha1.RepositoryReady
	}
	if apiequality.Semantic.DeepEqual(*st, repo.Status) {
		return nil
	}
	repo = repo.DeepCopy()
	repo.Status = *st
	if _, err := repos.UpdateStatus(ctx, repo, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update status of Repository %s/%s: %w", namespace, name, err)
	}
	return nil
}

func snapTime(s *catalogv1alpha1.Snapshot) metav1.Time {
	if s.Status.SnapshotTime != nil {
		return *s.Status.SnapshotTime
	}
	return s.CreationTimestamp
}

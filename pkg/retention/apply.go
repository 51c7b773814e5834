package retention

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
	storagev1alpha1 "kubestash.dev/kubestash/pkg/apis/storage/v1alpha1"
	"kubestash.dev/kubestash/pkg/generated/clientset/versioned"
)

// Apply applies policy to the Snapshots of repository in namespace (those
// labelled kubestash.com/repo-name=<repository>) at time now: it deletes
// every Snapshot Select removes through the catalog API and returns the
// names it deleted, newest first.
//
// Each Snapshot is deleted as it is: the catalog server leaves a forget
// mark for the restic data of a WipeOut Snapshot (layout.ForgetDir) and
// only drops the catalog file of a Delete one, so the user's choice of
// deletionPolicy is honoured and nothing is patched here.
//
// One failed deletion does not stop the others; the errors are returned
// joined, along with the names that were deleted. A Snapshot already gone,
// or replaced by another of the same name since it was listed, is skipped
// without error: it is not the one that was selected.
func Apply(ctx context.Context, client versioned.Interface, namespace, repository string, policy *storagev1alpha1.RetentionPolicy, now time.Time) (removed []string, err error) {
	logger := klog.FromContext(ctx).WithValues("namespace", namespace, "repository", repository)

	snaps := client.CatalogV1alpha1().Snapshots(namespace)
	list, err := snaps.List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{catalogv1alpha1.LabelRepoName: repository}).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("retention of repository %s/%s: list snapshots: %w", namespace, repository, err)
	}

	var spec *storagev1alpha1.RetentionPolicySpec
	if policy != nil {
		spec = &policy.Spec
	}
	_, remove, err := Select(spec, list.Items, now)
	if err != nil {
		return nil, fmt.Errorf("retention of repository %s/%s: %w", namespace, repository, err)
	}

	var errs []error
	for i := range remove {
		s := &remove[i]
		if ctx.Err() != nil {
			// Every further call would fail the same way; say so once.
			errs = append(errs, fmt.Errorf("%d snapshots not deleted: %w", len(remove)-i, context.Cause(ctx)))
			break
		}
		opts := metav1.DeleteOptions{}
		if s.UID != "" {
			// Guards against deleting a Snapshot made again under the same
			// name after the list: that one was not selected.
			opts.Preconditions = metav1.NewUIDPreconditions(string(s.UID))
		}
		err := snaps.Delete(ctx, s.Name, opts)
		switch {
		case err == nil:
			removed = append(removed, s.Name)
			logger.V(2).Info("Snapshot removed by retention policy", "snapshot", s.Name, "deletionPolicy", s.Spec.DeletionPolicy)
		case apierrors.IsNotFound(err), apierrors.IsConflict(err):
			logger.V(2).Info("Snapshot selected by retention policy is already gone or was replaced; skipped", "snapshot", s.Name, "reason", err.Error())
		default:
			errs = append(errs, fmt.Errorf("delete snapshot %s: %w", s.Name, err))
		}
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("retention of repository %s/%s: %w", namespace, repository, errors.Join(errs...))
	}
	return removed, nil
}

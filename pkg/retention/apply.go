package retention

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/util/retry"
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
// As upstream does, each selected Snapshot gets spec.deletionPolicy
// WipeOut before it is deleted: retention removes backups, not only their
// catalog entries. The catalog server then leaves a forget mark for its
// restic data (layout.ForgetDir), which the retention Job (agent forget)
// turns into restic forget --prune.
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
		if err := wipeOut(ctx, client, s); err != nil {
			if apierrors.IsNotFound(err) || errors.Is(err, errReplaced) {
				logger.V(2).Info("Snapshot selected by retention policy is already gone or was replaced; skipped", "snapshot", s.Name, "reason", err.Error())
			} else {
				errs = append(errs, fmt.Errorf("set deletionPolicy WipeOut on snapshot %s: %w", s.Name, err))
			}
			continue
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

var errReplaced = errors.New("replaced by another Snapshot of the same name")

// wipeOut sets spec.deletionPolicy WipeOut on s (as listed), unless it has
// it already; a Snapshot made again under its name is not touched.
func wipeOut(ctx context.Context, client versioned.Interface, s *catalogv1alpha1.Snapshot) error {
	if s.Spec.DeletionPolicy == catalogv1alpha1.DeletionPolicyWipeOut {
		return nil
	}
	snaps := client.CatalogV1alpha1().Snapshots(s.Namespace)
	cur := s.DeepCopy()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur.Spec.DeletionPolicy = catalogv1alpha1.DeletionPolicyWipeOut
		_, err := snaps.Update(ctx, cur, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			return err
		}
		got, gerr := snaps.Get(ctx, s.Name, metav1.GetOptions{})
		switch {
		case gerr != nil:
			return gerr
		case s.UID != "" && got.UID != s.UID:
			return errReplaced
		}
		cur = got
		return err
	})
}

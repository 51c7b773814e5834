package agent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	catalogv1alpha1 "kubestash.dev/kubestash/pkg/apis/catalog/v1alpha1"
)

// UnlockOptions are the arguments of `agent unlock` (the Job that
// `kubectl kubestash unlock` asks the controller for).
type UnlockOptions struct {
	Namespace  string
	Repository string
	ScratchDir string
}

// Unlock removes the dead locks of every restic repository of a
// Repository: those of Job pods of its namespace that no longer run
// (removeDeadLocks) and those restic itself calls stale (`restic unlock`,
// never --remove-all). A lock of a restic that may still run is kept, and
// counted in the summary it returns, one line per restic repository.
func (a *Agent) Unlock(ctx context.Context, o UnlockOptions) (string, error) {
	if o.Namespace == "" || o.Repository == "" {
		return "", errors.New("unlock: --namespace and --repository are required")
	}
	if o.ScratchDir == "" {
		o.ScratchDir = DefaultScratchDir
	}
	repo, err := a.Client.CatalogV1alpha1().Repositories(o.Namespace).Get(ctx, o.Repository, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("get Repository %s/%s: %w", o.Namespace, o.Repository, err)
	}
	acc, err := a.repoAccess(ctx, repo, nil, repo.Namespace)
	if err != nil {
		return "", err
	}
	paths, err := a.componentPaths(ctx, repo)
	if err != nil {
		return "", err
	}
	var errs []error
	var summary []string
	for _, p := range paths {
		removed, kept, err := a.unlockIn(ctx, repo, acc, p, o.ScratchDir)
		if err != nil {
			errs = append(errs, fmt.Errorf("component %s: %w", p, err))
			continue
		}
		summary = append(summary, fmt.Sprintf("%s: removed %d stale lock(s), kept %d lock(s) of a restic that may still run", p, removed, kept))
	}
	if len(paths) == 0 {
		summary = append(summary, "no restic repository in this Repository yet: nothing to unlock")
	}
	return strings.Join(summary, "\n"), errors.Join(errs...)
}

// componentPaths are the restic repositories of repo: those its status
// lists, and those its Snapshots name (a backup records them there first).
func (a *Agent) componentPaths(ctx context.Context, repo *catalogv1alpha1.Repository) ([]string, error) {
	seen := map[string]bool{}
	for _, p := range repo.Status.ComponentPaths {
		seen[p] = true
	}
	snaps, err := a.Client.CatalogV1alpha1().Snapshots(repo.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list Snapshots of %s: %w", repo.Namespace, err)
	}
	for _, s := range snaps.Items {
		if s.Spec.Repository != repo.Name {
			continue
		}
		for _, c := range s.Status.Components {
			if c.Path != "" {
				seen[c.Path] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

func (a *Agent) unlockIn(ctx context.Context, repo *catalogv1alpha1.Repository, acc *access, componentPath, scratchDir string) (removed, kept int, err error) {
	r, err := a.newRestic(acc, componentPath, scratchDir, false)
	if err != nil {
		return 0, 0, err
	}
	exists, err := r.Exists(ctx)
	if err != nil || !exists {
		return 0, 0, err
	}
	before, err := r.Locks(ctx)
	if err != nil {
		return 0, 0, err
	}
	if len(before) == 0 {
		return 0, 0, nil
	}
	a.removeDeadLocks(ctx, r, repo, componentPath)
	if err := r.UnlockStale(ctx); err != nil {
		return 0, 0, err
	}
	after, err := r.Locks(ctx)
	if err != nil {
		return 0, 0, err
	}
	klog.V(1).InfoS("Unlocked", "component", componentPath, "before", len(before), "after", len(after))
	return max(len(before)-len(after), 0), len(after), nil
}

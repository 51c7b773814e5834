package layout

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"kubestash.dev/kubestash/pkg/backend"
)

// RepositoryFolders are the folders of a repository this project writes
// into, in the order a wipe removes them: restic data first, so that an
// interrupted wipe leaves a catalog that still describes what is left
// rather than snapshots whose data is gone.
var RepositoryFolders = []string{ResticDir, SnapshotsDir, BackupSessionsDir, RestoreSessionsDir, ForgetDir}

// WipeRepository removes what this project keeps of the repository at
// repoPath: its restic data and its catalog folders (snapshots, sessions
// with their history, forget marks), and repository.yaml itself when
// withFile is set. Nothing else under the repository's folder is touched:
// it may hold another repository (a nested path) or a person's files.
// It is idempotent, so a wipe cut short is finished by calling it again;
// it returns how many objects it removed.
func WipeRepository(ctx context.Context, b backend.Backend, repoPath string, withFile bool) (int, error) {
	dir, err := RepoDir(repoPath)
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, f := range RepositoryFolders {
		n, err := deleteUnder(ctx, b, dir+"/"+f+"/")
		removed += n
		if err != nil {
			return removed, err
		}
	}
	if withFile {
		n, err := deleteKey(ctx, b, dir+"/"+RepositoryFile)
		removed += n
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// WipeStorage removes what this project keeps in a whole backend: every
// repository found through metadata.yaml or by walking the backend
// (WipeRepository, with its file), then metadata.yaml, last, so that an
// interrupted wipe is still found and finished. Files this project did not
// write are left where they are.
func WipeStorage(ctx context.Context, b backend.Backend) (int, error) {
	wiped := map[string]bool{}
	removed := 0
	// A walk stops at a repository's folder, so one nested in another is
	// found only once the outer one is gone: walk again until nothing new.
	for {
		listed, err := Discover(ctx, b)
		if err != nil {
			return removed, fmt.Errorf("find the repositories of %s: %w", b, err)
		}
		walked, err := Walk(ctx, b)
		if err != nil {
			return removed, err
		}
		var todo []string
		for _, d := range append(listed, walked...) {
			if !wiped[d] {
				wiped[d] = true
				todo = append(todo, d)
			}
		}
		if len(todo) == 0 {
			break
		}
		sort.Strings(todo)
		for _, d := range todo {
			n, err := WipeRepository(ctx, b, d, true)
			removed += n
			if err != nil {
				return removed, fmt.Errorf("wipe repository %s of %s: %w", d, b, err)
			}
		}
	}
	n, err := deleteKey(ctx, b, MetadataFile)
	removed += n
	if err != nil {
		return removed, fmt.Errorf("remove %s of %s: %w", MetadataFile, b, err)
	}
	return removed, nil
}

// deleteUnder removes every object under prefix (a folder, ending in "/").
func deleteUnder(ctx context.Context, b backend.Backend, prefix string) (int, error) {
	res, err := b.List(ctx, prefix, backend.ListOptions{})
	if err != nil {
		return 0, fmt.Errorf("list %s in %s: %w", prefix, b, err)
	}
	removed := 0
	for _, o := range res.Objects {
		n, err := deleteKey(ctx, b, o.Key)
		removed += n
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// deleteKey removes one object; one that is already gone counts as done.
func deleteKey(ctx context.Context, b backend.Backend, key string) (int, error) {
	err := b.Delete(ctx, key, backend.DeleteOptions{})
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("remove %s in %s: %w", key, b, err)
	}
	return 1, nil
}

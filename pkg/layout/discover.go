package layout

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/klog/v2"

	"kubestash.dev/kubestash/pkg/backend"
)

// maxWalkDepth bounds the walk of a bucket written by upstream KubeStash; a
// repository path deeper than this is not found.
const maxWalkDepth = 8

// corruptMetaLogged remembers, by backend, the metadata.yaml error last
// logged.
var corruptMetaLogged sync.Map

// Discover returns the repository directories of a backend, sorted. It reads
// metadata.yaml and trusts its repository list; without one (a bucket of
// upstream KubeStash, or no repositories yet) it walks the bucket. A
// corrupt metadata.yaml is walked around too: one bad file must not make a
// storage's whole catalog vanish. Listed paths that are not valid
// repository paths (RepoDir, the rule of the API) are left out.
func Discover(ctx context.Context, b backend.Backend) ([]string, error) {
	m, _, err := ReadMeta(ctx, b)
	switch {
	case errors.Is(err, ErrCorruptMeta):
		// Once per backend and error, not at every poll.
		if prev, ok := corruptMetaLogged.Swap(b.String(), err.Error()); !ok || prev != err.Error() {
			klog.FromContext(ctx).Info("Warning: metadata.yaml is not readable; finding repositories by walking the backend",
				"backend", b.String(), "err", err)
		}
		return Walk(ctx, b)
	case err != nil && !errors.Is(err, backend.ErrNotFound):
		return nil, err
	}
	if err == nil && len(m.Repositories) > 0 {
		seen := map[string]bool{}
		var dirs []string
		for _, r := range m.Repositories {
			d, err := RepoDir(r.Path)
			if err != nil {
				klog.FromContext(ctx).V(2).Info("Skipping an invalid repository path listed in metadata.yaml",
					"backend", b.String(), "name", r.Name, "namespace", r.Namespace, "err", err)
				continue
			}
			if seen[d] {
				continue
			}
			seen[d] = true
			dirs = append(dirs, d)
		}
		sort.Strings(dirs)
		return dirs, nil
	}
	return Walk(ctx, b)
}

// Walk finds repositories by listing directories with a delimiter, stopping
// at any directory that holds repository.yaml and never descending into
// restic data, catalog folders or forget marks.
func Walk(ctx context.Context, b backend.Backend) ([]string, error) {
	var dirs []string
	level := []string{""}
	for depth := 0; depth <= maxWalkDepth && len(level) > 0; depth++ {
		var next []string
		for _, dir := range level {
			prefix := ""
			if dir != "" {
				prefix = dir + "/"
			}
			res, err := b.List(ctx, prefix, backend.ListOptions{Delimiter: "/"})
			if err != nil {
				return nil, fmt.Errorf("walk %s: %w", b, err)
			}
			isRepo := false
			for _, o := range res.Objects {
				if dir != "" && o.Key == prefix+RepositoryFile {
					isRepo = true
				}
			}
			if isRepo {
				dirs = append(dirs, dir)
				continue
			}
			for _, p := range res.CommonPrefixes {
				switch path.Base(strings.TrimSuffix(p, "/")) {
				case ResticDir, SnapshotsDir, BackupSessionsDir, RestoreSessionsDir, ForgetDir:
					continue
				}
				// An object store's keys may hold "..", "." or empty
				// elements; such a folder is no repository path.
				d := strings.TrimSuffix(p, "/")
				if c, err := backend.CleanKey(d); err != nil || c != d {
					continue
				}
				next = append(next, d)
			}
		}
		level = next
	}
	sort.Strings(dirs)
	return dirs, nil
}

// scanConcurrency bounds the list calls in flight per backend.
const scanConcurrency = 8

// ScanKind lists the catalog files of one kind in the given repositories:
// list calls only, one per repository, nothing read.
func ScanKind(ctx context.Context, b backend.Backend, k Kind, repoDirs []string) ([]backend.Object, error) {
	results := make([][]backend.Object, len(repoDirs))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(scanConcurrency)
	for i, dir := range repoDirs {
		g.Go(func() error {
			prefix := dir + "/"
			if k != KindRepository {
				prefix += k.dir() + "/"
			}
			res, err := b.List(ctx, prefix, backend.ListOptions{Delimiter: "/"})
			if err != nil {
				return fmt.Errorf("scan %s: %w", prefix, err)
			}
			for _, o := range res.Objects {
				if c, err := backend.CleanKey(o.Key); err != nil || c != o.Key {
					continue // not a key that can be read back
				}
				if kk, _, _, ok := Parse(o.Key); ok && kk == k {
					results[i] = append(results[i], o)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []backend.Object
	for _, r := range results {
		out = append(out, r...)
	}
	return out, nil
}

// Discovery caches the repository directories per storage for a short
// while, so that the scans of the four kinds in one poll share one walk.
type Discovery struct {
	TTL time.Duration

	mu    sync.Mutex
	cache map[string]discovered
}

type discovered struct {
	at   time.Time
	dirs []string
}

// NewDiscovery returns a cache whose entries live for ttl.
func NewDiscovery(ttl time.Duration) *Discovery {
	return &Discovery{TTL: ttl, cache: map[string]discovered{}}
}

// Repos returns the repository directories of storage.
func (d *Discovery) Repos(ctx context.Context, storage string, b backend.Backend) ([]string, error) {
	d.mu.Lock()
	c, ok := d.cache[storage]
	d.mu.Unlock()
	if ok && time.Since(c.at) < d.TTL {
		return c.dirs, nil
	}
	dirs, err := Discover(ctx, b)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.cache[storage] = discovered{at: time.Now(), dirs: dirs}
	d.mu.Unlock()
	return dirs, nil
}

// Invalidate forgets storage's repositories, e.g. after a new one was added.
func (d *Discovery) Invalidate(storage string) {
	d.mu.Lock()
	delete(d.cache, storage)
	d.mu.Unlock()
}

// Scanner lists the files of one kind in a storage; it fits the catalog
// store's Scanner.
type Scanner struct {
	Kind      Kind
	Discovery *Discovery
}

// Scan implements the catalog store's Scanner.
func (s Scanner) Scan(ctx context.Context, storage string, b backend.Backend) ([]backend.Object, error) {
	dirs, err := s.Discovery.Repos(ctx, storage, b)
	if err != nil {
		return nil, err
	}
	return ScanKind(ctx, b, s.Kind, dirs)
}

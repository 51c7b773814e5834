package layout

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"kubestash.dev/kubestash/pkg/backend"
)

// BackendMeta is metadata.yaml, upstream's config.kubestash.com/v1alpha1
// BackendMeta. Its presence means the backend is initialized. Upstream
// writes no repository list; this project keeps one so that discovery reads
// one file instead of walking the bucket.
type BackendMeta struct {
	APIVersion        string           `json:"apiVersion"`
	Kind              string           `json:"kind"`
	CreationTimestamp metav1.Time      `json:"creationTimestamp"`
	OperatorVersion   string           `json:"operatorVersion,omitempty"`
	Repositories      []RepositoryInfo `json:"repositories,omitempty"`
}

// RepositoryInfo is one entry of BackendMeta.repositories, the shape of
// BackupStorage.status.repositories.
type RepositoryInfo struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Path      string `json:"path"`
	Size      string `json:"size,omitempty"`
}

// BackendMeta's type.
const (
	MetaAPIVersion = "config.kubestash.com/v1alpha1"
	MetaKind       = "BackendMeta"
)

// MaxMetaSize bounds metadata.yaml (8 MiB: some 50,000 repositories); a
// larger one is corrupt, and is not read.
const MaxMetaSize = 8 << 20

// ErrCorruptMeta: metadata.yaml is there but is not a BackendMeta (it does
// not decode, has another kind, or is over MaxMetaSize).
var ErrCorruptMeta = errors.New("not a readable BackendMeta")

// ReadMeta reads metadata.yaml. A missing file is backend.ErrNotFound; one
// that is not a BackendMeta is ErrCorruptMeta (the error never quotes the
// file).
func ReadMeta(ctx context.Context, b backend.Backend) (*BackendMeta, backend.Object, error) {
	data, obj, err := backend.GetLimit(ctx, b, MetadataFile, MaxMetaSize)
	if errors.Is(err, backend.ErrTooLarge) {
		return nil, obj, fmt.Errorf("%s in %s: %w: %d bytes or more, over %d", MetadataFile, b, ErrCorruptMeta, obj.Size, MaxMetaSize)
	}
	if err != nil {
		return nil, obj, err
	}
	var m BackendMeta
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, obj, fmt.Errorf("%s in %s: %w: %s", MetadataFile, b, ErrCorruptMeta, DecodeErrorKind(err))
	}
	if m.Kind != MetaKind {
		return nil, obj, fmt.Errorf("%s in %s: %w: its kind is not %s", MetadataFile, b, ErrCorruptMeta, MetaKind)
	}
	return &m, obj, nil
}

// EnsureMeta writes metadata.yaml if it is absent and returns what is there.
func EnsureMeta(ctx context.Context, b backend.Backend, operatorVersion string) (*BackendMeta, error) {
	m, _, err := ReadMeta(ctx, b)
	if err == nil {
		return m, nil
	}
	if !errors.Is(err, backend.ErrNotFound) {
		return nil, err
	}
	m = &BackendMeta{APIVersion: MetaAPIVersion, Kind: MetaKind, CreationTimestamp: metav1.NewTime(time.Now().UTC().Truncate(time.Second)), OperatorVersion: operatorVersion}
	data, err := yaml.Marshal(m)
	if err != nil {
		return nil, err
	}
	_, err = b.Put(ctx, MetadataFile, data, backend.PutOptions{IfAbsent: true, ContentType: "application/yaml"})
	if errors.Is(err, backend.ErrPreconditionFailed) {
		// Someone else initialized it first: theirs stands.
		m, _, err = ReadMeta(ctx, b)
		return m, err
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// UpdateRepositories changes the repository list of metadata.yaml with
// mutate, retrying on concurrent writers; metadata.yaml must exist.
// mutate returns false to leave the file as it is.
func UpdateRepositories(ctx context.Context, b backend.Backend, mutate func([]RepositoryInfo) ([]RepositoryInfo, bool)) error {
	for attempt := 0; ; attempt++ {
		m, obj, err := ReadMeta(ctx, b)
		if err != nil {
			return err
		}
		repos, changed := mutate(append([]RepositoryInfo(nil), m.Repositories...))
		if !changed {
			return nil
		}
		sort.Slice(repos, func(i, j int) bool { return repos[i].Path < repos[j].Path })
		m.Repositories = repos
		data, err := yaml.Marshal(m)
		if err != nil {
			return err
		}
		_, err = b.Put(ctx, MetadataFile, data, backend.PutOptions{IfMatch: obj.ETag, ContentType: "application/yaml"})
		if errors.Is(err, backend.ErrPreconditionFailed) && attempt < 10 {
			continue
		}
		return err
	}
}

// AddRepository records a repository in metadata.yaml (once per path).
func AddRepository(ctx context.Context, b backend.Backend, info RepositoryInfo) error {
	dir, err := RepoDir(info.Path)
	if err != nil {
		return err
	}
	return UpdateRepositories(ctx, b, func(rs []RepositoryInfo) ([]RepositoryInfo, bool) {
		for _, r := range rs {
			if p, _ := RepoDir(r.Path); p == dir {
				return rs, false
			}
		}
		return append(rs, info), true
	})
}

// RemoveRepository drops a repository from metadata.yaml's list.
func RemoveRepository(ctx context.Context, b backend.Backend, repoPath string) error {
	dir, err := RepoDir(repoPath)
	if err != nil {
		return err
	}
	return UpdateRepositories(ctx, b, func(rs []RepositoryInfo) ([]RepositoryInfo, bool) {
		out := rs[:0]
		for _, r := range rs {
			if p, _ := RepoDir(r.Path); p != dir {
				out = append(out, r)
			}
		}
		return out, len(out) != len(rs)
	})
}

package layout

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"kubestash.dev/kubestash/pkg/backend"
)

// ForgetDir is the folder of a repository that holds forget marks:
//
//	R/forget/<snapshot>.yaml
//
// Deleting a Snapshot whose deletionPolicy is WipeOut removes its catalog
// file and leaves a mark naming its restic snapshots; the controller runs
// restic forget on them and then removes the mark. The mark lives in the
// backend, next to the data it is about, so that the intent survives
// restarts of the catalog server and of the controller, and is seen by any
// cluster that serves the bucket. Discovery never descends into it and no
// scan reads it as a catalog object.
//
// A mark is written before the Snapshot's file is removed (a crash between
// the two leaves the intent, not an unrecorded leak), and taken back if the
// removal fails. So whoever acts on a mark must first check that the
// Snapshot's file is gone, or holds a Snapshot of another UID (one made
// again under the same name): a mark whose Snapshot is still there is not
// acted upon.
const ForgetDir = "forget"

// ForgetMark is the content of a forget mark: the restic data of one or
// more deleted Snapshots of the same name (more than one only if the name
// was deleted again before the controller got to the first).
type ForgetMark struct {
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Snapshots  []ForgetSnapshot `json:"snapshots"`
}

// ForgetMark's type; like BackendMeta, a file format, not a served API.
const (
	ForgetAPIVersion = MetaAPIVersion
	ForgetKind       = "ForgetMark"
)

// ForgetSnapshot is a deleted Snapshot whose restic data is to be
// forgotten.
type ForgetSnapshot struct {
	Name       string `json:"name"`
	Namespace  string `json:"namespace"`
	UID        string `json:"uid,omitempty"`
	Repository string `json:"repository"`
	// SnapshotID is the Snapshot's spec.snapshotID.
	SnapshotID string      `json:"snapshotID,omitempty"`
	DeletedAt  metav1.Time `json:"deletedAt"`
	// Components are the Snapshot's components, by name.
	Components []ForgetComponent `json:"components,omitempty"`
}

// ForgetComponent is the restic data of one component of a Snapshot.
type ForgetComponent struct {
	Name string `json:"name"`
	// Path is the component's restic repository, relative to the
	// Repository's directory (status.components[name].path).
	Path string `json:"path,omitempty"`
	// ResticSnapshots are the ids of the component's restic snapshots
	// (status.components[name].resticStats[*].summary.id).
	ResticSnapshots []string `json:"resticSnapshots,omitempty"`
}

// ForgetKey returns the key of the forget mark of Snapshot name in the
// repository at repoPath.
func ForgetKey(repoPath, name string) (string, error) {
	dir, err := RepoDir(repoPath)
	if err != nil {
		return "", err
	}
	if name == "" || strings.ContainsAny(name, "/\\") || name == "." || name == ".." {
		return "", fmt.Errorf("snapshot name %q is not a valid file name", name)
	}
	return dir + "/" + ForgetDir + "/" + name + fileExt, nil
}

// ParseForgetKey is the inverse of ForgetKey; ok is false for any other key.
func ParseForgetKey(key string) (repoDir, name string, ok bool) {
	dir, file := path.Split(key)
	parent, sub := path.Split(strings.TrimSuffix(dir, "/"))
	repoDir = strings.TrimSuffix(parent, "/")
	name = strings.TrimSuffix(file, fileExt)
	if sub != ForgetDir || repoDir == "" || name == "" || !strings.HasSuffix(file, fileExt) {
		return "", "", false
	}
	return repoDir, name, true
}

// ListForgetMarks lists the forget marks of the repository at repoPath.
func ListForgetMarks(ctx context.Context, b backend.Backend, repoPath string) ([]backend.Object, error) {
	dir, err := RepoDir(repoPath)
	if err != nil {
		return nil, err
	}
	res, err := b.List(ctx, dir+"/"+ForgetDir+"/", backend.ListOptions{Delimiter: "/"})
	if err != nil {
		return nil, fmt.Errorf("list forget marks of %s: %w", dir, err)
	}
	out := res.Objects[:0]
	for _, o := range res.Objects {
		if _, _, ok := ParseForgetKey(o.Key); ok {
			out = append(out, o)
		}
	}
	return out, nil
}

// ReadForgetMark reads the mark at key; a missing one is backend.ErrNotFound.
// Like metadata.yaml it is read only up to MaxMetaSize, and its errors never
// quote it: anyone who can write into the bucket can plant one.
func ReadForgetMark(ctx context.Context, b backend.Backend, key string) (*ForgetMark, backend.Object, error) {
	data, obj, err := backend.GetLimit(ctx, b, key, MaxMetaSize)
	if err != nil {
		return nil, obj, err
	}
	var m ForgetMark
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, obj, fmt.Errorf("decode forget mark %s in %s: %s", key, b, DecodeErrorKind(err))
	}
	if m.Kind != ForgetKind {
		return nil, obj, fmt.Errorf("forget mark %s in %s: its kind is not %s", key, b, ForgetKind)
	}
	return &m, obj, nil
}

// maxMarkAttempts bounds the retries of a conditional write of a mark that
// others change at the same time.
const maxMarkAttempts = 10

// AddForgetMark records s in the forget mark of its name in the repository
// at repoPath and returns the mark's key. An entry of the same UID is
// replaced, others are kept: nothing another deletion asked for is lost.
func AddForgetMark(ctx context.Context, b backend.Backend, repoPath string, s ForgetSnapshot) (string, error) {
	key, err := ForgetKey(repoPath, s.Name)
	if err != nil {
		return "", err
	}
	err = updateForgetMark(ctx, b, key, func(m *ForgetMark) bool {
		kept := m.Snapshots[:0]
		for _, e := range m.Snapshots {
			if s.UID == "" || e.UID != s.UID {
				kept = append(kept, e)
			}
		}
		m.Snapshots = append(kept, s)
		return true
	})
	if err != nil {
		return "", fmt.Errorf("write forget mark %s in %s: %w", key, b, err)
	}
	return key, nil
}

// DropForgetEntry removes the entry of uid from the mark at key, and the
// mark when it has no entry left: for a deletion that did not happen after
// all, and for the controller once it has forgotten the data.
func DropForgetEntry(ctx context.Context, b backend.Backend, key, uid string) error {
	err := updateForgetMark(ctx, b, key, func(m *ForgetMark) bool {
		kept := m.Snapshots[:0]
		for _, e := range m.Snapshots {
			if e.UID != uid {
				kept = append(kept, e)
			}
		}
		changed := len(kept) != len(m.Snapshots)
		m.Snapshots = kept
		return changed
	})
	if errors.Is(err, backend.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update forget mark %s in %s: %w", key, b, err)
	}
	return nil
}

// updateForgetMark changes the mark at key with mutate (false: leave it),
// creating it if absent and removing it when it ends up empty, with
// conditional writes so that concurrent writers lose nothing.
func updateForgetMark(ctx context.Context, b backend.Backend, key string, mutate func(*ForgetMark) bool) error {
	for attempt := 1; ; attempt++ {
		m, obj, err := ReadForgetMark(ctx, b, key)
		exists := err == nil
		switch {
		case errors.Is(err, backend.ErrNotFound):
			m = &ForgetMark{}
		case err != nil:
			return err
		}
		if !mutate(m) {
			if !exists {
				return backend.ErrNotFound
			}
			return nil
		}
		if len(m.Snapshots) == 0 {
			if !exists {
				return nil
			}
			err = b.Delete(ctx, key, backend.DeleteOptions{IfMatch: obj.ETag})
		} else {
			m.APIVersion, m.Kind = ForgetAPIVersion, ForgetKind
			sort.SliceStable(m.Snapshots, func(i, j int) bool { return m.Snapshots[i].DeletedAt.Before(&m.Snapshots[j].DeletedAt) })
			var data []byte
			if data, err = yaml.Marshal(m); err != nil {
				return err
			}
			opts := backend.PutOptions{ContentType: "application/yaml", IfAbsent: !exists}
			if exists {
				opts.IfMatch = obj.ETag
			}
			_, err = b.Put(ctx, key, data, opts)
		}
		if (errors.Is(err, backend.ErrPreconditionFailed) || (exists && errors.Is(err, backend.ErrNotFound))) && attempt < maxMarkAttempts {
			continue // changed meanwhile: apply the change to the new state
		}
		return err
	}
}

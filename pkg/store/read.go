package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/storage"
)

// The messages etcd3 gives for reads older than its compaction; clients and
// tests recognise them.
const (
	expiredListMsg     = "The resourceVersion for the provided list is too old."
	expiredWatchMsg    = "The resourceVersion for the provided watch is too old."
	expiredContinueMsg = "The provided continue parameter is too old to display a consistent list result. " +
		"You can start a new list without the continue parameter."
	inconsistentContinueMsg = "The provided continue parameter is too old to display a consistent list result. " +
		"You can start a new list without the continue parameter, or use the continue token in this response to " +
		"retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - " +
		"objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list."
)

// Get implements storage.Interface, from the index. A resourceVersion is a
// lower bound, which the current state meets unless it is in the future.
func (s *Store) Get(ctx context.Context, key string, opts storage.GetOptions, out runtime.Object) error {
	key, err := s.prepareKey(key, false)
	if err != nil {
		return err
	}
	if err := s.waitReady(ctx); err != nil {
		return err
	}
	s.mu.RLock()
	cur, e := s.rv, s.idx.get(key)
	s.mu.RUnlock()
	if err := s.checkMinimumRV(opts.ResourceVersion, cur); err != nil {
		return err
	}
	if e == nil {
		if opts.IgnoreNotFound {
			return runtime.SetZeroValue(out)
		}
		return storage.NewKeyNotFoundError(key, 0)
	}
	return copyInto(out, e.obj)
}

// GetList implements storage.Interface, from the index, sorted by key. An
// exact resourceVersion (match=Exact, a continue token, or a limit with a
// version) is served from the event log if it is not older than the log;
// otherwise the current state is served.
func (s *Store) GetList(ctx context.Context, key string, opts storage.ListOptions, listObj runtime.Object) error {
	prefix, err := s.prepareKey(key, opts.Recursive)
	if err != nil {
		return err
	}
	listPtr, err := meta.GetItemsPtr(listObj)
	if err != nil {
		return err
	}
	v, err := conversion.EnforcePtr(listPtr)
	if err != nil || v.Kind() != reflect.Slice {
		return fmt.Errorf("need ptr to slice: %v", err)
	}
	withRev, continueKey, err := storage.ValidateListOptions(prefix, s.versioner, opts)
	if err != nil {
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			return err
		}
		// Such as an unknown resourceVersionMatch: the client's mistake.
		return apierrors.NewBadRequest(err.Error())
	}
	if err := s.waitReady(ctx); err != nil {
		return err
	}

	s.mu.RLock()
	atRV := s.rv
	if withRev > 0 {
		rv := uint64(withRev)
		switch {
		case rv > atRV:
			s.mu.RUnlock()
			return storage.NewTooLargeResourceVersionError(rv, atRV, 0)
		case rv < s.log.horizon, rv != atRV && !s.log.known(rv):
			s.mu.RUnlock()
			if continueKey != "" {
				return continueExpired(continueKey, prefix)
			}
			return apierrors.NewResourceExpired(expiredListMsg)
		}
		atRV = rv
	} else if err := s.checkMinimumRV(opts.ResourceVersion, atRV); err != nil {
		s.mu.RUnlock()
		return err
	}
	var entries []*entry
	if opts.Recursive {
		from := prefix
		if continueKey != "" {
			from = continueKey
		}
		entries = s.viewLocked(prefix, from, atRV)
	} else if e := s.entryAtLocked(prefix, atRV); e != nil {
		entries = []*entry{e}
	}
	s.mu.RUnlock()

	// Entries are immutable: filter and copy them without the lock. Like the
	// watch cache, a list gets shallow copies (maps and slices are shared
	// with the index), which the apiserver only reads and serializes; a deep
	// copy of each item would double the time of a large list.
	limit := opts.Predicate.Limit
	var lastKey string
	hasMore := false
	if v.Len() == 0 && opts.Predicate.Empty() && (limit == 0 || int64(len(entries)) < limit) {
		v.Set(reflect.MakeSlice(v.Type(), 0, len(entries)))
	}
	for _, e := range entries {
		if limit > 0 && int64(v.Len()) >= limit {
			hasMore = true
			break
		}
		lastKey = e.key
		if ok, err := opts.Predicate.Matches(e.obj); err == nil && ok {
			v.Set(reflect.Append(v, reflect.ValueOf(e.obj).Elem()))
		}
	}
	continueValue, remaining, err := storage.PrepareContinueToken(lastKey, prefix, int64(atRV), int64(len(entries)), hasMore, opts)
	if err != nil {
		return err
	}
	if v.IsNil() {
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
	}
	return s.versioner.UpdateList(listObj, atRV, continueValue, remaining)
}

// checkMinimumRV enforces "not older than": a version in the future is an
// error the client can retry.
func (s *Store) checkMinimumRV(resourceVersion string, current uint64) error {
	if resourceVersion == "" {
		return nil
	}
	rv, err := s.versioner.ParseResourceVersion(resourceVersion)
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid resource version: %v", err))
	}
	if rv > current {
		return storage.NewTooLargeResourceVersionError(rv, current, 0)
	}
	return nil
}

// viewLocked returns the entries under prefix, from key from on, in key
// order, as they were at rv (which is not older than the log's horizon).
func (s *Store) viewLocked(prefix, from string, rv uint64) []*entry {
	entries := s.idx.scan(prefix, from)
	if rv >= s.rv {
		return entries
	}
	old := s.log.stateAt(rv)
	if len(old) == 0 {
		return entries
	}
	start := prefix
	if from > start {
		start = from
	}
	out := make([]*entry, 0, len(entries))
	for _, e := range entries {
		if o, changed := old[e.key]; changed {
			if o != nil {
				out = append(out, o)
			}
			continue
		}
		out = append(out, e)
	}
	added := false
	for k, o := range old {
		// Deleted since rv: not in the index, but in the view.
		if o != nil && s.idx.get(k) == nil && k >= start && strings.HasPrefix(k, prefix) {
			out = append(out, o)
			added = true
		}
	}
	if added {
		sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	}
	return out
}

// entryAtLocked returns key's entry as it was at rv.
func (s *Store) entryAtLocked(key string, rv uint64) *entry {
	if rv < s.rv {
		if o, changed := s.log.stateAt(rv)[key]; changed {
			return o
		}
	}
	return s.idx.get(key)
}

// continueExpired is etcd3's answer to a continue token older than the
// history: a 410 carrying a token that continues at the current state.
func continueExpired(continueKey, prefix string) error {
	token, err := storage.EncodeContinue(continueKey, prefix, -1)
	if err != nil {
		utilruntime.HandleError(err)
		return apierrors.NewResourceExpired(expiredContinueMsg)
	}
	status := apierrors.NewResourceExpired(inconsistentContinueMsg)
	status.ErrStatus.ListMeta.Continue = token
	return status
}

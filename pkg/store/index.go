package store

import (
	"sort"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// entry is one indexed object. Entries are immutable once indexed: a change
// replaces the entry, so readers, watchers and the event log can share them
// without copying, and an old entry is the object's state at an older
// resourceVersion.
type entry struct {
	key  string
	obj  runtime.Object // decoded, with metadata.resourceVersion = rv
	rv   uint64
	loc  Location
	etag string
	size int64 // bytes of the file, for Stats
	// canonical: the file is where the object is written (see
	// CanonicalAdmitter); it wins over a copy elsewhere.
	canonical bool
}

// fileState is what the store knows of one file of a storage, indexed or not,
// so that a poll reads only what changed.
type fileState struct {
	etag string
	// key is the registry key the file is served under; "" when it is
	// skipped (corrupt, foreign, refused or a duplicate).
	key string
	// dupOf is the registry key the file claims while another file serves
	// it; the file is read again when that key becomes free.
	dupOf string
	// seq is the store's change sequence when this state was recorded, so
	// that a poll does not act on a listing older than the state.
	seq uint64
}

// index maps registry keys to entries and keeps the keys sorted for lists.
type index struct {
	items map[string]*entry
	keys  []string // sorted
}

func newIndex() index { return index{items: map[string]*entry{}} }

func (ix *index) get(key string) *entry { return ix.items[key] }

func (ix *index) len() int { return len(ix.items) }

// put stores e and returns the entry it replaces, if any.
func (ix *index) put(e *entry) *entry {
	prev := ix.items[e.key]
	ix.items[e.key] = e
	if prev == nil {
		i := sort.SearchStrings(ix.keys, e.key)
		ix.keys = append(ix.keys, "")
		copy(ix.keys[i+1:], ix.keys[i:])
		ix.keys[i] = e.key
	}
	return prev
}

// remove drops key and returns its entry, if any.
func (ix *index) remove(key string) *entry {
	prev := ix.items[key]
	if prev == nil {
		return nil
	}
	delete(ix.items, key)
	i := sort.SearchStrings(ix.keys, key)
	copy(ix.keys[i:], ix.keys[i+1:])
	ix.keys[len(ix.keys)-1] = ""
	ix.keys = ix.keys[:len(ix.keys)-1]
	return prev
}

// scan returns the current entries whose keys start with prefix and are not
// before from, in key order.
func (ix *index) scan(prefix, from string) []*entry {
	start := prefix
	if from > start {
		start = from
	}
	var out []*entry
	for i := sort.SearchStrings(ix.keys, start); i < len(ix.keys) && strings.HasPrefix(ix.keys[i], prefix); i++ {
		out = append(out, ix.items[ix.keys[i]])
	}
	return out
}

// event is one change of one key, in the order of resourceVersions.
type event struct {
	rv   uint64
	typ  watch.EventType // Added, Modified or Deleted
	key  string
	cur  *entry // the state after the change; nil for Deleted
	prev *entry // the state before; nil for Added
	// obj is what a watcher gets: cur.obj, or for Deleted the last state
	// with the delete's resourceVersion (as etcd3 does).
	obj runtime.Object

	// size is the file bytes of the objects this event keeps alive.
	size int64

	// prevAtRV is prev.obj with this event's resourceVersion, made on first
	// use: watchers whose selector the object leaves get it as Deleted.
	prevOnce sync.Once
	prevAtRV runtime.Object
}

// eventLog is the bounded, in-memory history of changes. Together with the
// index it can rebuild the state at any resourceVersion from horizon on: a
// watch or an exact read older than horizon gets 410 Gone.
type eventLog struct {
	events []*event // rv ascending, all > horizon
	// horizon is the oldest resourceVersion whose state can be rebuilt.
	horizon uint64
	// compacted is the newest resourceVersion whose history was dropped; 0
	// until the log first dropped something.
	compacted uint64
	// marks are the versions newer than horizon this store gave out with
	// no event of their own (ascending); see known.
	marks []uint64
	max   int
	// bytes is the sum of the events' sizes, at most maxBytes (if > 0)
	// after every append: a few big objects edited often must not hold
	// their every version in memory.
	bytes, maxBytes int64
}

func (l *eventLog) append(e *event) {
	l.events = append(l.events, e)
	l.bytes += e.size
	// n is how many of the oldest events go so that both bounds hold.
	n, b := 0, l.bytes
	for n < len(l.events) && (len(l.events)-n > l.max || (l.maxBytes > 0 && b > l.maxBytes)) {
		b -= l.events[n].size
		n++
	}
	if n > 0 {
		l.dropThrough(l.events[n-1].rv)
	}
}

// dropThrough forgets the events up to and including rv: from then on the
// oldest state the log can rebuild is the one at rv.
func (l *eventLog) dropThrough(rv uint64) {
	if rv <= l.horizon {
		return
	}
	n := sort.Search(len(l.events), func(i int) bool { return l.events[i].rv > rv })
	for i := 0; i < n; i++ {
		l.bytes -= l.events[i].size
		l.events[i] = nil // let the old states go
	}
	l.events = l.events[n:]
	m := sort.Search(len(l.marks), func(i int) bool { return l.marks[i] > rv })
	l.marks = l.marks[m:]
	l.horizon = rv
	l.compacted = rv
}

// mark records a version given out with no event (a store's first, or one
// advanced without a change), so that known holds for it.
func (l *eventLog) mark(rv uint64) {
	if rv > l.horizon {
		l.marks = append(l.marks, rv)
	}
}

// known reports whether rv, not older than horizon, is a version this
// store gave out: its horizon, an event's or a mark. Versions are this
// process's own (the time in microseconds when it made them), so one that
// is not known came from elsewhere, such as another replica of the catalog
// server or an earlier run of this one. The state at such a version was
// never this store's: a watch or an exact list from it gets 410 Gone and
// its client relists, instead of events skipped or repeated.
func (l *eventLog) known(rv uint64) bool {
	if rv == l.horizon {
		return true
	}
	i := sort.Search(len(l.events), func(i int) bool { return l.events[i].rv >= rv })
	if i < len(l.events) && l.events[i].rv == rv {
		return true
	}
	j := sort.Search(len(l.marks), func(i int) bool { return l.marks[i] >= rv })
	return j < len(l.marks) && l.marks[j] == rv
}

// after returns up to limit events newer than rv.
func (l *eventLog) after(rv uint64, limit int) []*event {
	i := sort.Search(len(l.events), func(i int) bool { return l.events[i].rv > rv })
	j := len(l.events)
	if limit > 0 && j-i > limit {
		j = i + limit
	}
	if i == j {
		return nil
	}
	return append([]*event(nil), l.events[i:j]...)
}

// stateAt returns, for every key changed after rv, its entry at rv (nil if it
// did not exist then). Keys not in the map are as in the index.
func (l *eventLog) stateAt(rv uint64) map[string]*entry {
	old := map[string]*entry{}
	// Newest first: the last write wins, and that is the prev of the first
	// change after rv, which is the state at rv.
	for i := len(l.events) - 1; i >= 0 && l.events[i].rv > rv; i-- {
		old[l.events[i].key] = l.events[i].prev
	}
	return old
}

package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/storage"
	utilflowcontrol "k8s.io/apiserver/pkg/util/flowcontrol"
)

const (
	// watchResultBuffer is the room between a watcher and its client; a
	// client that does not read blocks only its own watcher, never a writer.
	watchResultBuffer = 100
	// watchBatch bounds the events a watcher takes from the log at a time,
	// so a slow one holds on to little of a log that has moved on.
	watchBatch = 100
	// bookmarkBeforeDeadline is how long before its context's deadline a
	// watcher sends a bookmark, so that its client resumes without a relist.
	bookmarkBeforeDeadline = 2 * time.Second
)

// watcher follows the event log from its cursor and sends what its key and
// predicate select. It pulls from the log, so writers never wait for it; one
// that falls behind the log's horizon is closed with 410 Gone, and its client
// relists.
type watcher struct {
	s          *Store
	key        string
	recursive  bool
	pred       storage.SelectionPredicate
	everything bool
	bookmarks  bool
	// initial events (ADDED for the state at cursor) and whether they end
	// with the annotated bookmark (WatchList).
	initial     []*entry
	endBookmark bool
	cursor      uint64          // every event up to this version was handled
	notify      <-chan struct{} // closed at the first change after the last drain
	deadline    time.Time
	result      chan watch.Event
	ctx         context.Context
	cancel      context.CancelFunc
}

// Watch implements storage.Interface with etcd3's semantics:
//   - resourceVersion "" or "0" without sendInitialEvents: the current state
//     as ADDED events, then the changes;
//   - sendInitialEvents=true: the current state (not older than the given
//     version) as ADDED events, then, with allowWatchBookmarks, a bookmark
//     annotated k8s.io/initial-events-end, then the changes;
//   - sendInitialEvents=false: the changes after the given version, or after
//     the current one for "" and "0";
//   - any other version: the changes after it; older than the event log: an
//     ERROR event with 410 Gone; newer than the store: an error.
func (s *Store) Watch(ctx context.Context, key string, opts storage.ListOptions) (watch.Interface, error) {
	key, err := s.prepareKey(key, opts.Recursive)
	if err != nil {
		return nil, err
	}
	rv, err := s.versioner.ParseResourceVersion(opts.ResourceVersion)
	if err != nil {
		// The client's mistake: 400, not the 500 a bare storage error is.
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid resource version: %v", err))
	}
	if !s.Ready() {
		if err := s.waitReady(ctx); err != nil {
			if ctx.Err() != nil {
				return watch.NewEmptyWatch(), nil
			}
			return nil, err
		}
	}
	sendInitial := (opts.SendInitialEvents == nil && rv == 0) || (opts.SendInitialEvents != nil && *opts.SendInitialEvents)
	w := &watcher{
		s:           s,
		key:         key,
		recursive:   opts.Recursive,
		pred:        opts.Predicate,
		everything:  opts.Predicate.Empty(),
		bookmarks:   opts.Predicate.AllowWatchBookmarks || opts.ProgressNotify,
		endBookmark: opts.SendInitialEvents != nil && *opts.SendInitialEvents && opts.Predicate.AllowWatchBookmarks,
		result:      make(chan watch.Event, watchResultBuffer),
	}
	if dl, ok := ctx.Deadline(); ok {
		w.deadline = dl
	}

	s.mu.RLock()
	current := s.rv
	if rv > current {
		s.mu.RUnlock()
		return nil, storage.NewTooLargeResourceVersionError(rv, current, 1)
	}
	switch {
	case sendInitial:
		w.cursor = current
		if opts.Recursive {
			w.initial = s.idx.scan(key, "")
		} else if e := s.idx.get(key); e != nil {
			w.initial = []*entry{e}
		}
	case rv == 0:
		w.cursor = current
	case rv != current && !s.log.known(rv):
		// Not a version of this store's: 410 Gone at the first drain,
		// as for one older than the log.
		w.cursor = 0
	default:
		w.cursor = rv
	}
	s.mu.RUnlock()

	w.ctx, w.cancel = context.WithCancel(ctx)
	go w.run()
	// The watcher is established: flow control may count it as such.
	utilflowcontrol.WatchInitialized(ctx)
	return w, nil
}

// Stop implements watch.Interface.
func (w *watcher) Stop() { w.cancel() }

// ResultChan implements watch.Interface.
func (w *watcher) ResultChan() <-chan watch.Event { return w.result }

func (w *watcher) run() {
	defer close(w.result)
	defer w.cancel()
	s := w.s

	for _, e := range w.initial {
		if w.matches(e.obj) && !w.send(watch.Event{Type: watch.Added, Object: e.obj}) {
			return
		}
	}
	w.initial = nil
	if w.endBookmark && !w.sendBookmark(true) {
		return
	}

	// A nil tick never fires: no bookmarks unless asked for.
	var tick <-chan time.Time
	var timer *time.Timer
	if w.bookmarks {
		timer = time.NewTimer(w.nextBookmarkIn())
		defer timer.Stop()
		tick = timer.C
	}
	for {
		if !w.drain() {
			return
		}
		select {
		case <-tick:
			if !w.sendBookmark(false) {
				return
			}
			timer.Reset(w.nextBookmarkIn())
		case <-w.notify:
		case <-w.ctx.Done():
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// drain sends every logged event after the cursor; false ends the watch.
func (w *watcher) drain() bool {
	s := w.s
	for {
		s.mu.RLock()
		if w.cursor < s.log.horizon {
			s.mu.RUnlock()
			terminatedWatchers.WithLabelValues(s.cfg.Resource).Inc()
			w.sendError(apierrors.NewResourceExpired(expiredWatchMsg))
			return false
		}
		evs := s.log.after(w.cursor, watchBatch)
		seen := s.rv
		if len(evs) == watchBatch {
			seen = evs[len(evs)-1].rv
		}
		w.notify = s.notify
		s.mu.RUnlock()

		for _, ev := range evs {
			if out, ok := w.convert(ev); ok && !w.send(out) {
				return false
			}
		}
		w.cursor = seen
		if len(evs) < watchBatch {
			return true
		}
	}
}

// convert turns an event into what this watcher sends, if anything: a change
// that moves an object out of the predicate is a DELETED, into it an ADDED.
func (w *watcher) convert(ev *event) (watch.Event, bool) {
	if w.recursive {
		if !strings.HasPrefix(ev.key, w.key) {
			return watch.Event{}, false
		}
	} else if ev.key != w.key {
		return watch.Event{}, false
	}
	switch ev.typ {
	case watch.Added:
		return watch.Event{Type: watch.Added, Object: ev.obj}, w.matches(ev.cur.obj)
	case watch.Deleted:
		return watch.Event{Type: watch.Deleted, Object: ev.obj}, w.matches(ev.prev.obj)
	}
	if w.everything {
		return watch.Event{Type: watch.Modified, Object: ev.obj}, true
	}
	cur, prev := w.matches(ev.cur.obj), w.matches(ev.prev.obj)
	switch {
	case cur && prev:
		return watch.Event{Type: watch.Modified, Object: ev.obj}, true
	case cur:
		return watch.Event{Type: watch.Added, Object: ev.obj}, true
	case prev:
		return watch.Event{Type: watch.Deleted, Object: w.s.prevAtRV(ev)}, true
	}
	return watch.Event{}, false
}

func (w *watcher) matches(obj runtime.Object) bool {
	if w.everything {
		return true
	}
	ok, err := w.pred.Matches(obj)
	return err == nil && ok
}

// prevAtRV is the object's last state before ev with ev's version: what a
// watcher whose selector the object left gets, as from etcd3.
func (s *Store) prevAtRV(ev *event) runtime.Object {
	ev.prevOnce.Do(func() {
		obj := ev.prev.obj.DeepCopyObject()
		_ = s.versioner.UpdateObject(obj, ev.rv)
		ev.prevAtRV = obj
	})
	return ev.prevAtRV
}

func (w *watcher) send(ev watch.Event) bool {
	select {
	case w.result <- ev:
		return true
	case <-w.ctx.Done():
		return false
	case <-w.s.ctx.Done():
		return false
	}
}

// sendBookmark sends the cursor as a bookmark: an empty object of the
// resource with only a resourceVersion (and, at the end of the initial
// events, the k8s.io/initial-events-end annotation).
func (w *watcher) sendBookmark(initialEventsEnd bool) bool {
	obj := w.s.cfg.NewFunc()
	if err := w.s.versioner.UpdateObject(obj, w.cursor); err != nil {
		w.sendError(apierrors.NewInternalError(err))
		return false
	}
	if initialEventsEnd {
		if err := storage.AnnotateInitialEventsEndBookmark(obj); err != nil {
			w.sendError(apierrors.NewInternalError(err))
			return false
		}
	}
	return w.send(watch.Event{Type: watch.Bookmark, Object: obj})
}

func (w *watcher) sendError(err *apierrors.StatusError) {
	status := err.Status()
	w.send(watch.Event{Type: watch.Error, Object: &status})
}

// nextBookmarkIn is the time to the next bookmark: the interval, or earlier
// to make one shortly before the context's deadline.
func (w *watcher) nextBookmarkIn() time.Duration {
	d := w.s.cfg.BookmarkInterval
	if !w.deadline.IsZero() {
		if until := time.Until(w.deadline) - bookmarkBeforeDeadline; until > 0 && until < d {
			d = until
		}
	}
	return d
}

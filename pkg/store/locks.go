package store

import "sync"

// keyedMutex holds one mutex per key, created on demand and dropped when
// nobody holds or waits for it.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*refMutex
}

type refMutex struct {
	sync.Mutex
	refs int
}

// lock locks key and returns its unlock.
func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*refMutex{}
	}
	m := k.m[key]
	if m == nil {
		m = &refMutex{}
		k.m[key] = m
	}
	m.refs++
	k.mu.Unlock()

	m.Lock()
	return func() {
		m.Unlock()
		k.mu.Lock()
		m.refs--
		if m.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

package devicekit

import "container/list"

// lru is a map of at most cap entries that forgets the least recently used
// one to make room. It is not safe for concurrent use.
type lru[K comparable, V any] struct {
	cap   int
	order *list.List // of *lruEntry; front is the most recently used
	items map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](capacity int) *lru[K, V] {
	return &lru[K, V]{cap: max(capacity, 1), order: list.New(), items: make(map[K]*list.Element)}
}

// get returns the value of k and marks it used.
func (l *lru[K, V]) get(k K) (V, bool) {
	el, ok := l.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	l.order.MoveToFront(el)
	return el.Value.(*lruEntry[K, V]).val, true
}

// put sets the value of k, evicting the least recently used entry when full.
func (l *lru[K, V]) put(k K, v V) {
	if el, ok := l.items[k]; ok {
		el.Value.(*lruEntry[K, V]).val = v
		l.order.MoveToFront(el)
		return
	}
	if l.order.Len() >= l.cap {
		oldest := l.order.Back()
		l.order.Remove(oldest)
		delete(l.items, oldest.Value.(*lruEntry[K, V]).key)
	}
	l.items[k] = l.order.PushFront(&lruEntry[K, V]{key: k, val: v})
}

// len returns the number of entries.
func (l *lru[K, V]) len() int { return l.order.Len() }

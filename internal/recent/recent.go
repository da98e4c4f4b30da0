// Package recent remembers the most recent keys of a bounded set, such as
// the IDs of commands already handed out.
package recent

// Set holds at most the n most recently added keys. The zero value holds
// none; make one with New. A Set is not safe for concurrent use.
type Set[K comparable] struct {
	n     int
	keys  map[K]struct{}
	order []K // oldest first
}

// New returns a Set of at most n keys.
func New[K comparable](n int) *Set[K] {
	return &Set[K]{n: n, keys: make(map[K]struct{}, n)}
}

// Add adds k, forgetting the oldest key beyond the bound. Adding a key
// the set holds changes nothing.
func (s *Set[K]) Add(k K) {
	if _, ok := s.keys[k]; ok {
		return
	}
	s.keys[k] = struct{}{}
	s.order = append(s.order, k)
	if len(s.order) > s.n {
		delete(s.keys, s.order[0])
		s.order = s.order[1:]
	}
}

// Has reports whether the set holds k.
func (s *Set[K]) Has(k K) bool {
	_, ok := s.keys[k]
	return ok
}

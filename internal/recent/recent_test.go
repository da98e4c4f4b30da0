package recent

import "testing"

func TestSetForgetsOldest(t *testing.T) {
	s := New[int](3)
	for _, k := range []int{1, 2, 3, 2, 4} {
		s.Add(k)
	}
	for k, want := range map[int]bool{1: false, 2: true, 3: true, 4: true, 5: false} {
		if got := s.Has(k); got != want {
			t.Errorf("Has(%d) = %v, want %v", k, got, want)
		}
	}
	s.Add(5)
	if s.Has(2) || !s.Has(5) {
		t.Errorf("after Add(5): Has(2) %v, Has(5) %v", s.Has(2), s.Has(5))
	}
}

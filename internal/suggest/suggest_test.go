package suggest

import "testing"

func TestDidYouMean(t *testing.T) {
	known := []string{"holder", "state", "valid_from", "valid_until"}
	for _, tc := range []struct{ name, want string }{
		{"holdr", ` (did you mean "holder"?)`},
		{"HOLDER", ` (did you mean "holder"?)`},
		{"valid_untl", ` (did you mean "valid_until"?)`},
		{"colour", ""},
		{"", ""},
	} {
		if got := DidYouMean(tc.name, known); got != tc.want {
			t.Errorf("DidYouMean(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

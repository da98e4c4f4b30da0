package devicetest

import "testing"

func TestSubjectMatches(t *testing.T) {
	tests := []struct {
		filter, subject string
		want            bool
	}{
		{">", "acme.hq.reader.r1.evt", true},
		{"acme.hq.reader.r1.evt", "acme.hq.reader.r1.evt", true},
		{"acme.hq.reader.r1.evt", "acme.hq.reader.r1.tlm", false},
		{"acme.hq.*.*.evt", "acme.hq.reader.r1.evt", true},
		{"acme.hq.*.*.evt", "acme.hq.reader.r1", false},
		{"acme.>", "acme.hq.reader.r1.evt", true},
		{"acme.>", "acme", false},
		{"acme.hq.*", "acme.hq.reader.r1.evt", false},
		{"acme.hq.reader.r1.evt", "acme.hq.reader.r1.evt.x", false},
	}
	for _, tt := range tests {
		if got := subjectMatches(tt.filter, tt.subject); got != tt.want {
			t.Errorf("subjectMatches(%q, %q) = %t, want %t", tt.filter, tt.subject, got, tt.want)
		}
	}
}

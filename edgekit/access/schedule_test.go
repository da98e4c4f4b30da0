package access_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST tests must not depend on the machine's zoneinfo

	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/topic"
)

// loadLocation loads a time zone or fails the test.
func loadLocation(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

// mustSchedule parses a schedule or fails the test.
func mustSchedule(t testing.TB, name, data string) *access.Schedule {
	t.Helper()
	s, err := access.ParseSchedule(name, []byte(data))
	if err != nil {
		t.Fatalf("ParseSchedule(%s): %v", data, err)
	}
	return s
}

func TestParseSchedule(t *testing.T) {
	s := mustSchedule(t, "office", `{"intervals": [
		{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "until": "18:00"},
		{"days": ["sat"], "from": "22:00", "until": "06:00"},
		{"days": ["sun"], "from": "00:00", "until": "24:00"}]}`)
	if s.Name != "office" || len(s.Intervals) != 3 {
		t.Fatalf("ParseSchedule = %+v", s)
	}
	if iv := s.Intervals[1]; !reflect.DeepEqual(iv.Days, []string{"sat"}) || iv.From != "22:00" || iv.Until != "06:00" {
		t.Errorf("Intervals[1] = %+v", iv)
	}
	data, err := s.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	want := `{"intervals":[{"days":["mon","tue","wed","thu","fri"],"from":"08:00","until":"18:00"},` +
		`{"days":["sat"],"from":"22:00","until":"06:00"},{"days":["sun"],"from":"00:00","until":"24:00"}]}`
	if string(data) != want {
		t.Errorf("Marshal =\n%s, want\n%s", data, want)
	}
	never := mustSchedule(t, "closed", `{"intervals": []}`)
	if never.Allows(time.Now(), nil) {
		t.Error("a schedule without intervals allows")
	}
	if data, _ := (&access.Schedule{Name: "closed"}).Marshal(); string(data) != `{"intervals":[]}` {
		t.Errorf("Marshal(no intervals) = %s", data)
	}
}

func TestParseScheduleErrors(t *testing.T) {
	iv := func(days, from, until string) string {
		return fmt.Sprintf(`{"intervals":[{"days":["mon"],"from":"08:00","until":"09:00"},{"days":%s,"from":%q,"until":%q}]}`, days, from, until)
	}
	tests := []struct {
		name, schedule, data, field string
		sentinel                    error
	}{
		{"hour 25", "s", iv(`["mon"]`, "25:00", "26:00"), "intervals[1].from", access.ErrInvalid},
		{"until 25:00", "s", iv(`["mon"]`, "08:00", "25:00"), "intervals[1].until", access.ErrInvalid},
		{"from 24:00", "s", iv(`["mon"]`, "24:00", "08:00"), "intervals[1].from", access.ErrInvalid},
		{"until 24:01", "s", iv(`["mon"]`, "08:00", "24:01"), "intervals[1].until", access.ErrInvalid},
		{"minute 60", "s", iv(`["mon"]`, "08:60", "09:00"), "intervals[1].from", access.ErrInvalid},
		{"one-digit hour", "s", iv(`["mon"]`, "8:00", "09:00"), "intervals[1].from", access.ErrInvalid},
		{"seconds", "s", iv(`["mon"]`, "08:00:00", "09:00"), "intervals[1].from", access.ErrInvalid},
		{"sign", "s", iv(`["mon"]`, "+8:00", "09:00"), "intervals[1].from", access.ErrInvalid},
		{"empty until", "s", iv(`["mon"]`, "08:00", ""), "intervals[1].until", access.ErrInvalid},
		{"from equals until", "s", iv(`["mon"]`, "08:00", "08:00"), "intervals[1].until", access.ErrInvalid},
		{"midnight to midnight", "s", iv(`["mon"]`, "00:00", "00:00"), "intervals[1].until", access.ErrInvalid},
		{"day in caps", "s", iv(`["Mon"]`, "08:00", "09:00"), "intervals[1].days[0]", access.ErrInvalid},
		{"day spelt out", "s", iv(`["mon","tuesday"]`, "08:00", "09:00"), "intervals[1].days[1]", access.ErrInvalid},
		{"day twice", "s", iv(`["mon","sun","mon"]`, "08:00", "09:00"), "intervals[1].days[2]", access.ErrInvalid},
		{"no days", "s", iv(`[]`, "08:00", "09:00"), "intervals[1].days", access.ErrInvalid},
		{"days missing", "s", `{"intervals":[{"from":"08:00","until":"09:00"}]}`, "intervals[0].days", access.ErrInvalid},
		{"day number", "s", iv(`[1]`, "08:00", "09:00"), "intervals[1].days[0]", access.ErrMalformed},
		{"from number", "s", `{"intervals":[{"days":["mon"],"from":800,"until":"09:00"}]}`, "intervals[0].from", access.ErrMalformed},
		{"intervals object", "s", `{"intervals":{}}`, "intervals", access.ErrMalformed},
		{"interval string", "s", `{"intervals":["mon 08:00-09:00"]}`, "intervals[0]", access.ErrMalformed},
		{"unknown interval key", "s", `{"intervals":[{"days":["mon"],"from":"08:00","to":"09:00"}]}`, "intervals[0].to", access.ErrUnknownField},
		{"unknown key", "s", `{"interval":[]}`, "interval", access.ErrUnknownField},
		{"duplicate interval key", "s", `{"intervals":[{"days":["mon"],"from":"08:00","from":"07:00","until":"09:00"}]}`, "intervals[0].from", access.ErrMalformed},
		{"trailing", "s", `{"intervals":[]},`, "", access.ErrMalformed},
		{"bad name", "s.1", `{"intervals":[]}`, "", access.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := access.ParseSchedule(tt.schedule, []byte(tt.data))
			if s != nil {
				t.Errorf("ParseSchedule returned %+v with the error", s)
			}
			if fe := wantFieldError(t, err, "schedule", tt.field, tt.sentinel); fe.Name != tt.schedule {
				t.Errorf("Name = %q, want %q", fe.Name, tt.schedule)
			}
		})
	}
	_, err := access.ParseSchedule("a b", []byte(`{"intervals":[]}`))
	if !errors.Is(err, topic.ErrInvalidChar) {
		t.Errorf("bad name: error %v does not wrap the topic error", err)
	}
}

// at returns the instant of wall-clock time y-m-d h:min in loc; for an
// ambiguous time, the first of the two.
func at(loc *time.Location, y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, loc)
}

func utc(y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, time.UTC)
}

func TestScheduleAllows(t *testing.T) {
	loc := loadLocation(t, "Europe/Berlin")
	s := mustSchedule(t, "mixed", `{"intervals": [
		{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "until": "18:00"},
		{"days": ["fri"], "from": "22:00", "until": "02:00"},
		{"days": ["sun"], "from": "23:00", "until": "01:00"},
		{"days": ["sat"], "from": "20:00", "until": "24:00"}]}`)
	// 2026-06-08 is a Monday; Berlin is UTC+2 in June.
	tests := []struct {
		name string
		t    time.Time
		want bool
	}{
		{"weekday from, inclusive", at(loc, 2026, 6, 8, 8, 0), true},
		{"weekday a nanosecond before from", at(loc, 2026, 6, 8, 8, 0).Add(-time.Nanosecond), false},
		{"weekday last instant", at(loc, 2026, 6, 8, 18, 0).Add(-time.Nanosecond), true},
		{"weekday until, exclusive", at(loc, 2026, 6, 8, 18, 0), false},
		{"saturday daytime", at(loc, 2026, 6, 13, 10, 0), false},
		{"friday night", at(loc, 2026, 6, 12, 23, 30), true},
		{"saturday small hours, from friday", at(loc, 2026, 6, 13, 1, 59), true},
		{"saturday until, exclusive", at(loc, 2026, 6, 13, 2, 0), false},
		{"thursday small hours: no interval from wednesday", at(loc, 2026, 6, 11, 1, 0), false},
		{"sunday night", at(loc, 2026, 6, 14, 23, 0), true},
		{"monday small hours, from sunday (week wraps)", at(loc, 2026, 6, 15, 0, 59), true},
		{"monday 01:00", at(loc, 2026, 6, 15, 1, 0), false},
		{"saturday to 24:00", at(loc, 2026, 6, 13, 23, 59), true},
		{"24:00 ends at midnight", at(loc, 2026, 6, 14, 0, 0), false},
		{"same instant in UTC is read in loc", utc(2026, 6, 8, 6, 0), true},
		{"UTC instant before from in loc", utc(2026, 6, 8, 5, 59), false},
	}
	for _, tt := range tests {
		if got := s.Allows(tt.t, loc); got != tt.want {
			t.Errorf("%s: Allows(%v) = %v, want %v", tt.name, tt.t.In(loc), got, tt.want)
		}
	}
	// A nil location is UTC.
	if !s.Allows(utc(2026, 6, 8, 17, 59), nil) || s.Allows(utc(2026, 6, 8, 18, 0), nil) {
		t.Error("Allows with a nil location does not read UTC")
	}
	var none *access.Schedule
	if none.Allows(utc(2026, 6, 8, 10, 0), nil) {
		t.Error("a nil schedule allows")
	}
}

func TestScheduleAllowsUnvalidated(t *testing.T) {
	// Built by hand and never validated: Allows parses on the fly.
	s := &access.Schedule{Name: "hand", Intervals: []access.Interval{
		{Days: []string{"mon"}, From: "08:00", Until: "09:00"},
		{Days: []string{"tue"}, From: "25:00", Until: "26:00"}, // invalid: never allows
		{Days: []string{"wed"}, From: "10:00", Until: "10:00"}, // invalid: never allows
	}}
	if !s.Allows(utc(2026, 6, 8, 8, 30), nil) {
		t.Error("an unvalidated schedule does not allow inside its interval")
	}
	if s.Allows(utc(2026, 6, 8, 9, 0), nil) {
		t.Error("an unvalidated schedule allows at until")
	}
	for h := range 24 {
		if s.Allows(utc(2026, 6, 9, h, 0), nil) || s.Allows(utc(2026, 6, 10, h, 0), nil) {
			t.Fatalf("an invalid interval allows at %02d:00", h)
		}
	}
	if err := s.Validate(); err == nil {
		t.Error("Validate accepted an invalid interval")
	}
	// Validated after a change, Allows sees the change.
	s.Intervals = s.Intervals[:1]
	s.Intervals[0].From, s.Intervals[0].Until = "12:00", "13:00"
	if err := s.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if s.Allows(utc(2026, 6, 8, 8, 30), nil) || !s.Allows(utc(2026, 6, 8, 12, 30), nil) {
		t.Error("Allows does not follow the revalidated interval")
	}
}

func TestScheduleAllowsDoesNotAllocate(t *testing.T) {
	loc := loadLocation(t, "America/New_York")
	s := mustSchedule(t, "office", `{"intervals":[{"days":["mon","tue","wed","thu","fri"],"from":"08:00","until":"18:00"},{"days":["sat"],"from":"22:00","until":"06:00"}]}`)
	now := utc(2026, 6, 13, 12, 0)
	if n := testing.AllocsPerRun(100, func() { s.Allows(now, loc) }); n != 0 {
		t.Errorf("Allows allocates %v times per call", n)
	}
}

// TestScheduleDST walks each day (or night) minute by minute in real time
// and counts the minutes the schedule allows, then checks the instants
// around each boundary. Intervals are wall-clock times, so the skipped hour
// of spring never occurs and the repeated hour of autumn occurs twice.
func TestScheduleDST(t *testing.T) {
	ny := loadLocation(t, "America/New_York")
	berlin := loadLocation(t, "Europe/Berlin")
	type check struct {
		t    time.Time
		want bool
	}
	tests := []struct {
		name       string
		loc        *time.Location
		interval   string
		start, end time.Time // real-time window to count over
		minutes    int       // allowed real minutes in the window
		checks     []check
	}{
		{
			name: "New York spring forward: the skipped hour never happens", loc: ny,
			interval: `{"days":["sun"],"from":"02:00","until":"03:00"}`,
			start:    at(ny, 2026, 3, 8, 0, 0), end: at(ny, 2026, 3, 9, 0, 0), minutes: 0,
			checks: []check{{utc(2026, 3, 8, 6, 59), false}, {utc(2026, 3, 8, 7, 0), false}},
		},
		{
			name: "New York spring forward: 08:00-18:00 is the wall-clock hours after the change", loc: ny,
			interval: `{"days":["sun"],"from":"08:00","until":"18:00"}`,
			start:    at(ny, 2026, 3, 8, 0, 0), end: at(ny, 2026, 3, 9, 0, 0), minutes: 600,
			checks: []check{{utc(2026, 3, 8, 11, 59), false}, {utc(2026, 3, 8, 12, 0), true}, // 08:00 EDT
				{utc(2026, 3, 8, 21, 59), true}, {utc(2026, 3, 8, 22, 0), false}},
		},
		{
			name: "New York spring forward: 01:00-03:00 spans the skipped hour, one real hour", loc: ny,
			interval: `{"days":["sun"],"from":"01:00","until":"03:00"}`,
			start:    at(ny, 2026, 3, 8, 0, 0), end: at(ny, 2026, 3, 9, 0, 0), minutes: 60,
			checks: []check{{utc(2026, 3, 8, 5, 59), false}, {utc(2026, 3, 8, 6, 0), true}, // 01:00 EST
				{utc(2026, 3, 8, 6, 59), true}, {utc(2026, 3, 8, 7, 0), false}}, // 01:59 EST, then 03:00 EDT
		},
		{
			name: "New York fall back: the repeated hour is allowed twice", loc: ny,
			interval: `{"days":["sun"],"from":"01:00","until":"02:00"}`,
			start:    at(ny, 2026, 11, 1, 0, 0), end: at(ny, 2026, 11, 2, 0, 0), minutes: 120,
			checks: []check{{utc(2026, 11, 1, 4, 59), false}, {utc(2026, 11, 1, 5, 0), true}, // 01:00 EDT
				{utc(2026, 11, 1, 5, 59), true}, {utc(2026, 11, 1, 6, 0), true}, // 01:59 EDT, 01:00 EST
				{utc(2026, 11, 1, 6, 59), true}, {utc(2026, 11, 1, 7, 0), false}}, // 01:59 EST, 02:00 EST
		},
		{
			name: "New York fall back: a whole day is 25 real hours", loc: ny,
			interval: `{"days":["sun"],"from":"00:00","until":"24:00"}`,
			start:    at(ny, 2026, 10, 31, 12, 0), end: at(ny, 2026, 11, 2, 12, 0), minutes: 25 * 60,
			checks: []check{{utc(2026, 11, 1, 3, 59), false}, {utc(2026, 11, 1, 4, 0), true}, // 00:00 EDT
				{utc(2026, 11, 2, 4, 59), true}, {utc(2026, 11, 2, 5, 0), false}}, // 23:59 EST, 24:00
		},
		{
			name: "New York fall back: overnight interval ending inside the repeated hour", loc: ny,
			// 23:00 EDT to 01:30 EDT, then again 01:00 EST to 01:30 EST.
			interval: `{"days":["sat"],"from":"23:00","until":"01:30"}`,
			start:    at(ny, 2026, 10, 31, 12, 0), end: at(ny, 2026, 11, 1, 12, 0), minutes: 150 + 30,
			checks: []check{{utc(2026, 11, 1, 2, 59), false}, {utc(2026, 11, 1, 3, 0), true},
				{utc(2026, 11, 1, 5, 29), true}, {utc(2026, 11, 1, 5, 30), false}, // 01:30 EDT
				{utc(2026, 11, 1, 5, 59), false}, {utc(2026, 11, 1, 6, 0), true}, // 01:00 EST
				{utc(2026, 11, 1, 6, 29), true}, {utc(2026, 11, 1, 6, 30), false}},
		},
		{
			name: "Berlin spring forward: the skipped hour never happens", loc: berlin,
			interval: `{"days":["sun"],"from":"02:00","until":"03:00"}`,
			start:    at(berlin, 2026, 3, 29, 0, 0), end: at(berlin, 2026, 3, 30, 0, 0), minutes: 0,
			checks: []check{{utc(2026, 3, 29, 0, 59), false}, {utc(2026, 3, 29, 1, 0), false}},
		},
		{
			name: "Berlin spring forward: 01:30-03:30 is one real hour", loc: berlin,
			interval: `{"days":["sun"],"from":"01:30","until":"03:30"}`,
			start:    at(berlin, 2026, 3, 29, 0, 0), end: at(berlin, 2026, 3, 30, 0, 0), minutes: 60,
			checks: []check{{utc(2026, 3, 29, 0, 29), false}, {utc(2026, 3, 29, 0, 30), true}, // 01:30 CET
				{utc(2026, 3, 29, 0, 59), true}, {utc(2026, 3, 29, 1, 0), true}, // 01:59 CET, 03:00 CEST
				{utc(2026, 3, 29, 1, 29), true}, {utc(2026, 3, 29, 1, 30), false}}, // 03:30 CEST
		},
		{
			name: "Berlin spring forward: a whole day is 23 real hours", loc: berlin,
			interval: `{"days":["sun"],"from":"00:00","until":"24:00"}`,
			start:    at(berlin, 2026, 3, 28, 12, 0), end: at(berlin, 2026, 3, 30, 12, 0), minutes: 23 * 60,
			checks: []check{{utc(2026, 3, 28, 22, 59), false}, {utc(2026, 3, 28, 23, 0), true},
				{utc(2026, 3, 29, 21, 59), true}, {utc(2026, 3, 29, 22, 0), false}},
		},
		{
			name: "Berlin spring forward: overnight interval across the change is 7 real hours", loc: berlin,
			interval: `{"days":["sat"],"from":"22:00","until":"06:00"}`,
			start:    at(berlin, 2026, 3, 28, 12, 0), end: at(berlin, 2026, 3, 29, 12, 0), minutes: 7 * 60,
			checks: []check{{utc(2026, 3, 28, 20, 59), false}, {utc(2026, 3, 28, 21, 0), true}, // 22:00 CET
				{utc(2026, 3, 29, 3, 59), true}, {utc(2026, 3, 29, 4, 0), false}}, // 06:00 CEST
		},
		{
			name: "Berlin fall back: the repeated hour is allowed twice", loc: berlin,
			interval: `{"days":["sun"],"from":"02:00","until":"03:00"}`,
			start:    at(berlin, 2026, 10, 25, 0, 0), end: at(berlin, 2026, 10, 26, 0, 0), minutes: 120,
			checks: []check{{utc(2026, 10, 24, 23, 59), false}, {utc(2026, 10, 25, 0, 0), true}, // 02:00 CEST
				{utc(2026, 10, 25, 0, 59), true}, {utc(2026, 10, 25, 1, 0), true}, // 02:59 CEST, 02:00 CET
				{utc(2026, 10, 25, 1, 59), true}, {utc(2026, 10, 25, 2, 0), false}}, // 03:00 CET
		},
		{
			name: "Berlin fall back: overnight interval across the change is 9 real hours", loc: berlin,
			interval: `{"days":["sat"],"from":"22:00","until":"06:00"}`,
			start:    at(berlin, 2026, 10, 24, 12, 0), end: at(berlin, 2026, 10, 25, 12, 0), minutes: 9 * 60,
			checks: []check{{utc(2026, 10, 24, 19, 59), false}, {utc(2026, 10, 24, 20, 0), true}, // 22:00 CEST
				{utc(2026, 10, 25, 4, 59), true}, {utc(2026, 10, 25, 5, 0), false}}, // 06:00 CET
		},
		{
			name: "Berlin fall back: 22:00-24:00 ends at Monday midnight", loc: berlin,
			interval: `{"days":["sun"],"from":"22:00","until":"24:00"}`,
			start:    at(berlin, 2026, 10, 25, 0, 0), end: at(berlin, 2026, 10, 26, 12, 0), minutes: 120,
			checks: []check{{utc(2026, 10, 25, 20, 59), false}, {utc(2026, 10, 25, 21, 0), true}, // 22:00 CET
				{utc(2026, 10, 25, 22, 59), true}, {utc(2026, 10, 25, 23, 0), false}}, // 23:59 CET, 00:00 Mon
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSchedule(t, "dst", `{"intervals":[`+tt.interval+`]}`)
			minutes := 0
			for m := tt.start; m.Before(tt.end); m = m.Add(time.Minute) {
				if s.Allows(m, tt.loc) {
					minutes++
				}
			}
			if minutes != tt.minutes {
				t.Errorf("allowed %d real minutes in [%v, %v), want %d", minutes, tt.start, tt.end, tt.minutes)
			}
			for _, c := range tt.checks {
				if got := s.Allows(c.t, tt.loc); got != c.want {
					t.Errorf("Allows(%s = %s) = %v, want %v", c.t.UTC().Format("2006-01-02 15:04Z"), c.t.In(tt.loc).Format("Mon 15:04 MST"), got, c.want)
				}
				// The boundaries are exact: a nanosecond before an instant
				// that is allowed and follows one that is not is not allowed.
				if c.want && !s.Allows(c.t.Add(-time.Minute), tt.loc) && s.Allows(c.t.Add(-time.Nanosecond), tt.loc) {
					t.Errorf("Allows a nanosecond before the boundary %v", c.t)
				}
			}
		})
	}
}

func TestScheduleNameErrors(t *testing.T) {
	s := &access.Schedule{Name: "", Intervals: nil}
	err := s.Validate()
	wantFieldError(t, err, "schedule", "", access.ErrInvalid)
	if !strings.Contains(err.Error(), "empty") {
		t.Errorf("message %q does not say the name is empty", err)
	}
}

package access

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/lintel-io/lintel/topic"
)

// ScheduleKey returns the bucket key of the schedule with the given name:
// "schedule." + name.
func ScheduleKey(name string) string { return KeyPrefixSchedule + name }

// minutesPerDay is the number of minutes from one local midnight to the
// next on the wall clock, and the value of "24:00".
const minutesPerDay = 24 * 60

// dayNames are the day names a schedule uses, indexed by [time.Weekday].
var dayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// Schedule is a named weekly schedule: a credential that lists it may be
// used at the moments one of its intervals allows. Central writes it under
// [ScheduleKey](Name) as {"intervals": [...]}. A schedule without intervals
// is allowed and never allows anything.
//
// Intervals are wall-clock times in the site's time zone, given to
// [Schedule.Allows]; daylight saving time does not move them. On the day
// clocks go forward the skipped hour never happens on the wall clock, so an
// interval inside it (02:00–03:00 in New York on 2026-03-08) allows nothing
// that day, and an interval across it is an hour shorter in real time. On the
// day clocks go back the repeated hour happens twice and an interval covering
// it allows both times (01:00–02:00 in New York on 2026-11-01 allows two real
// hours).
type Schedule struct {
	// Name is the schedule's name, a topic token; it comes from the key.
	Name string `json:"-"`
	// Intervals are the weekly intervals the schedule allows.
	Intervals []Interval `json:"intervals"`
}

// Interval is one weekly interval of a [Schedule]: on each of Days, from
// From (inclusive) until Until (exclusive), in wall-clock time.
//
// When Until is earlier than From the interval runs past midnight into the
// next day: {"days": ["fri"], "from": "22:00", "until": "06:00"} allows Friday
// 22:00 to Saturday 06:00. The days listed are the days intervals start on.
// Until "24:00" means up to midnight; Until equal to From is invalid (write
// "00:00"–"24:00" for a whole day).
//
// [Schedule.Validate] (which [ParseSchedule] calls) parses the strings once
// and keeps the result in unexported fields, so [Schedule.Allows] does no
// parsing. Change an interval's fields after that and the Schedule must be
// validated again.
type Interval struct {
	// Days lists the days the interval starts on, "mon" to "sun": at
	// least one, no duplicates.
	Days []string `json:"days"`
	// From is the time of day it begins, "HH:MM" from "00:00" to "23:59",
	// inclusive.
	From string `json:"from"`
	// Until is the time of day it ends, "HH:MM" from "00:00" to "23:59"
	// or "24:00", exclusive.
	Until string `json:"until"`

	// Parsed by Validate: a bit per time.Weekday, and minutes since
	// midnight.
	parsed      bool
	days        uint8
	from, until int16
}

// parse parses the interval's strings, returning the field at fault and the
// reason when they do not make an interval.
func (iv *Interval) parse() (days uint8, from, until int16, field, reason string) {
	if len(iv.Days) == 0 {
		return 0, 0, 0, "days", "at least one day required"
	}
	for i, name := range iv.Days {
		d := slices.Index(dayNames[:], name)
		if d < 0 {
			return 0, 0, 0, fmt.Sprintf("days[%d]", i), fmt.Sprintf("%q is not a day: want mon, tue, wed, thu, fri, sat or sun", name)
		}
		if days&(1<<d) != 0 {
			return 0, 0, 0, fmt.Sprintf("days[%d]", i), fmt.Sprintf("%q listed twice", name)
		}
		days |= 1 << d
	}
	from, ok := parseClock(iv.From, false)
	if !ok {
		return 0, 0, 0, "from", fmt.Sprintf("%q is not a time of day HH:MM from 00:00 to 23:59", iv.From)
	}
	until, ok = parseClock(iv.Until, true)
	if !ok {
		return 0, 0, 0, "until", fmt.Sprintf("%q is not a time of day HH:MM from 00:00 to 24:00", iv.Until)
	}
	if from == until {
		return 0, 0, 0, "until", fmt.Sprintf("%q equals from: an interval cannot be empty (00:00 to 24:00 is a whole day)", iv.Until)
	}
	return days, from, until, "", ""
}

// bounds returns the parsed interval, parsing it now if Validate has not
// (without keeping the result, so that concurrent calls stay safe). ok is
// false for an interval that does not parse; it never allows.
func (iv *Interval) bounds() (days uint8, from, until int16, ok bool) {
	if iv.parsed {
		return iv.days, iv.from, iv.until, true
	}
	days, from, until, _, reason := iv.parse()
	return days, from, until, reason == ""
}

// parseClock parses "HH:MM" into minutes since midnight; "24:00" only when
// allow24.
func parseClock(s string, allow24 bool) (int16, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	for _, i := range [...]int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	h := int16(s[0]-'0')*10 + int16(s[1]-'0')
	m := int16(s[3]-'0')*10 + int16(s[4]-'0')
	switch {
	case m > 59:
		return 0, false
	case h == 24 && m == 0 && allow24:
		return minutesPerDay, true
	case h > 23:
		return 0, false
	}
	return h*60 + m, true
}

// Validate checks the schedule's name and intervals and records the parsed
// intervals for [Schedule.Allows]; since it writes to s, it must not run
// concurrently with Allows on the same Schedule. It returns the first
// problem as a [*FieldError] of kind "schedule" wrapping [ErrInvalid],
// naming the field, e.g. "intervals[1].from".
func (s *Schedule) Validate() error {
	if err := topic.ValidateToken(partSchedule, s.Name); err != nil {
		return nameError(kindSchedule, s.Name, err)
	}
	for i := range s.Intervals {
		iv := &s.Intervals[i]
		days, from, until, field, reason := iv.parse()
		if reason != "" {
			return &FieldError{Kind: kindSchedule, Name: s.Name, Field: fmt.Sprintf("intervals[%d].%s", i, field), Reason: reason, Err: ErrInvalid}
		}
		iv.parsed, iv.days, iv.from, iv.until = true, days, from, until
	}
	return nil
}

// ParseSchedule decodes the bucket value of the schedule with the given
// name, strictly as [ParseCredential] does, and validates it with
// [Schedule.Validate]. Errors are [*FieldError] values of kind "schedule".
func ParseSchedule(name string, data []byte) (*Schedule, error) {
	if err := topic.ValidateToken(partSchedule, name); err != nil {
		return nil, nameError(kindSchedule, name, err)
	}
	s := &Schedule{Name: name}
	if p := decodeStrict(data, s); p != nil {
		return nil, p.fieldError(kindSchedule, name)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// Marshal validates s (see [Schedule.Validate]) and returns its bucket
// value, the JSON form [ParseSchedule] reads.
func (s *Schedule) Marshal() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	out := *s
	if out.Intervals == nil {
		out.Intervals = []Interval{} // "intervals": [] rather than null
	}
	return json.Marshal(&out)
}

// Allows reports whether the schedule allows the moment t, read on the wall
// clock of loc (nil means UTC): the weekday and the minutes since local
// midnight of t.In(loc) fall in one of its intervals. See [Schedule] for
// what that means on the days daylight saving time begins and ends. A nil
// Schedule allows nothing.
//
// Allows does not allocate. It uses the intervals parsed by
// [Schedule.Validate]; on a Schedule never validated it parses them on every
// call, and an interval that does not parse allows nothing.
func (s *Schedule) Allows(t time.Time, loc *time.Location) bool {
	if s == nil {
		return false
	}
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	h, m, _ := t.Clock()
	now := int16(h*60 + m)
	today := uint8(1) << t.Weekday()
	yesterday := uint8(1) << ((t.Weekday() + 6) % 7)
	for i := range s.Intervals {
		days, from, until, ok := s.Intervals[i].bounds()
		switch {
		case !ok:
		case from < until: // within one day
			if days&today != 0 && from <= now && now < until {
				return true
			}
		default: // past midnight: the evening it starts, the morning after
			if days&today != 0 && now >= from || days&yesterday != 0 && now < until {
				return true
			}
		}
	}
	return false
}

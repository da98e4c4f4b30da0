package message

import (
	"sync/atomic"
	"time"

	"github.com/lintel-io/lintel/topic"
)

// Stamper fills in the identity of the envelopes one producer sends: a new
// ID, the time, the source, the boot ID and the next sequence number. A thing
// makes one Stamper per boot, with a fresh boot ID, so that its sequence
// restarts at 1 with each boot and receivers can detect gaps.
//
// Set the fields before the first Stamp. A Stamper is safe for concurrent
// use; do not copy it after first use.
type Stamper struct {
	// Source is the thing whose envelopes are stamped.
	Source topic.Thing
	// BootID identifies the current boot.
	BootID ID
	// Now returns the current time; nil means time.Now. The same reading
	// dates the envelope and its ID.
	Now func() time.Time
	// IDs makes the envelope IDs; nil means a generator of the Stamper's
	// own with default randomness.
	IDs *IDGenerator

	gen IDGenerator
	seq atomic.Uint64
}

// NewStamper returns a Stamper for source's boot bootID. Make bootID with an
// [IDGenerator] at startup.
func NewStamper(source topic.Thing, bootID ID) *Stamper {
	return &Stamper{Source: source, BootID: bootID}
}

// Stamp sets e's ID, Time, Source, BootID and Seq; Seq is one more than the
// last one issued, starting at 1. It leaves the other fields alone.
func (s *Stamper) Stamp(e *Envelope) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ids := s.IDs
	if ids == nil {
		ids = &s.gen
	}
	t := now()
	e.ID = ids.NewAt(t)
	e.Time = t.UTC()
	e.Source = s.Source
	e.BootID = s.BootID
	e.Seq = s.seq.Add(1)
}

// Seq returns the last sequence number issued, or 0 before the first Stamp.
func (s *Stamper) Seq() uint64 { return s.seq.Load() }

package message

import (
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"time"
)

// IDGenerator makes version 7 IDs (RFC 9562): a 48-bit Unix millisecond
// timestamp, a 42-bit counter and 32 random bits. Within one generator IDs
// strictly increase: the counter starts at a random value (with its top bit
// clear, leaving room to count) each new millisecond and increments for every
// further ID in the same millisecond; if the clock stands still or steps back,
// the generator keeps counting on from the last millisecond it used instead of
// going backwards.
//
// The zero value is ready to use and safe for concurrent use. Set Now and Rand
// before the first call, and do not copy an IDGenerator after first use.
type IDGenerator struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Rand supplies the random bits; nil means a ChaCha8 generator seeded
	// from crypto/rand on first use. It is called with the generator's lock
	// held, so it need not be safe for concurrent use. Inject a seeded
	// source in tests for reproducible IDs.
	Rand rand.Source

	mu      sync.Mutex
	src     rand.Source // Rand, or the default source once made
	lastMs  int64       // millisecond of the last ID
	counter uint64      // counter of the last ID, < 1<<counterBits
}

const (
	counterBits = 42
	maxMs       = 1<<48 - 1
)

// New returns a new ID stamped with the generator's clock.
func (g *IDGenerator) New() ID {
	now := time.Now
	if g.Now != nil {
		now = g.Now
	}
	return g.NewAt(now())
}

// NewAt returns a new ID stamped with the millisecond of t, or a later one if
// the generator has already issued IDs beyond t. Use it to give an ID the same
// timestamp as the envelope that carries it. Times before 1970 count as 1970.
func (g *IDGenerator) NewAt(t time.Time) ID {
	ms := t.UnixMilli()
	if ms < 0 {
		ms = 0
	} else if ms > maxMs {
		ms = maxMs
	}

	g.mu.Lock()
	src := g.src
	if src == nil {
		src = g.initSource()
	}
	tail := src.Uint64()
	if ms > g.lastMs {
		g.lastMs = ms
		g.counter = src.Uint64() >> (64 - counterBits + 1) // top bit clear
	} else {
		g.counter++
		if g.counter >= 1<<counterBits {
			// 2^41 IDs in one millisecond: borrow the next one.
			g.lastMs++
			g.counter = src.Uint64() >> (64 - counterBits + 1)
		}
	}
	ms, c := g.lastMs, g.counter
	g.mu.Unlock()

	var id ID
	binary.BigEndian.PutUint64(id[:8], uint64(ms)<<16)
	id[6] = 0x70 | byte(c>>38)&0x0f // version 7, counter bits 41..38
	id[7] = byte(c >> 30)           // counter bits 37..30
	id[8] = 0x80 | byte(c>>24)&0x3f // variant 10, counter bits 29..24
	id[9] = byte(c >> 16)
	id[10] = byte(c >> 8)
	id[11] = byte(c)
	binary.BigEndian.PutUint32(id[12:], uint32(tail))
	return id
}

// initSource sets g.src to Rand or to a fresh ChaCha8 source. g.mu is held.
func (g *IDGenerator) initSource() rand.Source {
	g.lastMs = -1 // so that the first ID, even at 1970, seeds its counter
	if g.Rand != nil {
		g.src = g.Rand
		return g.src
	}
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails: crypto/rand crashes the program instead
	g.src = rand.NewChaCha8(seed)
	return g.src
}

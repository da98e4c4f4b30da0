package gateway

import (
	"fmt"
	"net/http"
	"time"

	"github.com/lintel-io/lintel/topic"
)

// bucket is one device's token bucket of requests.
type bucket struct {
	tokens float64
	at     time.Time
}

func (b *bucket) refill(now time.Time, rate float64, burst int) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(float64(burst), b.tokens+d.Seconds()*rate)
		b.at = now
	}
}

// full reports whether the bucket is back at burst, so that forgetting it
// changes nothing.
func (b *bucket) full(now time.Time, rate float64, burst int) bool {
	b.refill(now, rate, burst)
	return b.tokens >= float64(burst)
}

// admit takes one token of t's budget, or returns the 429 problem saying
// when the next one comes.
func (g *Gateway) admit(t topic.Thing) *Problem {
	if g.cfg.Rate < 0 {
		return nil
	}
	now := g.cfg.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.limits[t]
	if b == nil {
		b = &bucket{tokens: float64(g.cfg.Burst), at: now}
		g.limits[t] = b
	}
	b.refill(now, g.cfg.Rate, g.cfg.Burst)
	if b.tokens >= 1 {
		b.tokens--
		return nil
	}
	wait := time.Duration((1 - b.tokens) / g.cfg.Rate * float64(time.Second))
	p := newProblem(http.StatusTooManyRequests, SlugRateLimited, "rate limited",
		fmt.Sprintf("device %s exceeded %g requests per second (burst %d)", t, g.cfg.Rate, g.cfg.Burst))
	p.retryAfter = max(wait, time.Second)
	return p
}

package access

import "github.com/lintel-io/lintel/message"

// decideWith decides d again from credential c, read from central ahead of
// the set (nil: central holds no usable entry), with the set's groups and
// schedules: the checks of [Set.Decide] from the credential on.
func (s *Set) decideWith(c *Credential, d message.AccessDecision, sit Situation) message.AccessDecision {
	if c == nil {
		d.Holder = ""
		return deny(d, message.DenyUnknown)
	}
	d.Holder = c.Holder
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.check(d, c, sit)
}

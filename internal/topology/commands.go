package topology

import (
	"strings"

	"github.com/lintel-io/lintel/topic"
)

// commandToken and gatewayCommandToken are the fourth token of
// [CommandSubject] and [GatewayCommandSubject].
const (
	commandToken        = "cmd"
	gatewayCommandToken = "gwcmd"
)

// CommandSubject returns the subject on which central's services write a
// command for thing t into the org's command stream, for the edge to
// source: "_lintel.{org}.{edge}.cmd.{type}.{code}" (authz.CommandSubject).
func CommandSubject(t topic.Thing) string {
	return commandSubject(t, commandToken)
}

// ParseCommandSubject returns the thing a [CommandSubject] addresses. It
// returns an error wrapping [topic.ErrTokenCount] for a subject of another
// shape and a [*topic.Error] for an invalid token.
func ParseCommandSubject(s string) (topic.Thing, error) {
	return parseCommandSubject(s, commandToken)
}

// CommandStreamSubjects returns the subjects of org's command stream on
// central: the [CommandSubject] and the [GatewayCommandSubject] subjects
// of every edge of org.
func CommandStreamSubjects(org string) []string {
	return []string{commandFilter(org, commandToken), commandFilter(org, gatewayCommandToken)}
}

// commandSubject returns "_lintel.{org}.{edge}.{token}.{type}.{code}".
func commandSubject(t topic.Thing, token string) string {
	return InternalPrefix + "." + t.Org + "." + t.Edge + "." + token + "." + t.Type + "." + t.Code
}

// commandFilter returns "_lintel.{org}.*.{token}.*.*".
func commandFilter(org, token string) string {
	return InternalPrefix + "." + org + ".*." + token + ".*.*"
}

// parseCommandSubject parses "_lintel.{org}.{edge}.{token}.{type}.{code}".
func parseCommandSubject(s, token string) (topic.Thing, error) {
	p := strings.Split(s, ".")
	if len(p) != 6 || p[0] != InternalPrefix || p[3] != token {
		return topic.Thing{}, &topic.Error{Part: topic.PartSubject, Value: s,
			Reason: "want " + InternalPrefix + ".{org}.{edge}." + token + ".{type}.{code}", Err: topic.ErrTokenCount}
	}
	t := topic.Thing{Org: p[1], Edge: p[2], Type: p[4], Code: p[5]}
	if _, err := topic.EdgeFilter(t.Org, t.Edge); err != nil {
		return topic.Thing{}, err
	}
	return t, t.Validate()
}

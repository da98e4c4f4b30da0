package topology

import (
	"fmt"

	"github.com/lintel-io/lintel/topic"
)

// Names shared by central, every edge and the permissions generated for
// them (package authz exports both under the same names).
const (
	// InternalPrefix is the first token of the platform's own subjects that
	// are not device subjects. It begins with '_', so no org code can
	// produce it.
	InternalPrefix = "_lintel"

	// SystemAccount is the name of the NATS system account on central and on
	// every edge. No org may be called SystemAccount.
	SystemAccount = "SYS"
)

// CheckOrg reports whether org can name an org of the topology. It
// returns an error wrapping [ErrReservedName] when org is [SystemAccount],
// and a [*topic.Error] when org is not a valid, non-reserved token.
func CheckOrg(org string) error {
	if _, err := topic.OrgFilter(org); err != nil {
		return err
	}
	if org == SystemAccount {
		return fmt.Errorf("%w: org %q: it is the system account", ErrReservedName, org)
	}
	return nil
}

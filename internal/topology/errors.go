package topology

import "errors"

// ErrReservedName reports an org or edge code that the topology keeps for
// itself, such as an org code equal to [SystemAccount]. It is
// authz.ErrReservedName, whose users see it: hence its message.
var ErrReservedName = errors.New("authz: name reserved by the NATS topology")

package authz

import (
	"errors"
	"fmt"

	"github.com/lintel-io/lintel/topic"
)

// Sentinel errors of the inventory and credential half of the package;
// compare with [errors.Is]. Inventory problems arrive wrapped in an
// [*InventoryError] that names the entry.
var (
	// ErrMalformed reports an inventory or state file that is not the JSON
	// its format requires: a syntax error, a value of the wrong JSON type,
	// or trailing data after the top-level object.
	ErrMalformed = errors.New("authz: malformed JSON")
	// ErrUnknownKey reports a JSON key that is not part of the format,
	// usually a typo. Keys are matched exactly, case included.
	ErrUnknownKey = errors.New("authz: unknown key")
	// ErrDuplicateKey reports a JSON key given twice in one object.
	ErrDuplicateKey = errors.New("authz: duplicate key")
	// ErrInvalid reports an inventory value that breaks a rule of its own:
	// a bad or reserved token (the [*topic.Error] is wrapped too), an
	// unknown time zone or service kind, a misplaced field.
	ErrInvalid = errors.New("authz: invalid value")
	// ErrDuplicate reports an inventory entry whose code or name is already
	// used by another entry in the same scope.
	ErrDuplicate = errors.New("authz: duplicate entry")
	// ErrUnknownReference reports an inventory entry that names an org,
	// edge or thing that does not exist (where it must).
	ErrUnknownReference = errors.New("authz: unknown reference")
	// ErrInvalidState reports a credential state that cannot be loaded or
	// saved: an unsupported version, a hash that is not bcrypt, a public key
	// that is not a user NKey.
	ErrInvalidState = errors.New("authz: invalid credential state")
	// ErrUnknownIdentity reports a rotation of an identity that the state
	// holds no credential for.
	ErrUnknownIdentity = errors.New("authz: unknown identity")
	// ErrInvalidOption reports a [Generator] field outside its allowed range.
	ErrInvalidOption = errors.New("authz: invalid option")
	// ErrInvalidSeed reports a seed that is not an NKey user seed.
	ErrInvalidSeed = errors.New("authz: invalid seed")
)

// InventoryError reports one problem with one entry of an [Inventory]. Entry
// names it by position and identity, Err says what is wrong:
//
//	authz: things[3] (acme.hq.reader.door 1): thing_code "door 1": space not allowed
//
// Err wraps one of the package's sentinels ([ErrInvalid], [ErrDuplicate],
// [ErrUnknownReference], [ErrUnknownKey], ...) and, for a bad token, the
// [*topic.Error] too, so both [errors.Is] and [errors.As] see through it.
type InventoryError struct {
	Entry string // e.g. "things[3] (acme.hq.reader.door 1)", "orgs", "inventory"
	Err   error  // what is wrong with it
}

// Error returns "authz: {Entry}: {reason}".
// Error returns "authz: {Entry}: {reason}".
func (e *InventoryError) Error() string { return "authz: " + e.Entry + ": " + reason(e.Err) }

// Unwrap returns Err.
func (e *InventoryError) Unwrap() error { return e.Err }

// problem is a reason without a package prefix, wrapping the sentinel (and
// any cause) that classifies it.
type problem struct {
	msg  string
	errs []error
}

func (p *problem) Error() string   { return p.msg }
func (p *problem) Unwrap() []error { return p.errs }

// newProblem returns a problem classified by sentinel, with a message
// formatted like fmt.Sprintf.
func newProblem(sentinel error, format string, args ...any) *problem {
	return &problem{msg: fmt.Sprintf(format, args...), errs: []error{sentinel}}
}

// tokenProblem classifies a topic error as ErrInvalid while keeping it
// reachable with errors.As.
func tokenProblem(err error) *problem {
	return &problem{msg: reason(err), errs: []error{ErrInvalid, err}}
}

// reason renders err without the "topic: " prefix of a [*topic.Error], which
// reads as noise inside an authz message.
func reason(err error) string {
	if te, ok := err.(*topic.Error); ok {
		return fmt.Sprintf("%s %q: %s", te.Part, te.Value, te.Reason)
	}
	return err.Error()
}

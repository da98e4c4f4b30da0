package authz

import (
	"slices"
	"strings"
)

// Allowed reports whether p permits op on subject, with the semantics
// nats-server applies to a client connection:
//
//   - the subject must be well formed: non-empty tokens separated by '.',
//     no whitespace, and '>' only as the last token (stricter than
//     nats-server, which without pedantic mode takes a publish on "a.>.b" as
//     a literal subject);
//   - it is permitted when an Allow entry matches it (or Allow is nil) and
//     no Deny entry matches it. Matching is nats-server's: in an entry, "*"
//     matches any one token and ">" one or more; the subject's own
//     wildcards are matched as tokens, so subscribing to "a.*" is permitted
//     by the entry "a.*" or "a.>" but not by "a.b", and subscribing to "a.>"
//     is not denied by the entry "a.b" (nats-server instead withholds the
//     messages on "a.b" from that subscription).
//
// nats-server judges a publish after applying the account's subject
// mappings, among them JetStream's domain mapping "$JS.{domain}.API.>" to
// "$JS.API.>" that exists while a leaf node is connected; the generated
// permissions allow or deny both forms alike, so Allowed agrees without
// modelling the mappings (tests compare it with a running server).
func (p Permissions) Allowed(subject string, op Op) bool {
	var r SubjectRules
	switch op {
	case Publish:
		r = p.Publish
	case Subscribe:
		r = p.Subscribe
	default:
		return false
	}
	toks, ok := subjectTokens(subject)
	if !ok {
		return false
	}
	if r.Allow != nil && !slices.ContainsFunc(r.Allow, func(f string) bool { return filterMatches(f, toks) }) {
		return false
	}
	return !slices.ContainsFunc(r.Deny, func(f string) bool { return filterMatches(f, toks) })
}

// subjectTokens splits a subject into tokens, reporting whether it is well
// formed.
func subjectTokens(s string) ([]string, bool) {
	if s == "" || strings.ContainsAny(s, " \t\r\n\f\v") {
		return nil, false
	}
	toks := strings.Split(s, ".")
	for i, t := range toks {
		if t == "" || (t == ">" && i != len(toks)-1) {
			return nil, false
		}
	}
	return toks, true
}

// filterMatches reports whether the permission entry f matches the subject
// tokens toks the way nats-server's sublist does: f's "*" matches any one
// token, f's ">" one or more, any other token only itself (so a wildcard
// token in the subject is matched literally).
func filterMatches(f string, toks []string) bool {
	i := 0
	for ft := range strings.SplitSeq(f, ".") {
		switch {
		case ft == ">":
			return i < len(toks)
		case i >= len(toks):
			return false
		case ft != "*" && ft != toks[i]:
			return false
		}
		i++
	}
	return i == len(toks)
}

// Policy holds the permissions of every user an inventory defines (devices,
// edge services and listed services; not the edges' leaf-node keys) and
// answers [Policy.Allowed] for them. Build it with [NewPolicy]; it is
// immutable and safe for concurrent use. The HTTP gateway uses it to apply
// to a device's HTTP request exactly the permissions NATS would apply to the
// device's own connection.
type Policy struct {
	perms map[string]Permissions
}

// NewPolicy returns the policy of inv. It returns an error wrapping
// [ErrInvalid] for a service of unknown kind; it does not otherwise
// validate inv (see [Inventory.Validate]).
func NewPolicy(inv *Inventory) (*Policy, error) {
	ids, err := identitiesOf(inv)
	if err != nil {
		return nil, err
	}
	p := &Policy{perms: make(map[string]Permissions, len(ids))}
	for _, id := range ids {
		p.perms[id.user] = id.perms
	}
	return p, nil
}

// Allowed reports whether the user identity ([DeviceUser], [ServiceUser] or
// [EdgeServiceUser]) may perform op on subject, with NATS's semantics (see
// [Permissions.Allowed]). An unknown identity is allowed nothing.
func (p *Policy) Allowed(identity, subject string, op Op) bool {
	perms, ok := p.perms[identity]
	return ok && perms.Allowed(subject, op)
}

// Permissions returns the permissions of the user identity, and whether the
// policy knows it.
func (p *Policy) Permissions(identity string) (Permissions, bool) {
	perms, ok := p.perms[identity]
	return perms, ok
}

// Identities returns the user names the policy knows, sorted.
func (p *Policy) Identities() []string {
	ids := make([]string, 0, len(p.perms))
	for id := range p.perms {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// identity is one NATS user of an inventory, with where it logs in.
type identity struct {
	user  string
	org   string
	edge  string // the edge whose server it logs in to; "" for central
	perms Permissions
	mqtt  bool // a device allowed over MQTT as well (Thing.MQTT)
}

// identitiesOf returns the users of inv, in a stable order: devices, edge
// services, then listed services, each sorted by user name.
func identitiesOf(inv *Inventory) ([]identity, error) {
	ids := make([]identity, 0, len(inv.Things)+len(inv.Edges)+len(inv.Services))
	for _, t := range sortedThings(inv) {
		tt := t.Thing
		ids = append(ids, identity{user: DeviceUser(tt), org: t.Org, edge: t.Edge, perms: DevicePermissions(tt), mqtt: t.MQTT})
	}
	edges := slices.Clone(inv.Edges)
	slices.SortFunc(edges, func(a, b Edge) int {
		return strings.Compare(EdgeServiceUser(a.Org, a.Code), EdgeServiceUser(b.Org, b.Code))
	})
	for _, e := range edges {
		ids = append(ids, identity{user: EdgeServiceUser(e.Org, e.Code), org: e.Org, edge: e.Code,
			perms: EdgeServicePermissions(e.Org, e.Code)})
	}
	svcs := slices.Clone(inv.Services)
	slices.SortFunc(svcs, func(a, b Service) int {
		return strings.Compare(ServiceUser(a.Org, a.Name), ServiceUser(b.Org, b.Name))
	})
	for _, s := range svcs {
		perms, err := ServicePermissions(inv, s)
		if err != nil {
			return nil, err
		}
		// Gateways scoped to an edge run there; every other service on central.
		edge := ""
		if s.Kind == ServiceGateway {
			edge = s.Edge
		}
		ids = append(ids, identity{user: ServiceUser(s.Org, s.Name), org: s.Org, edge: edge, perms: perms})
	}
	return ids, nil
}

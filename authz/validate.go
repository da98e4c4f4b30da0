package authz

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/lintel-io/lintel/topic"
)

// Parts of an inventory entry that are tokens but not subject parts, for
// error messages: `door_code "front door": space not allowed`.
const (
	partDoorCode    topic.Part = "door_code"
	partServiceName topic.Part = "service_name"
)

// serviceKinds lists the known service kinds, in documentation order.
var serviceKinds = [...]ServiceKind{ServiceCentral, ServiceGateway, ServiceOperator}

// Validate reports every problem with inv at once, as [*InventoryError]
// values joined with [errors.Join], or nil when inv is sound. The rules are
// listed under "Rules" in the [Inventory] documentation; each error names
// the entry by position and identity and wraps [ErrInvalid],
// [ErrDuplicate] or [ErrUnknownReference] (and the [*topic.Error] for a bad
// token):
//
//	authz: things[3] (acme.hq.reader.door 1): thing_code "door 1": space not allowed
//	authz: doors[0] (acme.hq.front): reader "r9": no thing with that code at edge "hq"
//
// An entry with a problem is left out of the checks that depend on it, and
// references to a listed but rejected org, edge or thing fail silently, so
// that one mistake is reported once rather than again by every entry that
// refers to it.
func (inv *Inventory) Validate() error {
	if inv == nil {
		return &InventoryError{Entry: "inventory", Err: newProblem(ErrInvalid, "nil inventory")}
	}
	v := validator{
		orgs:       make(map[string]int, len(inv.Orgs)),
		edges:      make(map[string]int, len(inv.Edges)),
		things:     make(map[string]int, len(inv.Things)),
		devices:    make(map[string]int, len(inv.Things)),
		thingEdges: make(map[string]string, len(inv.Things)),
		rejected:   make(map[string]bool),
		zones:      make(map[string]error),
		inv:        inv,
	}
	v.checkOrgs()
	v.checkEdges()
	v.checkThings()
	v.checkDoors()
	v.checkServices()
	return errors.Join(v.errs...)
}

type validator struct {
	inv  *Inventory
	errs []error

	orgs       map[string]int    // org code → index in Orgs
	edges      map[string]int    // edge code → index in Edges (codes are global)
	things     map[string]int    // edge + "\x00" + thing code → index in Things
	devices    map[string]int    // org + "\x00" + type + "\x00" + code → index in Things
	thingEdges map[string]string // org + "\x00" + thing code → an edge it is at
	// rejected holds the orgs ("o\x00" + code), edges ("e\x00" + code) and
	// things ("t\x00" + edge + "\x00" + code) that are listed but were
	// rejected: references to them fail silently, since the entry's own
	// error already tells the story.
	rejected map[string]bool
	zones    map[string]error // time zone → LoadLocation's verdict
}

func (v *validator) add(entry entryRef, p *problem) {
	v.errs = append(v.errs, &InventoryError{Entry: entry.String(), Err: p})
}

func (v *validator) checkOrgs() {
	if len(v.inv.Orgs) == 0 {
		v.add(ref("orgs", -1), newProblem(ErrInvalid, "no orgs listed: an inventory needs at least one"))
	}
	for i, o := range v.inv.Orgs {
		entry := ref("orgs", i, o.Code)
		if err := checkName(topic.PartOrg, o.Code, true); err != nil {
			v.add(entry, tokenProblem(err))
			v.rejected["o\x00"+o.Code] = true
			continue
		}
		if j, dup := v.orgs[o.Code]; dup {
			v.add(entry, newProblem(ErrDuplicate, "org code %q already used by orgs[%d]", o.Code, j))
			continue
		}
		v.orgs[o.Code] = i
	}
}

func (v *validator) checkEdges() {
	for i, e := range v.inv.Edges {
		entry := ref("edges", i, e.Org, e.Code)
		ok := v.checkOrgRef(entry, e.Org)
		if err := checkName(topic.PartEdge, e.Code, true); err != nil {
			v.add(entry, tokenProblem(err))
			ok = false
		} else if j, dup := v.edges[e.Code]; dup {
			first := v.inv.Edges[j]
			v.add(entry, newProblem(ErrDuplicate, "edge code %q already used by %s: edge codes are unique across the inventory, as each names a JetStream domain",
				e.Code, label("edges", j, first.Org, first.Code)))
			ok = false
		}
		if e.TimeZone != "" {
			if err := v.checkZone(e.TimeZone); err != nil {
				v.add(entry, newProblem(ErrInvalid, "timezone %q: %v", e.TimeZone, err))
			}
		}
		if ok {
			v.edges[e.Code] = i
		} else if _, taken := v.edges[e.Code]; !taken {
			v.rejected["e\x00"+e.Code] = true
		}
	}
}

func (v *validator) checkZone(name string) error {
	if err, seen := v.zones[name]; seen {
		return err
	}
	var err error
	if name == "Local" {
		err = errors.New("the host's zone is not allowed; name an IANA zone such as Europe/Berlin")
	} else if _, lerr := time.LoadLocation(name); lerr != nil {
		err = errors.New("unknown time zone; name an IANA zone such as Europe/Berlin")
	}
	v.zones[name] = err
	return err
}

func (v *validator) checkThings() {
	for i, t := range v.inv.Things {
		entry := ref("things", i, t.Org, t.Edge, t.Type, t.Code)
		atEdge := t.Edge + "\x00" + t.Code
		if v.rejected["o\x00"+t.Org] || v.rejected["e\x00"+t.Edge] {
			// The org or edge has been reported; check only the thing's own tokens.
			if err := topic.ValidateThing(topic.Thing{Org: "o", Edge: "e", Type: t.Type, Code: t.Code}); err != nil {
				v.add(entry, tokenProblem(err))
			}
			v.rejected["t\x00"+atEdge] = true
			continue
		}
		if err := topic.ValidateThing(t.Thing); err != nil {
			v.add(entry, tokenProblem(err))
			v.rejected["t\x00"+atEdge] = true
			continue
		}
		if !v.checkOrgRef(entry, t.Org) || !v.checkEdgeRef(entry, t.Org, t.Edge) {
			v.rejected["t\x00"+atEdge] = true
			continue
		}
		if j, dup := v.things[atEdge]; dup {
			v.add(entry, newProblem(ErrDuplicate, "thing code %q already used at edge %q by %s: thing codes are unique within their edge",
				t.Code, t.Edge, v.thingLabel(j)))
			continue
		}
		device := t.Org + "\x00" + t.Type + "\x00" + t.Code
		if j, dup := v.devices[device]; dup {
			v.add(entry, newProblem(ErrDuplicate, "%s %q is also listed at edge %q as %s: a device belongs to one edge, so org, type and code together are unique",
				t.Type, t.Code, v.inv.Things[j].Edge, v.thingLabel(j)))
			continue
		}
		v.things[atEdge] = i
		v.devices[device] = i
		v.thingEdges[t.Org+"\x00"+t.Code] = t.Edge
	}
}

func (v *validator) thingLabel(i int) string {
	t := v.inv.Things[i]
	return label("things", i, t.Org, t.Edge, t.Type, t.Code)
}

func (v *validator) checkDoors() {
	seen := make(map[string]int, len(v.inv.Doors)) // edge + "\x00" + door code → index
	for i, d := range v.inv.Doors {
		entry := ref("doors", i, d.Org, d.Edge, d.Code)
		ok := v.checkOrgRef(entry, d.Org) && v.checkEdgeRef(entry, d.Org, d.Edge)
		if err := topic.ValidateToken(partDoorCode, d.Code); err != nil {
			v.add(entry, tokenProblem(err))
		} else if ok {
			key := d.Edge + "\x00" + d.Code
			if j, dup := seen[key]; dup {
				v.add(entry, newProblem(ErrDuplicate, "door code %q already used at edge %q by doors[%d]: door codes are unique within their edge", d.Code, d.Edge, j))
			} else {
				seen[key] = i
			}
		}
		if !ok {
			continue // members cannot be resolved without the door's edge
		}
		v.checkMembers(entry, d, "reader", d.Readers)
		v.checkMembers(entry, d, "lock", d.Locks)
		v.checkMembers(entry, d, "sensor", d.Sensors)
	}
}

// checkMembers checks that every code in one of a door's lists names a thing
// at the door's edge, once.
func (v *validator) checkMembers(entry entryRef, d Door, role string, codes []string) {
	listed := make(map[string]bool, len(codes))
	for _, code := range codes {
		if listed[code] {
			v.add(entry, newProblem(ErrDuplicate, "%s %q listed twice", role, code))
			continue
		}
		listed[code] = true
		if _, ok := v.things[d.Edge+"\x00"+code]; ok || v.rejected["t\x00"+d.Edge+"\x00"+code] {
			continue
		}
		if other, ok := v.thingEdges[d.Org+"\x00"+code]; ok {
			v.add(entry, newProblem(ErrUnknownReference, "%s %q is a thing of edge %q, not of the door's edge %q", role, code, other, d.Edge))
			continue
		}
		v.add(entry, newProblem(ErrUnknownReference, "%s %q: no thing with that code at edge %q", role, code, d.Edge))
	}
}

func (v *validator) checkServices() {
	seen := make(map[string]int, len(v.inv.Services)) // ServiceUser → index
	for i, s := range v.inv.Services {
		entry := ref("services", i, "_svc", s.Org, s.Name) // ServiceUser(s.Org, s.Name)
		orgOK := v.checkOrgRef(entry, s.Org)
		ok := orgOK
		if err := checkName(partServiceName, s.Name, true); err != nil {
			v.add(entry, tokenProblem(err))
			ok = false
		}
		switch {
		case s.Kind == "":
			v.add(entry, newProblem(ErrInvalid, "kind missing, want one of %s", kindList()))
		case !knownKind(s.Kind):
			v.add(entry, newProblem(ErrInvalid, "kind %q: unknown, want one of %s", s.Kind, kindList()))
		}
		if s.Edge != "" {
			if s.Kind != ServiceGateway {
				v.add(entry, newProblem(ErrInvalid, "edge %q: only a %q service may be scoped to an edge", s.Edge, ServiceGateway))
			} else if orgOK {
				v.checkEdgeRef(entry, s.Org, s.Edge)
			}
		}
		if !ok {
			continue
		}
		user := ServiceUser(s.Org, s.Name)
		if j, dup := seen[user]; dup {
			v.add(entry, newProblem(ErrDuplicate, "service name %q already used in org %q by services[%d]: service names are unique within their org", s.Name, s.Org, j))
			continue
		}
		seen[user] = i
	}
}

// checkOrgRef reports whether org names a listed org, adding the problem when
// it does not.
func (v *validator) checkOrgRef(entry entryRef, org string) bool {
	if _, ok := v.orgs[org]; ok {
		return true
	}
	if v.rejected["o\x00"+org] {
		return false
	}
	if err := checkName(topic.PartOrg, org, true); err != nil {
		v.add(entry, tokenProblem(err))
		return false
	}
	v.add(entry, newProblem(ErrUnknownReference, "org %q is not in orgs", org))
	return false
}

// checkEdgeRef reports whether edge names a listed edge of org, adding the
// problem when it does not.
func (v *validator) checkEdgeRef(entry entryRef, org, edge string) bool {
	i, ok := v.edges[edge]
	if !ok && v.rejected["e\x00"+edge] {
		return false
	}
	if !ok {
		if err := checkName(topic.PartEdge, edge, true); err != nil {
			v.add(entry, tokenProblem(err))
			return false
		}
		v.add(entry, newProblem(ErrUnknownReference, "edge %q is not in edges", edge))
		return false
	}
	if owner := v.inv.Edges[i].Org; owner != org {
		v.add(entry, newProblem(ErrUnknownReference, "edge %q belongs to org %q, not %q", edge, owner, org))
		return false
	}
	return true
}

// checkName validates a token, and rejects a reserved one when reserved is
// set, with the message topic uses for orgs and edges.
func checkName(part topic.Part, s string, reserved bool) error {
	if err := topic.ValidateToken(part, s); err != nil {
		return err
	}
	if reserved && topic.IsReserved(s) {
		return &topic.Error{Part: part, Value: s, Reason: "names beginning with '_' are reserved", Err: topic.ErrReserved}
	}
	return nil
}

func knownKind(k ServiceKind) bool {
	for _, known := range serviceKinds {
		if k == known {
			return true
		}
	}
	return false
}

func kindList() string {
	s := make([]string, len(serviceKinds))
	for i, k := range serviceKinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// entryRef names an entry without building the name, which only an error
// needs.
type entryRef struct {
	list string
	i    int
	id   [4]string
	n    int
}

func ref(list string, i int, id ...string) entryRef {
	r := entryRef{list: list, i: i, n: len(id)}
	copy(r.id[:], id)
	return r
}

// String returns the entry's name, or the list's alone when i is negative.
func (r entryRef) String() string {
	if r.i < 0 {
		return r.list
	}
	return label(r.list, r.i, r.id[:r.n]...)
}

// label names an entry: "things[3] (acme.hq.reader.door 1)". The identity is
// quoted when it holds characters that would garble a one-line message.
func label(list string, i int, parts ...string) string {
	id := strings.Join(parts, ".")
	if strings.IndexFunc(id, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0 {
		id = strconv.Quote(id)
	}
	return fmt.Sprintf("%s[%d] (%s)", list, i, id)
}

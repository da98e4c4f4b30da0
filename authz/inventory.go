package authz

import "github.com/lintel-io/lintel/topic"

// Inventory is the declarative description of a Lintel deployment: who the
// organisations, edges, things, doors and services are. It is the single
// source from which accounts, users, permissions and server configurations
// are generated. Credentials are not part of it: they live in [State].
//
// # File format
//
// An inventory file is one JSON object whose keys are the json tags of
// Inventory and of the entry types: "orgs", "edges" and "things" are
// required in practice, "doors" and "services" may be left out. A small
// site, abridged from testdata/inventory.json:
//
//	{
//	  "orgs":  [{"code": "acme", "name": "Acme Corporation"}],
//	  "edges": [{"org": "acme", "code": "hq", "name": "Headquarters", "timezone": "Europe/Berlin"}],
//	  "things": [
//	    {"org": "acme", "edge": "hq", "type": "reader", "code": "front-in"},
//	    {"org": "acme", "edge": "hq", "type": "lock", "code": "front-lock"},
//	    {"org": "acme", "edge": "hq", "type": "door_sensor", "code": "front-contact"},
//	    {"org": "acme", "edge": "hq", "type": "sensor", "code": "lobby-env", "mqtt": true}
//	  ],
//	  "doors": [{"org": "acme", "edge": "hq", "code": "front",
//	             "readers": ["front-in"], "locks": ["front-lock"], "sensors": ["front-contact"]}],
//	  "services": [{"name": "ingest", "kind": "central", "org": "acme"},
//	               {"name": "gateway-hq", "kind": "gateway", "org": "acme", "edge": "hq"}]
//	}
//
// [ParseInventory] reads it strictly: keys must match exactly, case
// included, and may not repeat; values must have the right JSON type; null
// stands for an absent value. Names ("name") are free text for people; every
// code, type and service name is a subject token (see package topic: ASCII
// letters, digits, '_' and '-', at most 64 bytes).
//
// # Rules
//
// [Inventory.Validate] enforces:
//
//   - orgs: at least one; codes are tokens, not reserved (no leading '_'),
//     and unique.
//   - edges: belong to a listed org; codes are tokens, not reserved, and
//     unique across the whole inventory, not just the org, because each
//     names the edge's JetStream domain; timezone, when given, is an IANA
//     zone name that time.LoadLocation knows (not "Local"; the host needs a
//     zone database, or the program must import time/tzdata).
//   - things: org, edge, type and code form a valid [topic.Thing] whose type
//     is not reserved ([topic.ValidateThing]); the edge is a listed edge of
//     the thing's org; a thing code is unique within its edge, whatever the
//     type (doors refer to things by code alone); and a device belongs to
//     one edge: the same org, type and code may not be listed under two
//     edges, as that is nearly always one device entered twice (give
//     devices codes that are unique in their org, such as serial numbers
//     or site-prefixed names). "mqtt", when true, allows the device the
//     edge's MQTT listener ([Thing].MQTT).
//   - doors: at a listed edge of the door's org; codes are tokens, unique
//     within their edge; every code in readers, locks and sensors names a
//     thing at the same edge, once per list. The thing's type is not
//     checked, so a keypad may serve as a reader; a thing may serve several
//     doors.
//   - services: names are tokens, not reserved, and unique within their
//     org; kind is one of the [ServiceKind] constants; org is listed; edge,
//     when given, is allowed only for a gateway and must be an edge of the
//     service's org.
//
// # Identities
//
// Each thing is a device user ([DeviceUser]), each service a service user
// ([ServiceUser]), and each edge brings an edge service user
// ([EdgeServiceUser]) and a leaf-node NKey ([EdgeKeyID]) without being
// listed; see [Inventory.Identities]. Removing an entry revokes its
// identity at the next [Generator.Generate].
type Inventory struct {
	Orgs     []Org     `json:"orgs"`               // the organisations
	Edges    []Edge    `json:"edges"`              // the sites, each of one org
	Things   []Thing   `json:"things"`             // the devices, each at one edge
	Doors    []Door    `json:"doors,omitempty"`    // the access points, each at one edge
	Services []Service `json:"services,omitempty"` // the non-device identities
}

// Org is an organisation: one NATS account on central and on each of its edges.
type Org struct {
	Code string `json:"code"`           // subject token
	Name string `json:"name,omitempty"` // display name
}

// Edge is a site with its own edge node.
type Edge struct {
	Org      string `json:"org"`                // code of the org the edge belongs to
	Code     string `json:"code"`               // subject token, unique within the inventory (it names the edge's JetStream domain)
	Name     string `json:"name,omitempty"`     // display name
	TimeZone string `json:"timezone,omitempty"` // IANA zone of the site, for access schedules; default UTC
}

// Thing is a device registered at one edge.
type Thing struct {
	// Thing is the thing's identity: its org, the edge it is registered
	// at (an edge of Org), its type (e.g. "reader", "lock",
	// "door_sensor", "sensor") and its code, unique within its edge. In
	// the inventory's JSON its fields sit beside Name and the others.
	topic.Thing
	Name string `json:"name,omitempty"` // display name
	// MQTT lets the device log in over the edge's MQTT listener as well as
	// over NATS, with the MQTT client ID [MQTTClientID] only. A device
	// without it is refused over MQTT: another MQTT device could otherwise
	// take over its client ID, and with it its session.
	MQTT bool `json:"mqtt,omitempty"`
	// CentralGateway lets the device use the HTTP gateway at central
	// (docs/gateway.md): the central gateway authenticates it, and its
	// events reach central's storage through the org's gateway stream.
	CentralGateway bool `json:"central_gateway,omitempty"`
}

// Door is an access point at one edge, with the readers that request access
// to it and the locks and sensors that act on it. Readers, Locks and Sensors
// name things of the same edge by code.
type Door struct {
	Org     string   `json:"org"`               // code of the door's org
	Edge    string   `json:"edge"`              // code of its edge, an edge of Org
	Code    string   `json:"code"`              // unique within its edge
	Name    string   `json:"name,omitempty"`    // display name
	Readers []string `json:"readers,omitempty"` // codes of the readers that request access to the door
	Locks   []string `json:"locks,omitempty"`   // codes of the locks on the door
	Sensors []string `json:"sensors,omitempty"` // codes of the sensors on the door
}

// ServiceKind says what a service identity does, and so which permissions it gets.
type ServiceKind string

// Service kinds.
const (
	// ServiceCentral is a central service (ingest, API) scoped to one org.
	ServiceCentral ServiceKind = "central"
	// ServiceGateway is the HTTP-to-NATS gateway, scoped to one org, or to one
	// edge when Edge is set; it may publish only what devices may publish.
	ServiceGateway ServiceKind = "gateway"
	// ServiceOperator is an operator's administrative identity for one org.
	ServiceOperator ServiceKind = "operator"
)

// Service is a non-device identity. Every edge also gets an edge service
// identity implicitly; it need not be listed.
type Service struct {
	Name string      `json:"name"`           // unique within its org; subject token rules apply
	Kind ServiceKind `json:"kind"`           // what it does, and so its permissions
	Org  string      `json:"org"`            // code of the org it is scoped to
	Edge string      `json:"edge,omitempty"` // for an edge-scoped gateway
}

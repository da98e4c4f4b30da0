package api

// Query parameters shared by the history routes.
var (
	qFrom   = param{name: "from", desc: "from this time on (RFC 3339); default: 24 hours ago, or --since"}
	qTo     = param{name: "to", desc: "until this time, exclusive (RFC 3339)"}
	qSince  = param{name: "since", desc: "from this long ago (a Go duration such as 1h); instead of from"}
	qEdge   = param{name: "edge", desc: "this edge only"}
	qThing  = param{name: "thing", desc: "this thing only: EDGE.TYPE.CODE"}
	qDesc   = param{name: "desc", desc: "true: newest first"}
	qLimit  = param{name: "limit", desc: "page size, 1 to 1000; default 50"}
	qCursor = param{name: "cursor", desc: "the next page: the previous page's next"}
)

// routeTable is the API: every route, its role and its handler. The mux
// and the OpenAPI document are both built from it.
func (s *Server) routeTable() []route {
	r := func(method, path string, role Role, id, summary string, h func(*call) (any, error)) route {
		return route{Route: Route{Method: method, Path: path, Role: role, ID: id, Summary: summary}, handler: h}
	}
	withQuery := func(rt route, q ...param) route { rt.query = q; return rt }
	withBody := func(rt route, body string) route { rt.body = body; return rt }
	return []route{
		r("GET", "/openapi.json", RolePublic, "getOpenAPI", "This OpenAPI 3.1 document", s.getOpenAPI),
		r("GET", "/auth/login", RolePublic, "login", "Start the console's login at the OIDC provider", s.login),
		r("GET", "/auth/callback", RolePublic, "loginCallback", "The OIDC provider's redirect back: sets the session", s.loginCallback),
		withBody(r("POST", "/auth/token", RolePublic, "tokenLogin", "Start a console session with an API token (when enabled)", s.tokenLogin), "tokenLogin"),
		r("POST", "/auth/logout", RolePublic, "logout", "End the console's session", s.logout),
		r("GET", "/me", RoleViewer, "getMe", "Who the caller is, and its role", s.getMe),

		r("GET", "/edges", RoleViewer, "listEdges", "Every edge: link, backlog, credential set version and sync age", s.listEdges),
		r("GET", "/edges/{edge}", RoleViewer, "getEdge", "One edge: link, backlog, credential set version and sync age", s.getEdge),
		r("GET", "/edges/{edge}/audit", RoleViewer, "getAuditStatus", "The edge's audit chain as central verified it: head, breaks, revoked grants", s.getAuditStatus),
		withQuery(r("GET", "/doors", RoleViewer, "listDoors", "The inventory's doors with their last reported state, and the locks commands go to", s.listDoors), qEdge),
		withQuery(r("GET", "/events/stream", RoleViewer, "streamEvents", "Live events as server-sent events (text/event-stream), from now on", s.streamEvents), qEdge, qThing),
		withQuery(r("GET", "/things", RoleViewer, "listThings", "The inventory's things: online, stale, last seen", s.listThings), qEdge),

		withQuery(r("GET", "/events", RoleViewer, "listEvents", "Events, state, acks and telemetry, a page at a time", s.listEvents),
			qFrom, qTo, qSince, qEdge, qThing, param{name: "type", desc: "this message type only: evt, tlm, state, ack"},
			param{name: "name", desc: "this event name only, such as access.granted"}, qDesc, qLimit, qCursor),
		withQuery(r("GET", "/decisions", RoleViewer, "listDecisions", "Access decisions, a page at a time", s.listDecisions),
			qFrom, qTo, qSince, qEdge, param{name: "door", desc: "this door only"},
			param{name: "granted", desc: "true or false: granted or denied decisions only"}, qDesc, qLimit, qCursor),

		r("GET", "/edges/{edge}/credentials", RoleViewer, "listCredentials", "The credentials the edge holds, by holder", s.listCredentials),
		r("GET", "/edges/{edge}/credentials/{id}", RoleViewer, "getCredential", "One credential at the edge", s.getCredential),
		withBody(r("POST", "/edges/{edge}/credentials", RoleOperator, "createCredential",
			"Add a credential at the edge: by its hash (id and kind), or by the card number or PIN, hashed here, never stored or echoed", s.createCredential),
			"credentialCreate"),
		withBody(r("PUT", "/edges/{edge}/credentials/{id}", RoleOperator, "updateCredential",
			"Change a credential's holder, doors, groups, schedules or validity at the edge", s.updateCredential), "credentialUpdate"),
		withBody(r("POST", "/credentials/{id}/suspend", RoleOperator, "suspendCredential", "Bar a credential for now, at every edge", s.suspendCredential), "reason"),
		r("POST", "/credentials/{id}/reinstate", RoleOperator, "reinstateCredential", "Make a suspended credential active again, at every edge", s.reinstateCredential),
		withBody(r("POST", "/credentials/{id}/revoke", RoleOperator, "revokeCredential", "Revoke a credential for good, at every edge", s.revokeCredential), "reason"),

		r("GET", "/edges/{edge}/groups", RoleViewer, "listGroups", "The edge's door groups", s.listGroups),
		r("GET", "/edges/{edge}/groups/{name}", RoleViewer, "getGroup", "One door group at the edge", s.getGroup),
		withBody(r("PUT", "/edges/{edge}/groups/{name}", RoleOperator, "putGroup", "Define a door group at the edge", s.putGroup), "group"),
		r("DELETE", "/edges/{edge}/groups/{name}", RoleOperator, "removeGroup",
			"Remove a door group from the edge; refused (409) while credentials that are not revoked name it", s.removeGroup),
		r("GET", "/edges/{edge}/schedules", RoleViewer, "listSchedules", "The edge's weekly schedules", s.listSchedules),
		r("GET", "/edges/{edge}/schedules/{name}", RoleViewer, "getSchedule", "One weekly schedule at the edge", s.getSchedule),
		withBody(r("PUT", "/edges/{edge}/schedules/{name}", RoleOperator, "putSchedule", "Define a weekly schedule at the edge", s.putSchedule), "schedule"),
		r("DELETE", "/edges/{edge}/schedules/{name}", RoleOperator, "removeSchedule",
			"Remove a weekly schedule from the edge; refused (409) while credentials that are not revoked name it", s.removeSchedule),
		r("GET", "/edges/{edge}/rules", RoleViewer, "getRules", "The edge's rules document as stored", s.getRules),
		withBody(r("POST", "/edges/{edge}/rules/validate", RoleOperator, "validateRules", "Check a rules document for the edge without storing it", s.validateRules), "rules"),
		withBody(r("PUT", "/edges/{edge}/rules", RoleAdmin, "putRules", "Check a rules document and store it for the edge", s.putRules), "rules"),

		withQuery(withBody(r("POST", "/commands", RoleOperator, "sendCommand", "Send a signed command to a thing; optionally wait for its outcome", s.sendCommand), "command"),
			param{name: "wait", desc: "wait up to this long (a Go duration such as 10s) for the final outcome"}),
		withQuery(r("GET", "/commands", RoleViewer, "listCommands", "Commands sent and their outcome, a page at a time", s.listCommands),
			qFrom, qTo, qSince, qEdge, qThing, qDesc, qLimit, qCursor),
		withQuery(r("GET", "/commands/{id}", RoleViewer, "getCommand", "A command's outcome with its acks; optionally wait for the final one", s.getCommand),
			param{name: "thing", desc: "the thing it was sent to: EDGE.TYPE.CODE", required: true},
			param{name: "wait", desc: "wait up to this long (a Go duration) for the final outcome"}),

		withQuery(r("GET", "/audit-log", RoleAdmin, "listAuditLog", "The operator audit log, newest first", s.listAuditLog), qLimit, qCursor),
		r("GET", "/tokens", RoleAdmin, "listTokens", "The API tokens (never the tokens themselves)", s.listTokens),
		withBody(r("POST", "/tokens", RoleAdmin, "createToken", "Create an API token; the token is shown once", s.createToken), "token"),
		r("DELETE", "/tokens/{id}", RoleAdmin, "revokeToken", "Revoke an API token", s.revokeToken),
	}
}

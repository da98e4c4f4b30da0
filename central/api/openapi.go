package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"time"
)

// listPage is the shape of a paged list's answer, for the OpenAPI
// document: page[T] with its item type.
type listPage[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// responseTypes are the Go types of the main routes' answers, by
// operation id, from which the OpenAPI document's response schemas are
// derived.
var responseTypes = map[string]reflect.Type{
	"getMe":           reflect.TypeFor[Principal](),
	"listEdges":       reflect.TypeFor[[]EdgeStatus](),
	"getEdge":         reflect.TypeFor[EdgeStatus](),
	"listDoors":       reflect.TypeFor[[]DoorItem](),
	"listThings":      reflect.TypeFor[[]ThingStatus](),
	"listEvents":      reflect.TypeFor[listPage[EventItem]](),
	"listDecisions":   reflect.TypeFor[listPage[DecisionItem]](),
	"listCommands":    reflect.TypeFor[listPage[CommandItem]](),
	"listCredentials": reflect.TypeFor[[]CredentialItem](),
	"getCredential":   reflect.TypeFor[CredentialItem](),
	"listGroups":      reflect.TypeFor[[]GroupItem](),
	"listSchedules":   reflect.TypeFor[[]ScheduleItem](),
	"listAuditLog":    reflect.TypeFor[listPage[AuditEntry]](),
	"listTokens":      reflect.TypeFor[[]Token](),
}

// schemaOf returns a JSON schema of t as encoding/json writes it: the
// exported fields by their JSON names, times as date-time strings.
func schemaOf(t reflect.Type) map[string]any {
	switch {
	case t == reflect.TypeFor[time.Time]():
		return dateTime()
	case t == reflect.TypeFor[json.RawMessage]():
		return map[string]any{}
	case t.Implements(reflect.TypeFor[json.Marshaler]()) || t.Implements(reflect.TypeFor[interface{ MarshalText() ([]byte, error) }]()):
		return map[string]any{"type": "string"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem())
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Struct:
		props := map[string]any{}
		addFields(t, props)
		return map[string]any{"type": "object", "properties": props}
	}
	return map[string]any{}
}

// addFields adds the JSON fields of struct type t, embedded structs'
// included, to props.
func addFields(t reflect.Type, props map[string]any) {
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(ft, props)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = schemaOf(f.Type)
	}
}

// bodySchemas are the JSON schemas of the request bodies, by the name a
// route's body refers to.
var bodySchemas = map[string]map[string]any{
	"credentialCreate": object(map[string]any{
		"card": str("the card number; hashed by central, never stored or echoed"), "pin": str("a PIN instead of a card; hashed likewise"),
		"id":     str("instead of card or pin: the credential's keyed hash (64 lower-case hex), made with the org's hash key where the number was read"),
		"kind":   map[string]any{"type": "string", "enum": []string{"card", "pin"}, "description": "with id: what the hash is of"},
		"holder": str("who holds it"), "doors": strs("doors it opens"), "groups": strs("door groups whose doors it opens"),
		"schedules": strs("schedules that say when it may be used"), "valid_from": dateTime(), "valid_until": dateTime(),
	}, "holder"),
	"credentialUpdate": object(map[string]any{
		"holder": str("who holds it"), "doors": strs(""), "groups": strs(""), "schedules": strs(""),
		"valid_from": dateTime(), "valid_until": dateTime(),
	}, "holder"),
	"reason":   object(map[string]any{"reason": str("why, as decisions and the audit record it")}, "reason"),
	"group":    object(map[string]any{"doors": strs("the doors of the group")}, "doors"),
	"schedule": object(map[string]any{"intervals": map[string]any{"type": "array", "items": map[string]any{"type": "object"}}}, "intervals"),
	"rules":    {"type": "object", "description": "a rules document, as package edgekit/rules reads it"},
	"command": object(map[string]any{
		"thing": str("EDGE.TYPE.CODE"), "action": str("such as unlock"),
		"params":          map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
		"deadline":        str("how long it stays valid, a Go duration; default 1m"),
		"idempotency_key": str("the same key carries out the same effect once; default a new key"),
	}, "thing", "action"),
	"tokenLogin": object(map[string]any{"token": str("an API token")}, "token"),
	"token":      object(map[string]any{"name": str("what the token is for"), "role": map[string]any{"type": "string", "enum": []string{"viewer", "operator", "admin"}}}, "name", "role"),
}

func object(props map[string]any, required ...string) map[string]any {
	return map[string]any{"type": "object", "properties": props, "required": required, "additionalProperties": false}
}

func str(desc string) map[string]any {
	if desc == "" {
		return map[string]any{"type": "string"}
	}
	return map[string]any{"type": "string", "description": desc}
}

func strs(desc string) map[string]any {
	m := map[string]any{"type": "array", "items": map[string]any{"type": "string"}}
	if desc != "" {
		m["description"] = desc
	}
	return m
}

func dateTime() map[string]any { return map[string]any{"type": "string", "format": "date-time"} }

// OpenAPI returns the API's OpenAPI 3.1 document, built from its route
// table.
func (s *Server) OpenAPI() map[string]any {
	problem := map[string]any{"description": "RFC 9457 problem details",
		"content": map[string]any{ContentTypeProblem: map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}}}}
	paths := map[string]any{}
	for _, rt := range s.routes {
		p := PathPrefix + rt.Path
		item, _ := paths[p].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[p] = item
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range rt.query {
			params = append(params, map[string]any{"name": q.name, "in": "query", "required": q.required, "description": q.desc,
				"schema": map[string]any{"type": "string"}})
		}
		success := map[string]any{"application/json": map[string]any{}}
		if t, ok := responseTypes[rt.ID]; ok {
			success = map[string]any{"application/json": map[string]any{"schema": schemaOf(t)}}
		}
		if rt.ID == "streamEvents" {
			success = map[string]any{"text/event-stream": map[string]any{
				"schema": map[string]any{"type": "string", "description": "server-sent events: each named \"event\", its id the " +
					"event's stream sequence and its data the event as listEvents lists it, in JSON (x-lintel-event-data); " +
					"comment lines keep the connection alive; an event named \"ended\" closes the stream of a session that " +
					"was logged out or of an API token that was revoked"},
				"x-lintel-event-data": schemaOf(reflect.TypeFor[EventItem]()),
			}}
		}
		op := map[string]any{
			"operationId": rt.ID, "summary": rt.Summary, "x-lintel-role": rt.Role.String(),
			"responses": map[string]any{
				"2XX":     map[string]any{"description": "success", "content": success},
				"400":     problem,
				"default": problem,
			},
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.Role == RolePublic {
			op["security"] = []any{}
		} else {
			resp := op["responses"].(map[string]any)
			resp["401"], resp["403"] = problem, problem
		}
		if rt.body != "" {
			op["requestBody"] = map[string]any{"required": true,
				"content": map[string]any{"application/json": map[string]any{"schema": bodySchemas[rt.body]}}}
		}
		item[strings.ToLower(rt.Method)] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "Lintel central API", "version": "1",
			"description": "Central's API for org " + s.org + ". Every route declares the lowest role it needs (x-lintel-role): viewer < operator < admin. Errors are RFC 9457 problem details."},
		"servers":  []any{map[string]any{"url": "/"}},
		"paths":    paths,
		"security": []any{map[string]any{"bearer": []any{}}, map[string]any{"session": []any{}}},
		"components": map[string]any{
			"securitySchemes": map[string]any{
				"bearer":  map[string]any{"type": "http", "scheme": "bearer", "description": "an API token (lintel_…) or a JWT of the OIDC provider"},
				"session": map[string]any{"type": "apiKey", "in": "cookie", "name": sessionCookie, "description": "the console's session; unsafe methods need the " + csrfHeader + " header"},
			},
			"schemas": map[string]any{"Problem": object(map[string]any{
				"type": str(""), "title": str(""), "status": map[string]any{"type": "integer"}, "detail": str(""), "field": str("the request field at fault"),
			}, "type", "title", "status")},
		},
	}
}

func (s *Server) getOpenAPI(c *call) (any, error) {
	c.raw = true
	writeJSON(c.w, http.StatusOK, s.OpenAPI())
	return nil, nil
}

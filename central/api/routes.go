package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/edgekit/rules"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/topic"
)

// maxBody bounds a request body.
const maxBody = 1 << 20

// Route is one route of the API, as [Server.Routes] lists it and the
// OpenAPI document describes it.
type Route struct {
	// Method and Path, relative to PathPrefix, such as
	// "GET" "/edges/{edge}".
	Method, Path string
	// Role is the lowest role allowed; RolePublic needs no
	// authentication.
	Role Role
	// ID is the OpenAPI operationId, and the action the operator audit
	// log records for a change.
	ID string
	// Summary says what the route does.
	Summary string
}

// param is a query parameter of a route, for the OpenAPI document.
type param struct {
	name, desc string
	required   bool
}

// call is one request as a handler sees it.
type call struct {
	w      http.ResponseWriter
	r      *http.Request
	p      *Principal // nil on a public route
	status int        // of the response; 200 if left zero
	change *change    // set by a handler that changed something
	raw    bool       // the handler wrote the response itself
}

// route is a Route with its handler and documentation.
type route struct {
	Route
	query   []param
	body    string // what the request body holds; "" for none
	handler func(*call) (any, error)
}

// Routes returns the API's routes, in the order the OpenAPI document
// lists them.
func (s *Server) Routes() []Route {
	out := make([]Route, len(s.routes))
	for i, r := range s.routes {
		out[i] = r.Route
	}
	return out
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// buildMux returns the handler serving every route of the table, and a
// problem for anything else.
func (s *Server) buildMux() http.Handler {
	mux := http.NewServeMux()
	allowed := map[string][]string{} // path -> methods
	for i := range s.routes {
		rt := &s.routes[i]
		mux.Handle(rt.Method+" "+PathPrefix+rt.Path, s.serve(rt))
		allowed[rt.Path] = append(allowed[rt.Path], rt.Method)
	}
	// Another method on a route's path: a problem, not the mux's text.
	for path, methods := range allowed {
		allow := strings.Join(methods, ", ")
		if slices.Contains(methods, "GET") {
			allow += ", HEAD"
		}
		mux.HandleFunc(PathPrefix+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			s.writeProblem(w, r, problemf(http.StatusMethodNotAllowed, slugMethodNotAllowed, "", "%s %s: allowed %s", r.Method, r.URL.Path, allow))
		})
	}
	s.registerConsole(mux)
	mux.HandleFunc(PathPrefix+"/", func(w http.ResponseWriter, r *http.Request) {
		s.writeProblem(w, r, problemf(http.StatusNotFound, slugNoSuchRoute, "", "no route %s %s; GET %s/openapi.json lists them", r.Method, r.URL.Path, PathPrefix))
	})
	return securityHeaders(mux)
}

// securityHeaders sets the headers every API response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		next.ServeHTTP(w, r) // the console's pages set their own policy
	})
}

// serve wraps rt's handler: authentication and the role check, the
// handler, the operator audit log of a change, and the response.
func (s *Server) serve(rt *route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &call{w: w, r: r}
		if rt.Role != RolePublic {
			p, err := s.authenticate(r)
			if err != nil {
				s.logRefusedCredentials(r, err)
				s.writeProblem(w, r, err)
				return
			}
			if p.Role < rt.Role {
				s.sec.Log(slog.LevelWarn, authz.SecurityPermissionViolation, "api: route refused to the caller's role",
					logKeyUser, p.Subject, logKeyName, p.Name, logKeySource, s.clientAddr(r), logKeyRoute, r.Method+" "+r.URL.Path,
					logKeyRole, p.Role.String(), logKeyNeeds, rt.Role.String())
				s.writeProblem(w, r, problemf(http.StatusForbidden, slugForbidden, "",
					"%s %s needs role %s; %s has %s", rt.Method, PathPrefix+rt.Path, rt.Role, p.who(), p.Role))
				return
			}
			c.p = p
			r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
			c.r = r
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		v, err := rt.handler(c)
		if c.change != nil {
			// A change is logged even when the handler failed after making
			// it (a state change that succeeded at some edges only).
			ctx, cancel := s.call(context.WithoutCancel(r.Context()))
			lerr := s.oplog.record(ctx, r, rt, c.p, c.change)
			cancel()
			if lerr != nil {
				s.log.Error("a change was made but not written to the operator audit log", "action", rt.ID, "object", c.change.object, "err", lerr)
				if err == nil {
					err = problemf(http.StatusInternalServerError, slugInternal, "", "the change was made, but the operator audit log could not record it")
				}
			}
		}
		if err != nil {
			s.writeProblem(w, r, libProblem(err))
			return
		}
		if c.raw {
			return
		}
		if c.status == 0 {
			c.status = http.StatusOK
		}
		if v == nil {
			w.WriteHeader(c.status)
			return
		}
		writeJSON(w, c.status, v)
	})
}

// decode reads the request body, one JSON object, strictly: unknown
// fields are refused with a problem naming them.
func (c *call) decode(v any) error {
	dec := json.NewDecoder(c.r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return problemf(http.StatusRequestEntityTooLarge, slugTooLarge, "", "the body is over %d bytes", maxBody)
		case errors.Is(err, io.EOF):
			return invalid("", "the request needs a JSON body")
		case errors.As(err, &ute):
			return invalid(ute.Field, "field %q: want %s, got %s", ute.Field, ute.Type, ute.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return invalid(f, "unknown field %q", f)
		}
		return invalid("", "the body is not valid JSON: %v", err)
	}
	if dec.More() {
		return invalid("", "data after the JSON object")
	}
	return nil
}

// readBody reads the raw request body.
func (c *call) readBody() ([]byte, error) {
	b, err := io.ReadAll(c.r.Body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, problemf(http.StatusRequestEntityTooLarge, slugTooLarge, "", "the body is over %d bytes", maxBody)
	}
	return b, err
}

// libProblem maps the libraries' errors to problems: what names a bad
// request becomes a 400 naming the field, what is missing a 404.
func libProblem(err error) error {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var fe *access.FieldError
	var re *rules.RuleError
	var te *topic.Error
	switch {
	case errors.As(err, &fe):
		if fe.Field == "state" && errors.Is(err, access.ErrInvalid) {
			// A state the stored credential cannot take (a revocation is final).
			return problemf(http.StatusConflict, slugConflict, "state", "%v", err)
		}
		return invalid(fe.Field, "%v", err)
	case errors.As(err, &re):
		f := re.Field
		if re.Rule != "" {
			f = "rules[" + re.Rule + "]." + f
		}
		return invalid(f, "%v", err)
	case errors.As(err, &te):
		return invalid(string(te.Part), "%v", err)
	case errors.Is(err, access.ErrNotFound), errors.Is(err, edgekit.ErrUnknownCommand), errors.Is(err, jetstream.ErrKeyNotFound):
		return problemf(http.StatusNotFound, slugNotFound, "", "%v", err)
	case errors.Is(err, access.ErrInvalid):
		return problemf(http.StatusConflict, slugConflict, "", "%v", err)
	case errors.Is(err, edgekit.ErrUnknownThing), errors.Is(err, edgekit.ErrWrongOrg):
		return invalid("thing", "%v", err)
	case errors.Is(err, edgekit.ErrNoDeadline), errors.Is(err, edgekit.ErrCommandExpired):
		return invalid("deadline", "%v", err)
	case errors.Is(err, storage.ErrInvalidCursor):
		return invalid("cursor", "%v", err)
	case errors.Is(err, storage.ErrInvalidQuery):
		return invalid("", "%v", err)
	case errors.Is(err, jetstream.ErrBucketNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		return problemf(http.StatusServiceUnavailable, slugUnavailable, "", "not provisioned on central yet: %v", err)
	case errors.Is(err, context.DeadlineExceeded):
		return problemf(http.StatusGatewayTimeout, slugUnavailable, "", "central did not answer in time")
	}
	return fmt.Errorf("api: %w", err)
}

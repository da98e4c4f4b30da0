package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/lintel-io/lintel/internal/problem"
)

// ContentTypeProblem is the media type of the API's error responses, RFC
// 9457 problem details.
const ContentTypeProblem = problem.ContentType

// ProblemTypePrefix begins the type URI of every problem the API answers
// with; the rest is the problem's slug, such as "invalid-request".
const ProblemTypePrefix = "https://lintel.io/problems/api/"

// Problem is an RFC 9457 problem details object, the body of every error
// response of the API. Field, when set, names the request field at fault
// (a JSON key, a query or path parameter).
type Problem struct {
	Type   string `json:"type"`             // ProblemTypePrefix followed by the slug
	Title  string `json:"title"`            // a short summary, such as "invalid request"
	Status int    `json:"status"`           // the HTTP status code
	Detail string `json:"detail,omitempty"` // what is wrong in this case
	Field  string `json:"field,omitempty"`  // the request field at fault
}

// Error returns the problem's title and detail.
func (p *Problem) Error() string {
	if p.Detail == "" {
		return "api: " + p.Title
	}
	return "api: " + p.Title + ": " + p.Detail
}

// Slug returns the last part of the problem's type URI.
func (p Problem) Slug() string { return p.Type[len(ProblemTypePrefix):] }

// Slugs of the problems the API answers with.
const (
	slugInvalid          = "invalid-request"
	slugUnauthorized     = "unauthorized"
	slugForbidden        = "forbidden"
	slugNotFound         = "not-found"
	slugNoSuchRoute      = "no-such-route"
	slugMethodNotAllowed = "method-not-allowed"
	slugConflict         = "conflict"
	slugUnavailable      = "unavailable"
	slugInternal         = "internal"
	slugTooLarge         = "body-too-large"
	slugCSRF             = "csrf-token-mismatch"
	slugLoginFailed      = "login-failed"
	slugLoginThrottle    = "login-throttled"
)

var titles = map[string]string{
	slugInvalid: "invalid request", slugUnauthorized: "authentication required", slugForbidden: "forbidden",
	slugNotFound: "not found", slugNoSuchRoute: "no such route", slugMethodNotAllowed: "method not allowed", slugConflict: "conflict",
	slugUnavailable: "service unavailable", slugInternal: "internal error", slugTooLarge: "request body too large",
	slugCSRF: "CSRF token missing or wrong", slugLoginFailed: "login failed", slugLoginThrottle: "too many failed logins",
}

// problemf returns a problem with status, slug, the field at fault and a
// detail.
func problemf(status int, slug, field, format string, args ...any) *Problem {
	return &Problem{Type: ProblemTypePrefix + slug, Title: titles[slug], Status: status,
		Detail: fmt.Sprintf(format, args...), Field: field}
}

// invalid returns the 400 problem for field.
func invalid(field, format string, args ...any) *Problem {
	return problemf(http.StatusBadRequest, slugInvalid, field, format, args...)
}

// writeProblem writes err as a problem: a *Problem as it is, anything
// else as a 500 whose detail is not shown (it is logged).
func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	var p *Problem
	if !errors.As(err, &p) {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		p = problemf(http.StatusInternalServerError, slugInternal, "", "the request failed; central's log has the cause")
	}
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lintel"`)
	}
	problem.Write(w, p.Status, p)
}

// writeJSON writes v as a JSON response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

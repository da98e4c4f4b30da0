// Package problem writes RFC 9457 problem details responses, the error
// bodies of central's API (central/api) and of the gateway. Each package
// keeps its own problem type, with the members it needs; Write frames it.
package problem

import (
	"encoding/json"
	"net/http"
)

// ContentType is the media type of a problem details response.
const ContentType = "application/problem+json"

// Write writes p, a problem details object, as the response with status:
// as JSON of [ContentType], never to be cached, with whatever headers the
// caller set on w before.
func Write(w http.ResponseWriter, status int, p any) {
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

package gateway

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/lintel-io/lintel/internal/problem"
	"github.com/lintel-io/lintel/message"
)

// ContentTypeProblem is the media type of the gateway's error responses,
// RFC 9457 problem details.
const ContentTypeProblem = problem.ContentType

// ProblemTypePrefix begins the type URI of every problem the gateway
// answers with; the rest is the problem's slug, such as "subject-not-allowed".
const ProblemTypePrefix = "https://lintel.io/problems/"

// Problem is an RFC 9457 problem details object, the body of every error
// response of the gateway. Field and ID, when set, name what is wrong: the
// envelope attribute (such as "source" or "time") and the event.
type Problem struct {
	Type   string `json:"type"`             // [ProblemTypePrefix] followed by the problem's slug
	Title  string `json:"title"`            // a short summary, such as "subject not allowed"
	Status int    `json:"status"`           // the HTTP status code
	Detail string `json:"detail,omitempty"` // what is wrong in this case
	// Field is the CloudEvents attribute or HTTP header at fault, if any.
	Field string `json:"field,omitempty"`
	// Subject is the NATS subject a refused message would have used.
	Subject string `json:"subject,omitempty"`
	// ID is the id of the event at fault, when known.
	ID string `json:"id,omitempty"`

	retryAfter time.Duration
}

// Error returns the problem's title and detail, so that a Problem can
// travel as an error.
func (p *Problem) Error() string {
	if p.Detail == "" {
		return "gateway: " + p.Title
	}
	return "gateway: " + p.Title + ": " + p.Detail
}

// Slug returns the last part of the problem's type URI, such as
// "subject-not-allowed".
func (p Problem) Slug() string { return p.Type[len(ProblemTypePrefix):] }

// Slugs of the problems the gateway answers with.
const (
	SlugUnauthorized      = "unauthorized"
	SlugLoginThrottled    = "login-throttled"
	SlugSubjectNotAllowed = "subject-not-allowed"
	SlugTooLarge          = "body-too-large"
	SlugEventTooLarge     = "event-too-large"
	SlugUnsupportedMedia  = "unsupported-media-type"
	SlugMalformed         = "malformed-envelope"
	SlugRateLimited       = "rate-limited"
	SlugNotStored         = "not-stored"
	SlugUnavailable       = "unavailable"
	SlugNoResponders      = "no-responders"
	SlugNotFound          = "not-found"
	SlugMethodNotAllowed  = "method-not-allowed"
)

func newProblem(status int, slug, title, detail string) *Problem {
	return &Problem{Type: ProblemTypePrefix + slug, Title: title, Status: status, Detail: detail}
}

// malformed returns the 422 problem for an envelope that cannot be
// decoded, naming the attribute at fault.
func malformed(err error, id string) *Problem {
	p := newProblem(http.StatusUnprocessableEntity, SlugMalformed, "malformed envelope", err.Error())
	var de *message.DecodeError
	if errors.As(err, &de) {
		p.Field = de.Field
	}
	p.ID = id
	return p
}

// writeProblem writes p as the response.
func writeProblem(w http.ResponseWriter, p *Problem) {
	h := w.Header()
	if p.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((p.retryAfter+time.Second-1)/time.Second)))
	}
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="lintel", charset="UTF-8"`)
	}
	problem.Write(w, p.Status, p)
}

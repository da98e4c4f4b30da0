package gateway

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// postRequest sends a request (one event of type io.lintel.req…, in
// structured or binary content mode) as the device and answers with the
// reply, which arrives in the device's own inbox, in the same mode.
func (g *Gateway) postRequest(w http.ResponseWriter, r *http.Request, s *session) {
	ct := r.Header.Get("Content-Type")
	binary := !isMedia(ct, message.ContentTypeCloudEventsJSON)
	if binary && r.Header.Get("Ce-Specversion") == "" {
		p := newProblem(http.StatusUnsupportedMediaType, SlugUnsupportedMedia, "unsupported media type",
			fmt.Sprintf("Content-Type %q: a request is one %s event, or one in binary content mode (ce-* headers)", ct, message.ContentTypeCloudEventsJSON))
		p.Field = "Content-Type"
		g.problem(w, p)
		return
	}
	body, p := readBody(r, g.cfg.MaxBodyBytes)
	if p != nil {
		g.problem(w, p)
		return
	}
	if binary {
		if body, p = binaryToStructured(r.Header, body); p != nil {
			g.problem(w, p)
			return
		}
	}
	e, p := g.decode(body)
	if p != nil {
		g.problem(w, p)
		return
	}
	subj := e.Subject().String()
	if e.Source != s.thing || !s.permissions().Allowed(subj, authz.Publish) || e.Type != topic.Request {
		p := newProblem(http.StatusForbidden, SlugSubjectNotAllowed, "subject not allowed",
			fmt.Sprintf("device %s may not send a request on %s", s.thing, subj))
		p.Subject, p.ID, p.Field = subj, e.ID.String(), "source"
		if e.Source == s.thing {
			p.Field = "type"
		}
		g.problem(w, p)
		return
	}
	msg, err := e.ToMsg(nil)
	if err != nil {
		g.problem(w, malformed(err, e.ID.String()))
		return
	}
	ctx, cancel := g.opCtx(r.Context())
	defer cancel()
	reply, err := s.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		p := newProblem(http.StatusGatewayTimeout, SlugUnavailable, "no reply", err.Error())
		if errors.Is(err, nats.ErrNoResponders) {
			p = newProblem(http.StatusServiceUnavailable, SlugNoResponders, "no responders", "nobody answers requests on "+subj)
		}
		p.ID = e.ID.String()
		g.problem(w, p)
		return
	}
	re := new(message.Envelope)
	if err := message.DecodeMsg(reply, re, nil); err != nil {
		p := newProblem(http.StatusBadGateway, SlugUnavailable, "invalid reply", err.Error())
		p.ID = e.ID.String()
		g.problem(w, p)
		return
	}
	if binary {
		if err := re.Validate(); err != nil {
			p := newProblem(http.StatusBadGateway, SlugUnavailable, "invalid reply", err.Error())
			p.ID = e.ID.String()
			g.problem(w, p)
			return
		}
		writeBinary(w, http.StatusOK, re)
		return
	}
	b, err := re.AppendCloudEvent(nil)
	if err != nil {
		p := newProblem(http.StatusBadGateway, SlugUnavailable, "invalid reply", err.Error())
		p.ID = e.ID.String()
		g.problem(w, p)
		return
	}
	w.Header().Set("Content-Type", message.ContentTypeCloudEventsJSON)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// apiPrefix is where central's API serves its routes, below api_url.
const apiPrefix = "/api/v1"

// apiClient is central's HTTP API as the context names it (api_url,
// api_token_file, api_ca_file): the live commands go through it instead of NATS when
// the context has one.
type apiClient struct {
	cx    *config.Context
	base  string // api_url with apiPrefix
	token authz.Secret
	hc    *http.Client
}

// viaAPI checks the flags and reads the context; it returns a client of
// central's API when the context names one, nil when the command goes over
// NATS.
func (f *liveFlags) viaAPI() (*apiClient, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	cx, err := f.loadContext()
	if err != nil {
		return nil, err
	}
	if cx.APIURL == "" {
		return nil, nil
	}
	tok, err := cx.APIToken()
	if err != nil {
		return nil, err
	}
	roots, err := cx.APIRootCAs()
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(strings.TrimSuffix(cx.APIURL, "/"), apiPrefix)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return &apiClient{cx: cx, base: base + apiPrefix, token: tok, hc: &http.Client{Transport: tr}}, nil
}

func (c *apiClient) close() { c.hc.CloseIdleConnections() }

// apiError is a problem central's API answered with (RFC 9457): its
// status, detail and the request field at fault.
type apiError struct {
	method, path string
	status       int
	Title        string `json:"title"`
	Detail       string `json:"detail"`
	Field        string `json:"field"`
}

func (e *apiError) Error() string {
	title := e.Title
	if title == "" {
		title = strings.ToLower(http.StatusText(e.status))
	}
	msg := fmt.Sprintf("central's API: %s %s: %d %s", e.method, e.path, e.status, title)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Field != "" {
		msg += " (field " + e.Field + ")"
	}
	return msg
}

// do sends one request: body is JSON-encoded, or sent as is when []byte;
// a 2xx response is decoded into out (written as is when out is
// *[]byte); any other is returned as an [*apiError].
func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	resp, err := c.send(ctx, method, path, query, body, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("central's API: %s %s: %w", method, path, err)
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = data
		return nil
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("central's API: %s %s: the answer does not decode: %w", method, path, err)
	}
	return nil
}

// send sends one request and returns a 2xx response, or the problem.
func (c *apiClient) send(ctx context.Context, method, path string, query url.Values, body any, accept string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				return nil, err
			}
		}
		rd = bytes.NewReader(b)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("central's API: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token.Reveal())
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "lintelctl")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("central's API at %s: %w", c.cx.APIURL, err)
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	e := &apiError{method: method, path: apiPrefix + path, status: resp.StatusCode}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(data, e) != nil && len(data) > 0 && len(data) < 512 {
		e.Detail = strings.TrimSpace(string(data))
	}
	return nil, e
}

// problemField returns the field of the API's problem err carries, "" for
// none.
func problemField(err error) (status int, field string) {
	var e *apiError
	if errors.As(err, &e) {
		return e.status, e.Field
	}
	return 0, ""
}

// thingRef returns t as the API names things: EDGE.TYPE.CODE.
func thingRef(t topic.Thing) string { return t.Edge + "." + t.Type + "." + t.Code }

// statusAPI is "status" through the API: GET /edges.
func (a *app) statusAPI(ctx context.Context, o *liveFlags, c *apiClient, names []string) error {
	call, cancel := o.call(ctx)
	defer cancel()
	var all []central.EdgeStatus
	if err := c.do(call, "GET", "/edges", nil, nil, &all); err != nil {
		return err
	}
	out := all
	if len(names) > 0 {
		out = nil
		for _, n := range names {
			i := slices.IndexFunc(all, func(s central.EdgeStatus) bool { return s.Edge == n })
			if i < 0 {
				return fmt.Errorf("edge %q: not an edge of org %s in the inventory", n, c.cx.Org)
			}
			out = append(out, all[i])
		}
	}
	return a.printStatus(o, out)
}

// credAddAPI is "cred add" through the API: the card number or PIN is
// hashed here, with the context's hash_key_file, and only its hash (the
// credential's id) and kind go to central; without hash_key_file it
// refuses rather than send the number. A credential the edge already holds
// is updated in place (holder, doors, groups, schedules, validity; its
// state stays).
func (a *app) credAddAPI(ctx context.Context, o *credAddOptions, c *apiClient, edge string, cred message.Credential, kind message.CredentialKind, cr *access.Credential) error {
	key, err := c.cx.HashKey()
	if err != nil {
		return fmt.Errorf("%w (a card number or PIN leaves this machine only as its hash)", err)
	}
	body := map[string]any{"holder": cr.Holder, "doors": cr.Doors, "groups": cr.Groups, "schedules": cr.Schedules}
	for k, t := range map[string]time.Time{"valid_from": cr.ValidFrom, "valid_until": cr.ValidUntil} {
		if !t.IsZero() {
			body[k] = t.Format(time.RFC3339Nano)
		}
	}
	call, cancel := o.call(ctx)
	defer cancel()
	path := "/edges/" + url.PathEscape(edge) + "/credentials"
	var row credRow
	id := cred.Hash(key)
	created := maps.Clone(body)
	created["id"], created["kind"] = id, string(kind)
	err = c.do(call, "POST", path, nil, created, &row)
	if status, field := problemField(err); status == http.StatusConflict && field == "id" {
		// Held already: replace what may change.
		err = c.do(call, "PUT", path+"/"+id, nil, body, &row)
	}
	if err != nil {
		return fmt.Errorf("add the credential of %s at %s: %w", o.holder, edge, err)
	}
	if o.json() {
		return a.writeJSON(row)
	}
	fmt.Fprintf(a.stdout, "added %s (%s) for %s at %s: credential set version %d\n", row.ID, kind, row.Holder, edge, row.Revision)
	return nil
}

// credStateAPI is "cred suspend|reinstate|revoke" through the API. The API
// names credentials by id only: --card and --pin are hashed here, with the
// context's hash_key_file.
func (a *app) credStateAPI(ctx context.Context, o *credStateOptions, c *apiClient, state access.CredentialState, args []string, stdin io.Reader) error {
	cred, _, ok, err := o.secret(stdin)
	if err != nil {
		return err
	}
	if ok == (len(args) == 1) {
		return usagef("name the credential by its ID or by --card or --pin, one of them")
	}
	var id string
	if ok {
		key, err := c.cx.HashKey()
		if err != nil {
			return fmt.Errorf("%w (the API names credentials by ID only: give the ID \"cred list\" shows)", err)
		}
		id = cred.Hash(key)
	} else {
		if err := access.ValidCredentialID(args[0]); err != nil {
			return usagef("credential ID %q: %v", args[0], err)
		}
		id = args[0]
	}
	verb := map[access.CredentialState]string{access.StateSuspended: "suspend", access.StateActive: "reinstate", access.StateRevoked: "revoke"}[state]
	var body any
	if state != access.StateActive {
		body = map[string]string{"reason": o.reason}
	}
	call, cancel := o.call(ctx)
	defer cancel()
	var rep stateReport
	if err := c.do(call, "POST", "/credentials/"+id+"/"+verb, nil, body, &rep); err != nil {
		return fmt.Errorf("%s %s: %w", state, id, err)
	}
	if rep.Revisions == nil {
		rep.Revisions = map[string]uint64{}
	}
	if o.json() {
		return a.writeJSON(rep)
	}
	for _, e := range slices.Sorted(maps.Keys(rep.Revisions)) {
		fmt.Fprintf(a.stdout, "%s %s at %s: credential set version %d\n", id, state, e, rep.Revisions[e])
	}
	return nil
}

// credentials is GET /edges/{edge}/credentials, as "cred list" prints it.
func (c *apiClient) credentials(ctx context.Context, edge string) ([]credRow, error) {
	var rows []credRow
	err := c.do(ctx, "GET", "/edges/"+url.PathEscape(edge)+"/credentials", nil, nil, &rows)
	return rows, err
}

// putNamedAPI is "cred group put" and "cred schedule put" through the API.
func (a *app) putNamedAPI(ctx context.Context, o *liveFlags, c *apiClient, edge, kind, name string, body []byte) error {
	call, cancel := o.call(ctx)
	defer cancel()
	var ch struct {
		Revision uint64 `json:"revision"`
	}
	if err := c.do(call, "PUT", "/edges/"+url.PathEscape(edge)+"/"+kind+"s/"+url.PathEscape(name), nil, body, &ch); err != nil {
		return fmt.Errorf("store %s %s at %s: %w", kind, name, edge, err)
	}
	if o.json() {
		return a.writeJSON(map[string]any{"edge": edge, kind: name, "revision": ch.Revision})
	}
	fmt.Fprintf(a.stdout, "stored %s %s at %s: credential set version %d\n", kind, name, edge, ch.Revision)
	return nil
}

// rulesPutAPI is "rules put" (PUT, which needs an admin token) and "rules
// validate" (POST .../validate) through the API.
func (a *app) rulesPutAPI(ctx context.Context, o *liveFlags, c *apiClient, edge, file string, doc []byte, store bool) error {
	call, cancel := o.call(ctx)
	defer cancel()
	method, path := "POST", "/edges/"+url.PathEscape(edge)+"/rules/validate"
	if store {
		method, path = "PUT", "/edges/"+url.PathEscape(edge)+"/rules"
	}
	var rep ruleReport
	if err := c.do(call, method, path, nil, doc, &rep); err != nil {
		if status, field := problemField(err); status == http.StatusNotFound && field == "edge" {
			return err
		}
		return fmt.Errorf("%s: %w", file, err)
	}
	if o.json() {
		return a.writeJSON(rep)
	}
	if store {
		fmt.Fprintf(a.stdout, "stored %d rules for %s: credential set version %d\n", rep.Rules, edge, rep.Revision)
	} else {
		fmt.Fprintf(a.stdout, "%s: %d rules, valid for %s\n", file, rep.Rules, edge)
	}
	return nil
}

// rulesGetAPI is "rules get" through the API.
func (a *app) rulesGetAPI(ctx context.Context, o *liveFlags, c *apiClient, edge string) error {
	call, cancel := o.call(ctx)
	defer cancel()
	var doc []byte
	if err := c.do(call, "GET", "/edges/"+url.PathEscape(edge)+"/rules", nil, nil, &doc); err != nil {
		return err
	}
	_, err := a.stdout.Write(doc)
	return err
}

// auditAPI is the report of "audit verify" through the API.
func (c *apiClient) audit(ctx context.Context, edge string) (*access.AuditReport, error) {
	r := new(access.AuditReport)
	if err := c.do(ctx, "GET", "/edges/"+url.PathEscape(edge)+"/audit", nil, nil, r); err != nil {
		return nil, err
	}
	return r, nil
}

// apiCommand is a command's report as the API answers it.
type apiCommand struct {
	ID       string    `json:"id"`
	Deadline time.Time `json:"deadline"`
	Status   string    `json:"status"`
	Final    bool      `json:"final"`
	Error    string    `json:"error"`
}

// sendCommandAPI is "command send" through the API: POST /commands, then,
// with --wait, the thing's acks in the live event stream (opened before
// sending), timed as lintelctl sees them.
func (a *app) sendCommandAPI(ctx context.Context, o *commandOptions, c *apiClient, thing, action string, params map[string]string) error {
	t, err := parseThing(c.cx.Org, thing)
	if err != nil {
		return err
	}
	if o.key == "" {
		o.key = newIdempotencyKey()
	}
	call, cancel := o.call(ctx)
	defer cancel()
	var acks <-chan *apiEvent
	if o.wait {
		// The thing's acks, from before the command is sent.
		st, err := c.openStream(call, url.Values{"thing": {thingRef(t)}}, o.timeout)
		if err != nil {
			return fmt.Errorf("send %s to %s: %w", action, t, err)
		}
		ch, done := make(chan *apiEvent, 16), make(chan struct{})
		gctx, gcancel := context.WithCancel(call)
		acks = ch
		go func() {
			defer close(done)
			defer close(ch)
			for {
				ev, err := st.next()
				if err != nil {
					return
				}
				if ev.Type != string(topic.Ack) {
					continue
				}
				select {
				case ch <- ev:
				case <-gctx.Done():
					return
				}
			}
		}()
		defer func() { gcancel(); st.close(); <-done }()
	}
	sent := time.Now()
	var res apiCommand
	body := map[string]any{"thing": thingRef(t), "action": action, "params": params, "deadline": o.deadline.String(), "idempotency_key": o.key}
	if err := c.do(call, "POST", "/commands", nil, body, &res); err != nil {
		return fmt.Errorf("send %s to %s: %w", action, t, err)
	}
	rep := commandReport{ID: res.ID, Thing: t.String(), Action: action, Params: params,
		Deadline: res.Deadline.UTC(), SentAt: sent.UTC(), Status: "pending"}
	if !o.json() {
		fmt.Fprintf(a.stdout, "sent      %s %s to %s (deadline %s)\n", rep.ID, action, t, rep.Deadline.Format(time.RFC3339))
	}
	if !o.wait {
		if o.json() {
			return a.writeJSON(rep)
		}
		return nil
	}
	out, err := a.waitCommandAPI(call, o, c, t, &rep, sent, acks)
	if err != nil {
		if o.json() {
			_ = a.writeJSON(rep)
		}
		return fmt.Errorf("waiting for the outcome of %s: %w", rep.ID, err)
	}
	rep.Status, rep.Error, rep.DoneAfter = out.Status, out.Error, since(sent)
	if o.json() {
		if err := a.writeJSON(rep); err != nil {
			return err
		}
	} else {
		line := fmt.Sprintf("%-9s after %s", rep.Status, rep.DoneAfter)
		if rep.Error != "" {
			line += ": " + rep.Error
		}
		fmt.Fprintln(a.stdout, line)
	}
	if out.Status != string(message.AckCompleted) {
		return &errCommandNotCompleted{status: out.Status, text: out.Error}
	}
	return nil
}

// waitCommandAPI waits for the outcome of the command rep names: its acks
// in the live event stream, as they reach central; and, should the stream
// end, its status (GET /commands/{id}), which the API waits on for the
// final ack. It prints "accepted" as it comes, and returns the final
// status.
func (a *app) waitCommandAPI(ctx context.Context, o *commandOptions, c *apiClient, t topic.Thing, rep *commandReport, sent time.Time, acks <-chan *apiEvent) (apiCommand, error) {
	accepted := func() {
		if rep.AcceptedAfter == "" {
			rep.Status, rep.AcceptedAfter = string(message.AckAccepted), since(sent)
			if !o.json() {
				fmt.Fprintf(a.stdout, "accepted  after %s\n", rep.AcceptedAfter)
			}
		}
	}
	for acks != nil {
		select {
		case <-ctx.Done():
			return apiCommand{}, ctx.Err()
		case ev, ok := <-acks:
			if !ok {
				acks = nil
				break
			}
			var ack struct {
				Status message.AckStatus `json:"status"`
				Error  string            `json:"error"`
			}
			if ev.Correlates != rep.ID || json.Unmarshal(ev.Payload, &ack) != nil {
				continue
			}
			if !ack.Status.Final() {
				accepted()
				continue
			}
			return apiCommand{ID: rep.ID, Status: string(ack.Status), Final: true, Error: ack.Error}, nil
		}
	}
	// The stream ended: ask for the status, which the API waits on.
	for {
		wait := 10 * time.Second
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			wait = max(time.Until(dl), time.Millisecond)
		}
		var out apiCommand
		q := url.Values{"thing": {thingRef(t)}, "wait": {wait.String()}}
		if err := c.do(ctx, "GET", "/commands/"+url.PathEscape(rep.ID), q, nil, &out); err != nil {
			return out, err
		}
		if out.Final {
			return out, nil
		}
		if out.Status == string(message.AckAccepted) {
			accepted()
		}
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
}

// queryAPI is "query events|decisions|commands" through the API: the same
// filters as query parameters, the same cursors.
func (a *app) queryAPI(ctx context.Context, o *queryOptions, c *apiClient) error {
	o.edge = strings.TrimSpace(o.edge)
	o.org = c.cx.Org
	from, to, t, err := o.scope()
	if err != nil {
		return err
	}
	q := url.Values{"from": {from.UTC().Format(time.RFC3339Nano)}, "limit": {fmt.Sprint(o.limit)}}
	if !to.IsZero() {
		q.Set("to", to.UTC().Format(time.RFC3339Nano))
	}
	if t.Edge != "" {
		q.Set("edge", t.Edge)
	}
	if t.Code != "" {
		q.Set("thing", thingRef(t))
	}
	for k, v := range map[string]string{"type": o.msgType, "name": o.name, "door": o.door, "cursor": o.cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if o.descending {
		q.Set("desc", "true")
	}
	call, cancel := o.call(ctx)
	defer cancel()
	get := func(out any) error {
		err := c.do(call, "GET", "/"+o.kind, q, nil, out)
		if status, field := problemField(err); status == http.StatusBadRequest && field == "cursor" {
			return &usageError{err: err}
		}
		return err
	}
	switch o.kind {
	case "events":
		var p queryPage[eventRow]
		if err := get(&p); err != nil {
			return err
		}
		return printPage(a, o, p.Items, p.Next, eventsHeader, eventRowLine)
	case "decisions":
		var p queryPage[decisionRow]
		if err := get(&p); err != nil {
			return err
		}
		return printPage(a, o, p.Items, p.Next, decisionsHeader, decisionRowLine)
	default:
		var p queryPage[commandRow]
		if err := get(&p); err != nil {
			return err
		}
		for i := range p.Items {
			p.Items[i].Thing = c.cx.Org + "." + p.Items[i].Thing // as over NATS: with the org
		}
		return printPage(a, o, p.Items, p.Next, commandsHeader, commandRowLine)
	}
}

// apiEvent is an event of the API's live stream.
type apiEvent struct {
	ID         string          `json:"id"`
	Subject    string          `json:"subject"`
	Edge       string          `json:"edge"`
	Thing      string          `json:"thing"`
	Type       string          `json:"type"`
	Name       string          `json:"name"`
	DeviceTime time.Time       `json:"device_time"`
	Correlates string          `json:"correlation_id"`
	Payload    json.RawMessage `json:"payload"`
}

// tailAPI is "tail" through the API's live event stream (server-sent
// events): the API filters by edge or thing, and the rest of FILTER is
// applied here to each event's subject. The stream carries what central
// stores from the edges.
func (a *app) tailAPI(ctx context.Context, o *tailOptions, c *apiClient, filter string) error {
	subject, err := tailFilter(c.cx.Org, filter)
	if err != nil {
		return err
	}
	f, err := topic.ParseFilter(subject)
	if err != nil {
		return usagef("filter %q: %v", subject, err)
	}
	q := url.Values{}
	if tok := f.Tokens(); len(tok) >= 2 && literal(tok[1]) {
		q.Set("edge", tok[1])
		if len(tok) >= 4 && literal(tok[2]) && literal(tok[3]) {
			q.Del("edge")
			q.Set("thing", tok[1]+"."+tok[2]+"."+tok[3])
		}
	}
	var line []byte
	n := 0
	for first := true; ; first = false {
		st, err := c.openStream(ctx, q, o.timeout)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("tail %s: %w", subject, err)
		}
		if first && !o.json() {
			fmt.Fprintf(a.stderr, "tailing %s at %s (Ctrl-C to stop)\n", subject, c.cx.APIURL)
		}
		for {
			ev, err := st.next()
			if err != nil {
				st.close()
				if ctx.Err() != nil {
					return nil
				}
				if st.behind {
					break
				}
				if errors.Is(err, io.EOF) {
					return fmt.Errorf("tail %s: central's API ended the stream", subject)
				}
				return fmt.Errorf("tail %s: %w", subject, err)
			}
			if s, err := topic.Parse(ev.Subject); err != nil || !f.Matches(s) {
				continue
			}
			line = appendAPITailLine(line[:0], c.cx.Org, ev, o.json())
			if _, err := a.stdout.Write(line); err != nil {
				st.close()
				return err
			}
			if n++; o.count > 0 && n >= o.count {
				st.close()
				return nil
			}
		}
		fmt.Fprintln(a.stderr, "tail: events dropped: the terminal is slower than the deployment; reconnecting")
	}
}

// sseStream is the API's live event stream (server-sent events), open.
type sseStream struct {
	resp   *http.Response
	sc     *bufio.Scanner
	stop   context.CancelFunc
	behind bool // the API dropped the stream: the client fell too far behind
}

// openStream opens the API's live event stream with the query q (edge,
// thing). The response's headers must come within timeout; by then the
// API listens, so every event from then on is in the stream. Close it.
func (c *apiClient) openStream(ctx context.Context, q url.Values, timeout time.Duration) (*sseStream, error) {
	sctx, stop := context.WithCancel(ctx)
	timer := time.AfterFunc(timeout, stop)
	resp, err := c.send(sctx, "GET", "/events/stream", q, nil, "text/event-stream")
	if !timer.Stop() && err == nil {
		resp.Body.Close()
		err = fmt.Errorf("central's API: GET %s/events/stream: %w", apiPrefix, context.DeadlineExceeded)
	}
	if err != nil {
		stop()
		return nil, err
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	return &sseStream{resp: resp, sc: sc, stop: stop}, nil
}

// next returns the stream's next event; io.EOF when the stream ended.
func (s *sseStream) next() (*apiEvent, error) {
	for s.sc.Scan() {
		text := s.sc.Text()
		if strings.HasPrefix(text, ": too far behind") {
			s.behind = true
		}
		data, ok := strings.CutPrefix(text, "data: ")
		if !ok {
			continue
		}
		ev := new(apiEvent)
		if err := json.Unmarshal([]byte(data), ev); err != nil {
			continue
		}
		return ev, nil
	}
	if err := s.sc.Err(); err != nil {
		return nil, err
	}
	return nil, io.EOF
}

func (s *sseStream) close() {
	s.stop()
	s.resp.Body.Close()
}

// literal reports whether a filter token names one value.
func literal(tok string) bool { return tok != "*" && tok != ">" }

// appendAPITailLine appends ev's tail line: as CloudEvents JSON (from what
// the API carries: no sequence or boot id), or as the human line tail
// prints over NATS.
func appendAPITailLine(b []byte, org string, ev *apiEvent, asJSON bool) []byte {
	if asJSON {
		ce := map[string]any{"specversion": message.CloudEventsSpecVersion, "id": ev.ID,
			"source": "/" + org + "/" + strings.ReplaceAll(ev.Thing, ".", "/"),
			"type":   message.CloudEventsTypePrefix + ev.Type, "time": ev.DeviceTime.UTC().Format(time.RFC3339Nano)}
		if ev.Name != "" {
			ce["type"] = message.CloudEventsTypePrefix + ev.Type + "." + ev.Name
		}
		if ev.Correlates != "" {
			ce["correlationid"] = ev.Correlates
		}
		if len(ev.Payload) > 0 {
			ce["datacontenttype"], ce["data"] = "application/json", ev.Payload
		}
		v, _ := json.Marshal(ce)
		return append(append(b, v...), '\n')
	}
	b = fmt.Appendf(b, "%-24s %s  %s", ev.DeviceTime.UTC().Format(time.RFC3339Nano), ev.Subject, ev.Name)
	if len(ev.Payload) > 0 {
		var v any
		if err := json.Unmarshal(ev.Payload, &v); err == nil {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if enc.Encode(v) == nil {
				b = append(append(b, "  "...), bytes.TrimRight(buf.Bytes(), "\n")...)
			}
		}
	}
	return append(b, '\n')
}

package devicekit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// Paths of the HTTP gateway (package gateway) that [HTTPDevice] uses.
const (
	httpPathEvents   = "/v1/events"
	httpPathRequests = "/v1/requests"
	httpPathCommands = "/v1/commands"
)

// httpSlugEventTooLarge is the slug of the gateway's 413 for an event the
// edge's stream or server refused as too large (gateway.SlugEventTooLarge).
const httpSlugEventTooLarge = "event-too-large"

// DefaultHTTPAttemptTimeout bounds one HTTP attempt of a publish: the
// gateway answers once the edge's stream has stored the message, or
// after its own publish timeout.
const DefaultHTTPAttemptTimeout = 15 * time.Second

// HTTPConfig configures [ConnectHTTP]: a device that reaches its edge
// through the HTTP gateway instead of NATS. Thing, URL and Password are
// required; the other fields mean what they mean in [Config], with the
// same defaults.
type HTTPConfig struct {
	// Thing is the device.
	Thing topic.Thing
	// URL is the gateway's base URL, such as "https://gw.acme.example".
	URL string
	// User is the user name; empty means Thing.String(), the device's NATS
	// user name, which the gateway expects.
	User string
	// Password is the device's password, the same as for NATS.
	Password Password
	// Client makes the HTTP requests; nil means a client of the package's
	// own. Set it for TLS settings (a private CA, a client certificate).
	// Its Timeout must be zero: the command stream lasts as long as
	// command handling.
	Client *http.Client

	// BootID identifies this boot; zero means a new ID for every
	// ConnectHTTP.
	BootID message.ID
	// Model and Firmware describe the device in its birth message.
	Model, Firmware string
	// Logger receives the device's log records; nil discards them.
	Logger *slog.Logger
	// Now is the device's clock; nil means time.Now.
	Now func() time.Time
	// IDs makes envelope and boot IDs; nil means a generator of the
	// device's own, reading Now.
	IDs *message.IDGenerator

	// HeartbeatInterval is how often the device publishes a heartbeat;
	// zero means [DefaultHeartbeatInterval]. Unlike [Config], a negative
	// value is refused.
	HeartbeatInterval time.Duration
	// AttemptTimeout bounds one attempt of a publish. Zero means
	// [DefaultHTTPAttemptTimeout].
	AttemptTimeout time.Duration
	// Timeout bounds every call whose context has no deadline, ConnectHTTP
	// included; zero means [DefaultTimeout].
	Timeout time.Duration
	// CloseTimeout bounds Close; zero means [DefaultCloseTimeout].
	CloseTimeout time.Duration
	// RetryWait is the first pause before sending a publish again that
	// the gateway did not confirm; pauses double up to a second. Zero
	// means 50ms.
	RetryWait time.Duration

	// CommandKeys are the public keys ("U…" NKeys) whose signed commands
	// the device acts on, as in [Config]. Required by HandleCommands.
	CommandKeys []string
	// CommandHistory is how many recent command IDs and idempotency keys
	// the device remembers; zero means [DefaultCommandHistory].
	CommandHistory int
}

// HTTPDevice is a [Device] that speaks to its edge through the HTTP
// gateway: it publishes CloudEvents in binary content mode (the payload
// travels as its own bytes, msgpack like the NATS client's), sends
// requests the same way, and receives its commands as Server-Sent Events,
// verifying their signatures and acking them exactly as [*Client] does.
// Make one with [ConnectHTTP]. Its methods are safe for concurrent use.
type HTTPDevice struct {
	cfg   HTTPConfig
	thing topic.Thing
	log   *slog.Logger
	hc    *http.Client
	base  string
	user  string
	stamp *message.Stamper
	start time.Time

	life       context.Context
	cancelLife context.CancelFunc
	hbCancel   context.CancelFunc
	hbDone     chan struct{}

	history *history
	stats   counters

	mu       sync.Mutex
	closed   bool
	handling *commandSub
	inflight sync.WaitGroup
	closeErr error
	closeCh  chan struct{}
}

var _ Device = (*HTTPDevice)(nil)

// ConnectHTTP starts a device that uses the HTTP gateway at cfg.URL: it
// publishes the device's birth, waiting until the gateway confirms the
// edge's stream stored it (trying again until ctx ends while the gateway or
// the edge does not answer), then starts the heartbeats. It returns an
// error wrapping [ErrInvalidConfig] for a bad cfg, one wrapping [ErrAuth]
// when the gateway refuses the credentials, or the birth's
// [*PublishError]; nothing is left running then. When ctx has no deadline,
// cfg.Timeout applies.
func ConnectHTTP(ctx context.Context, cfg HTTPConfig) (*HTTPDevice, error) {
	if err := topic.ValidateThing(cfg.Thing); err != nil {
		return nil, fmt.Errorf("%w: thing: %w", ErrInvalidConfig, err)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: URL %q is not an http or https URL", ErrInvalidConfig, cfg.URL)
	}
	if cfg.Password == "" {
		return nil, fmt.Errorf("%w: no password", ErrInvalidConfig)
	}
	if bad := message.ValidCommandKeys(cfg.CommandKeys); bad != "" {
		return nil, fmt.Errorf("%w: command key %q is not a public user NKey", ErrInvalidConfig, bad)
	}
	for name, d := range map[string]time.Duration{"AttemptTimeout": cfg.AttemptTimeout, "Timeout": cfg.Timeout, "CloseTimeout": cfg.CloseTimeout, "RetryWait": cfg.RetryWait, "HeartbeatInterval": cfg.HeartbeatInterval} {
		if d < 0 {
			return nil, fmt.Errorf("%w: negative %s %v", ErrInvalidConfig, name, d)
		}
	}
	if cfg.CommandHistory < 0 {
		return nil, fmt.Errorf("%w: negative CommandHistory %d", ErrInvalidConfig, cfg.CommandHistory)
	}
	if cfg.User == "" {
		cfg.User = cfg.Thing.String()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IDs == nil {
		cfg.IDs = &message.IDGenerator{Now: cfg.Now}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = DefaultHTTPAttemptTimeout
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = DefaultCloseTimeout
	}
	if cfg.RetryWait == 0 {
		cfg.RetryWait = minRetryWait
	}
	if cfg.CommandHistory == 0 {
		cfg.CommandHistory = DefaultCommandHistory
	}
	if cfg.BootID.IsZero() {
		cfg.BootID = cfg.IDs.New()
	}
	hc := cfg.Client
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 16
		hc = &http.Client{Transport: tr}
	}
	d := &HTTPDevice{
		cfg:     cfg,
		thing:   cfg.Thing,
		log:     cfg.Logger.With(message.LogKeyThing, cfg.Thing.String()),
		hc:      hc,
		base:    strings.TrimSuffix(cfg.URL, "/"),
		user:    cfg.User,
		stamp:   &message.Stamper{Source: cfg.Thing, BootID: cfg.BootID, Now: cfg.Now, IDs: cfg.IDs},
		start:   cfg.Now(),
		hbDone:  make(chan struct{}),
		history: newHistory(cfg.CommandHistory),
		closeCh: make(chan struct{}),
	}
	d.life, d.cancelLife = context.WithCancel(context.Background())
	bctx, cancel := withDefaultTimeout(ctx, cfg.Timeout)
	defer cancel()
	b := message.Birth{BootID: cfg.BootID, Model: cfg.Model, Firmware: cfg.Firmware, HeartbeatInterval: cfg.HeartbeatInterval}
	e, err := newEnvelope(topic.State, message.NameThingBirth, b)
	if err == nil {
		err = d.publish(bctx, e)
	}
	if err != nil {
		d.cancelLife()
		if cfg.Client == nil {
			hc.CloseIdleConnections()
		}
		return nil, err
	}
	var hbCtx context.Context
	hbCtx, d.hbCancel = context.WithCancel(d.life)
	go d.heartbeats(hbCtx)
	d.log.Info("born", message.LogKeyBootID, cfg.BootID.String(), message.LogKeyMsgID, e.ID.String(), logKeyURL, d.base)
	return d, nil
}

// Thing returns the device's thing.
func (d *HTTPDevice) Thing() topic.Thing { return d.thing }

// BootID returns the ID of this boot, new for each ConnectHTTP.
func (d *HTTPDevice) BootID() message.ID { return d.cfg.BootID }

// Stats returns a snapshot of the device's counters (the NATS-only ones
// stay zero).
func (d *HTTPDevice) Stats() Stats {
	s := &d.stats
	return Stats{Published: s.published.Load(), Retries: s.retries.Load(), PublishErrors: s.publishErrors.Load(),
		Requests: s.requests.Load(), RequestErrors: s.requestErrors.Load(), Commands: s.commands.Load(),
		CommandsRun: s.commandsRun.Load(), CommandsRefused: s.commandsRefused.Load()}
}

// enter registers a call in progress, or returns ErrClosed.
func (d *HTTPDevice) enter() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	d.inflight.Add(1)
	return nil
}

// Publish sends e, stamping it first when its ID is zero; see
// [Device.Publish]. An attempt the gateway does not confirm (no answer,
// 429, 503) is made again with the same ID until ctx ends.
func (d *HTTPDevice) Publish(ctx context.Context, e *message.Envelope) error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.inflight.Done()
	return d.publish(ctx, e)
}

// PublishEvent publishes an event; see [Device.PublishEvent].
func (d *HTTPDevice) PublishEvent(ctx context.Context, name string, payload any) (message.ID, error) {
	return d.publishNew(ctx, topic.Event, name, payload)
}

// PublishState publishes a state; see [Device.PublishState].
func (d *HTTPDevice) PublishState(ctx context.Context, name string, payload any) (message.ID, error) {
	return d.publishNew(ctx, topic.State, name, payload)
}

// PublishTelemetry publishes a measurement; see [Device.PublishTelemetry].
// Telemetry is always acknowledged over HTTP.
func (d *HTTPDevice) PublishTelemetry(ctx context.Context, name string, payload any) (message.ID, error) {
	return d.publishNew(ctx, topic.Telemetry, name, payload)
}

func (d *HTTPDevice) publishNew(ctx context.Context, mt topic.MessageType, name string, payload any) (message.ID, error) {
	if err := d.enter(); err != nil {
		return message.ID{}, err
	}
	defer d.inflight.Done()
	e, err := newEnvelope(mt, name, payload)
	if err != nil {
		return message.ID{}, err
	}
	err = d.publish(ctx, e)
	return e.ID, err
}

// publish checks, stamps and sends e until the gateway confirms it is
// stored, it is refused, or ctx ends.
func (d *HTTPDevice) publish(ctx context.Context, e *message.Envelope) error {
	switch e.Type {
	case topic.Event, topic.State, topic.Telemetry, topic.Ack:
	default:
		return fmt.Errorf("%w: devices do not publish message type %q", ErrInvalidEnvelope, e.Type)
	}
	if e.ID.IsZero() {
		if e.Source != (topic.Thing{}) && e.Source != d.thing {
			return fmt.Errorf("%w: source %s is not the device %s", ErrInvalidEnvelope, e.Source, d.thing)
		}
		d.stamp.Stamp(e)
	} else if e.Source != d.thing {
		return fmt.Errorf("%w: source %s is not the device %s", ErrInvalidEnvelope, e.Source, d.thing)
	}
	if err := e.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidEnvelope, err)
	}
	ctx, cancel := withDefaultTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	stop := context.AfterFunc(d.life, cancel) // Close ends it too
	defer stop()
	pe := &PublishError{Subject: e.Subject().String(), MsgID: e.ID}
	fail := func(sentinel, cause error) error {
		d.stats.publishErrors.Add(1)
		pe.Err, pe.Cause = sentinel, cause
		return pe
	}
	wait := d.cfg.RetryWait
	for {
		pe.Attempts++
		if pe.Attempts > 1 {
			d.stats.retries.Add(1)
		}
		actx, acancel := context.WithTimeout(ctx, d.cfg.AttemptTimeout)
		res, err := d.send(actx, httpPathEvents, e)
		acancel()
		var retryAfter time.Duration
		switch {
		case err != nil:
			pe.Cause = err
		case res.status == http.StatusOK:
			d.stats.published.Add(1)
			return nil
		case res.status == http.StatusUnauthorized:
			return fail(ErrAuth, res.problem)
		case res.status == http.StatusForbidden:
			return fail(ErrPermissionDenied, res.problem)
		case res.status == http.StatusRequestEntityTooLarge && res.problem.slug() == httpSlugEventTooLarge:
			// Larger than the stream's max_msg_size or the server's max
			// payload: the refusal a NATS device gets from the stream.
			return fail(ErrStreamRejected, res.problem)
		case res.status == http.StatusInsufficientStorage:
			if strings.Contains(res.problem.Error(), "maximum") {
				return fail(ErrStreamFull, res.problem)
			}
			return fail(ErrStreamRejected, res.problem)
		case res.status == http.StatusTooManyRequests || res.status >= 500:
			pe.Cause, retryAfter = res.problem, res.retryAfter
		default: // 400, 413, 415, 422: the envelope
			return fail(ErrInvalidEnvelope, res.problem)
		}
		t := time.NewTimer(max(wait, retryAfter))
		select {
		case <-ctx.Done():
			t.Stop()
			if d.life.Err() != nil {
				return fail(ErrClosed, pe.Cause)
			}
			return fail(ErrNotAcknowledged, errors.Join(pe.Cause, ctx.Err()))
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// httpResult is the gateway's answer to one request.
type httpResult struct {
	status     int
	header     http.Header
	body       []byte
	problem    *httpProblem // for status >= 400
	retryAfter time.Duration
}

// httpProblem is the gateway's RFC 9457 problem document.
type httpProblem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Field  string `json:"field"`
}

func (p *httpProblem) Error() string {
	s := fmt.Sprintf("gateway: %d %s", p.Status, p.Title)
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// slug returns the last part of the problem's type.
func (p *httpProblem) slug() string { return p.Type[strings.LastIndexByte(p.Type, '/')+1:] }

// send posts e in binary content mode to path and reads the answer.
func (d *HTTPDevice) send(ctx context.Context, path string, e *message.Envelope) (*httpResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.base+path, bytes.NewReader(e.Payload))
	if err != nil {
		return nil, err
	}
	setBinaryHeaders(req.Header, e)
	return d.do(req)
}

// do sends req with the device's credentials and reads the answer.
func (d *HTTPDevice) do(req *http.Request) (*httpResult, error) {
	req.SetBasicAuth(d.user, string(d.cfg.Password))
	res, err := d.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	return readResult(res, body), nil
}

func readResult(res *http.Response, body []byte) *httpResult {
	r := &httpResult{status: res.StatusCode, header: res.Header, body: body}
	if res.StatusCode >= 400 {
		r.problem = &httpProblem{Status: res.StatusCode, Title: http.StatusText(res.StatusCode)}
		_ = json.Unmarshal(body, r.problem)
		if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s > 0 {
			r.retryAfter = time.Duration(s) * time.Second
		}
	}
	return r
}

// setBinaryHeaders sets e's attributes as CloudEvents binary-mode headers,
// percent-encoded as the HTTP binding requires.
func setBinaryHeaders(h http.Header, e *message.Envelope) {
	set := func(k, v string) { h[k] = []string{percentEncode(v)} }
	set("Ce-Specversion", message.CloudEventsSpecVersion)
	set("Ce-Id", e.ID.String())
	set("Ce-Source", "/"+e.Source.Org+"/"+e.Source.Edge+"/"+e.Source.Type+"/"+e.Source.Code)
	typ := message.CloudEventsTypePrefix + string(e.Type)
	if e.Name != "" {
		typ += "." + e.Name
	}
	set("Ce-Type", typ)
	set("Ce-Time", e.Time.UTC().Format(time.RFC3339Nano))
	v := e.SchemaVersion
	if v == 0 {
		v = message.CurrentVersion
	}
	set("Ce-Schemaversion", v.String())
	if e.Seq != 0 {
		set("Ce-Sequence", strconv.FormatUint(e.Seq, 10))
	}
	if !e.BootID.IsZero() {
		set("Ce-Bootid", e.BootID.String())
	}
	if !e.CorrelationID.IsZero() {
		set("Ce-Correlationid", e.CorrelationID.String())
	}
	if e.ContentType != "" {
		h.Set("Content-Type", e.ContentType)
	}
}

func percentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '%' {
			if b == nil {
				b = append(b, s[:i]...)
			}
			b = append(b, '%', hex[c>>4], hex[c&15])
			continue
		}
		if b != nil {
			b = append(b, c)
		}
	}
	if b == nil {
		return s
	}
	return string(b)
}

// envelopeFromBinary decodes an envelope in binary content mode.
func envelopeFromBinary(h http.Header, body []byte) (*message.Envelope, error) {
	m := map[string]string{}
	for k, v := range h {
		name, ok := strings.CutPrefix(strings.ToLower(k), "ce-")
		if !ok || len(v) != 1 || name == "data" || name == "data_base64" || name == "datacontenttype" {
			continue
		}
		val, err := url.PathUnescape(v[0])
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", k, err)
		}
		m[name] = val
	}
	if ct := h.Get("Content-Type"); ct != "" {
		m["datacontenttype"] = ct
	}
	if len(body) > 0 {
		m["data_base64"] = base64.StdEncoding.EncodeToString(body)
	}
	js, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	e := new(message.Envelope)
	if err := (message.CloudEventsCodec{}).Unmarshal(js, e); err != nil {
		return nil, err
	}
	return e, nil
}

// Request sends a request through the gateway and returns the reply; see
// [Device.Request]. Requests are not retried.
func (d *HTTPDevice) Request(ctx context.Context, name string, payload any) (*message.Envelope, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer d.inflight.Done()
	e, err := newEnvelope(topic.Request, name, payload)
	if err != nil {
		return nil, err
	}
	d.stamp.Stamp(e)
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEnvelope, err)
	}
	ctx, cancel := withDefaultTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	stop := context.AfterFunc(d.life, cancel)
	defer stop()
	subj := e.Subject().String()
	d.stats.requests.Add(1)
	res, err := d.send(ctx, httpPathRequests, e)
	if err != nil {
		d.stats.requestErrors.Add(1)
		if d.life.Err() != nil {
			return nil, fmt.Errorf("%w: request %s (id %s): %w", ErrClosed, subj, e.ID, err)
		}
		return nil, fmt.Errorf("devicekit: request %s (id %s): %w", subj, e.ID, err)
	}
	if res.status != http.StatusOK {
		d.stats.requestErrors.Add(1)
		sentinel := error(nil)
		switch {
		case res.problem.slug() == "no-responders":
			sentinel = ErrNoResponders
		case res.status == http.StatusUnauthorized:
			sentinel = ErrAuth
		case res.status == http.StatusForbidden:
			sentinel = ErrPermissionDenied
		case res.status == http.StatusBadGateway:
			sentinel = ErrInvalidReply
		case res.status < 500 && res.status != http.StatusTooManyRequests:
			sentinel = ErrInvalidEnvelope
		}
		if sentinel == nil {
			return nil, fmt.Errorf("devicekit: request %s (id %s): %w", subj, e.ID, res.problem)
		}
		return nil, fmt.Errorf("%w: request %s (id %s): %w", sentinel, subj, e.ID, res.problem)
	}
	r, err := envelopeFromBinary(res.header, res.body)
	if err != nil {
		d.stats.requestErrors.Add(1)
		return nil, fmt.Errorf("%w: request %s (id %s): %w", ErrInvalidReply, subj, e.ID, err)
	}
	if !r.CorrelationID.IsZero() && r.CorrelationID != e.ID {
		d.stats.requestErrors.Add(1)
		return nil, fmt.Errorf("%w: request %s (id %s): the reply answers %s", ErrInvalidReply, subj, e.ID, r.CorrelationID)
	}
	return r, nil
}

// heartbeats publishes a heartbeat every HeartbeatInterval until ctx
// ends; they also keep the device's session at the gateway open.
func (d *HTTPDevice) heartbeats(ctx context.Context) {
	defer close(d.hbDone)
	t := time.NewTicker(d.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e, err := newEnvelope(topic.State, message.NameThingHeartbeat, message.Heartbeat{BootID: d.cfg.BootID, Uptime: d.cfg.Now().Sub(d.start)})
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, d.cfg.HeartbeatInterval)
			err = d.publish(pctx, e)
			cancel()
		}
		if err != nil && ctx.Err() == nil {
			d.log.Warn("heartbeat not published", message.LogKeyError, err)
		}
	}
}

// Close stops command handling and heartbeats and publishes the device's
// death, within CloseTimeout; see [Device.Close]. A second Close waits for
// the first and returns its result.
func (d *HTTPDevice) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		<-d.closeCh
		return d.closeErr
	}
	d.closed = true
	h := d.handling
	d.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.CloseTimeout)
	defer cancel()
	d.hbCancel()
	<-d.hbDone
	if h != nil {
		h.cancel(ErrClosed)
		waitOrDone(ctx, h.done)
	}
	inflight := make(chan struct{})
	go func() { d.inflight.Wait(); close(inflight) }()
	half, cancelHalf := context.WithTimeout(ctx, d.cfg.CloseTimeout/2)
	waitOrDone(half, inflight)
	cancelHalf()

	e := &message.Envelope{Type: topic.State, Name: message.NameThingDeath}
	d.stamp.Stamp(e)
	err := message.SetPayload(e, message.Death{BootID: d.cfg.BootID, Reason: "shutdown", LastSeq: e.Seq})
	if err == nil {
		err = d.publish(ctx, e)
	}
	if err != nil {
		d.log.Warn("death not published", message.LogKeyError, err)
	}
	d.cancelLife()
	if d.cfg.Client == nil {
		d.hc.CloseIdleConnections()
	}
	d.closeErr = err
	close(d.closeCh)
	return err
}

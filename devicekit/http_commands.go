package devicekit

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// httpCommand is a command as the gateway hands it over: the NATS message
// the edge sent, its data in base64 and its headers.
type httpCommand struct {
	Data   string            `json:"lintelnatsdata"`
	Header map[string]string `json:"lintelnatsheader"`
}

// HandleCommands receives the device's commands from the gateway as
// Server-Sent Events and handles them with h, one at a time, exactly as
// [Client.HandleCommands] does: the same signature check (Config's
// CommandKeys), deadlines, repeated-command history and acks, which are
// published through the gateway. It returns once the gateway holds the
// device's command subscription at the edge; ctx bounds that wait only
// (as does Config.Timeout; an error wraps ctx's error when it ends first):
// handling runs until [Subscription.Stop] or Close. A stream that breaks
// is opened again until handling stops.
func (d *HTTPDevice) HandleCommands(ctx context.Context, h Handler) (Subscription, error) {
	if h == nil {
		panic("devicekit: HandleCommands: nil Handler")
	}
	if len(d.cfg.CommandKeys) == 0 {
		return nil, fmt.Errorf("%w: no CommandKeys: the device could not tell central's commands from forged ones", ErrInvalidConfig)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("devicekit: handle commands: %w", err)
	}
	// Handling lives as long as the device, until Stop or Close; ctx
	// bounds only the opening of the stream below.
	runCtx, cancelRun := context.WithCancelCause(d.life)
	s := &commandSub{
		cancel: cancelRun,
		done:   make(chan struct{}),
		proc: &processor{
			now:     d.cfg.Now,
			handler: h,
			history: d.history,
			log:     d.log,
			ack:     d.sendAck,
			stats:   &d.stats,
			verify:  commandVerifier(d.thing, d.cfg.CommandKeys),
		},
	}
	d.mu.Lock()
	switch {
	case d.closed:
		d.mu.Unlock()
		cancelRun(nil)
		return nil, ErrClosed
	case d.handling != nil:
		d.mu.Unlock()
		cancelRun(nil)
		return nil, ErrHandlerRunning
	}
	d.handling = s
	d.mu.Unlock()

	startCtx, cancelStart := startContext(ctx, runCtx)
	octx, cancel := context.WithTimeout(startCtx, d.cfg.Timeout)
	sc, body, err := d.openStream(runCtx, octx)
	cancel()
	cancelStart()
	if err != nil {
		d.mu.Lock()
		d.handling = nil
		d.mu.Unlock()
		cancelRun(nil)
		close(s.done)
		if cause := context.Cause(runCtx); errors.Is(cause, ErrClosed) {
			return nil, ErrClosed
		}
		return nil, err
	}
	go d.runCommands(runCtx, s, sc, body)
	return s, nil
}

// openStream opens the command stream with the lifetime of ctx, waiting at
// most as long as wait lasts for the gateway to confirm it.
func (d *HTTPDevice) openStream(ctx, wait context.Context) (*bufio.Scanner, interface{ Close() error }, error) {
	if err := wait.Err(); err != nil {
		return nil, nil, fmt.Errorf("devicekit: open the command stream: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+httpPathCommands, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.SetBasicAuth(d.user, string(d.cfg.Password))
	type opened struct {
		res *http.Response
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		res, err := d.hc.Do(req)
		ch <- opened{res, err}
	}()
	var o opened
	select {
	case o = <-ch:
	case <-wait.Done():
		go func() {
			if o := <-ch; o.res != nil {
				o.res.Body.Close()
			}
		}()
		return nil, nil, fmt.Errorf("devicekit: open the command stream: %w", wait.Err())
	}
	if o.err != nil {
		return nil, nil, fmt.Errorf("devicekit: open the command stream: %w", o.err)
	}
	if o.res.StatusCode != http.StatusOK {
		body := make([]byte, 4096)
		n, _ := o.res.Body.Read(body)
		o.res.Body.Close()
		r := readResult(o.res, body[:n])
		switch o.res.StatusCode {
		case http.StatusUnauthorized:
			return nil, nil, fmt.Errorf("%w: command stream: %w", ErrAuth, r.problem)
		case http.StatusForbidden:
			return nil, nil, fmt.Errorf("%w: command stream: %w", ErrPermissionDenied, r.problem)
		}
		return nil, nil, fmt.Errorf("devicekit: command stream: %w", r.problem)
	}
	sc := bufio.NewScanner(o.res.Body)
	sc.Buffer(nil, 8<<20)
	// The gateway writes a comment once it is subscribed at the edge.
	if !sc.Scan() {
		o.res.Body.Close()
		return nil, nil, fmt.Errorf("devicekit: command stream ended at once: %v", sc.Err())
	}
	return sc, o.res.Body, nil
}

// runCommands handles the commands of the stream, reopening it when it
// breaks, until ctx ends.
func (d *HTTPDevice) runCommands(ctx context.Context, s *commandSub, sc *bufio.Scanner, body interface{ Close() error }) {
	var endErr error
	defer func() {
		if body != nil {
			body.Close()
		}
		d.mu.Lock()
		if d.handling == s {
			d.handling = nil
		}
		d.mu.Unlock()
		switch cause := context.Cause(ctx); {
		case endErr != nil:
			s.err = endErr
		case errors.Is(cause, errStopped):
			s.err = nil
		default:
			s.err = cause
		}
		close(s.done)
	}()
	cmdSubj := d.thing.Subject(topic.Command).String()
	wait := d.cfg.RetryWait
	for {
		var event, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if event == "command" && data != "" {
					d.command(ctx, s, cmdSubj, data)
					wait = d.cfg.RetryWait
				}
				event, data = "", ""
			case strings.HasPrefix(line, "event:"):
				event = strings.TrimSpace(line[len("event:"):])
			case strings.HasPrefix(line, "data:"):
				data += strings.TrimPrefix(line[len("data:"):], " ")
			}
		}
		body.Close()
		body = nil
		if ctx.Err() != nil {
			return
		}
		d.log.Warn("command stream broke; opening it again", message.LogKeyError, sc.Err())
		for body == nil {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			wait = min(2*wait, time.Second)
			octx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
			var err error
			sc, body, err = d.openStream(ctx, octx)
			cancel()
			switch {
			case err == nil:
			case errors.Is(err, ErrAuth), errors.Is(err, ErrPermissionDenied):
				endErr = err
				return
			case ctx.Err() != nil:
				return
			default:
				d.log.Warn("command stream not reopened", message.LogKeyError, err)
			}
		}
	}
}

// command hands one command of the stream to the processor as the NATS
// message the edge sent.
func (d *HTTPDevice) command(ctx context.Context, s *commandSub, subject, data string) {
	var hc httpCommand
	if err := json.Unmarshal([]byte(data), &hc); err != nil {
		d.log.Warn("undecodable command event dropped", message.LogKeyError, err)
		return
	}
	raw, err := base64.StdEncoding.DecodeString(hc.Data)
	if err != nil {
		d.log.Warn("undecodable command event dropped", message.LogKeyError, err)
		return
	}
	msg := &nats.Msg{Subject: subject, Header: nats.Header{}, Data: raw}
	for k, v := range hc.Header {
		msg.Header.Set(k, v)
	}
	s.proc.process(ctx, msg)
}

// sendAck publishes an ack of command id through the gateway, waiting for
// the stream, for at most Timeout (and no longer than the device lives).
func (d *HTTPDevice) sendAck(id message.ID, st message.AckStatus, text string) error {
	e, err := newEnvelope(topic.Ack, message.NameAck, message.Ack{CommandID: id, Status: st, Error: text})
	if err != nil {
		return err
	}
	e.CorrelationID = id
	ctx, cancel := context.WithTimeout(d.life, d.cfg.Timeout)
	defer cancel()
	return d.publish(ctx, e)
}

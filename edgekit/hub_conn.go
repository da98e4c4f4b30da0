package edgekit

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
)

// explain adds its likely cause to err, a call that ran out of time: when
// the server refused the subscription of the connection's reply inbox (a
// connection without its user's inbox prefix), no answer can ever arrive,
// and the error says so and wraps [ErrInboxPrefix].
func (h *Hub) explain(err error) error {
	if err == nil || errors.Is(err, ErrInboxPrefix) {
		return err
	}
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
		return err
	}
	nc := h.js.Conn()
	if nc == nil {
		return err
	}
	last := nc.LastError()
	if !errors.Is(last, nats.ErrPermissionViolation) || !strings.Contains(last.Error(), nats.InboxPrefix) {
		return err
	}
	return fmt.Errorf("%w: %w: the server refused the connection's reply inbox (%v); connect with authz.ServiceOptions, or add nats.CustomInboxPrefix(authz.UserInboxPrefix(user))",
		ErrInboxPrefix, err, last)
}

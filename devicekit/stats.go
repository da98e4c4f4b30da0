package devicekit

import "sync/atomic"

// Stats is a snapshot of a [Client]'s counters since Connect.
type Stats struct {
	Published     uint64 // messages stored by the stream (or sent, when unacknowledged)
	Retries       uint64 // extra attempts of acknowledged publishes
	PublishErrors uint64 // publishes that returned an error
	Requests      uint64 // requests sent
	RequestErrors uint64 // requests that returned an error
	Commands      uint64 // command messages received
	CommandsRun   uint64 // commands whose handler ran
	// CommandsRefused counts messages on the cmd subject dropped because
	// they were not signed for the device by a trusted key (Config.CommandKeys).
	CommandsRefused uint64
	Disconnects     uint64 // connections lost
	Reconnects      uint64 // connections regained
	// OutboxPending is the number of envelopes in the outbox
	// (Config.Outbox) now: written, not yet acknowledged by the edge's
	// stream. Zero without an outbox.
	OutboxPending uint64
	// OutboxResent counts the envelopes sent again from the outbox (left
	// there by a previous run, or by a publish that ended without an
	// answer) that the stream acknowledged, whether it stored them then or
	// already had them.
	OutboxResent uint64
}

type counters struct {
	published, retries, publishErrors atomic.Uint64
	requests, requestErrors           atomic.Uint64
	commands, commandsRun             atomic.Uint64
	commandsRefused                   atomic.Uint64
	disconnects, reconnects           atomic.Uint64
	outboxResent                      atomic.Uint64
}

// Stats returns a snapshot of the client's counters.
func (c *Client) Stats() Stats {
	s := &c.stats
	var pending uint64
	if c.box != nil {
		pending = uint64(c.box.len())
	}
	return Stats{
		Published:       s.published.Load(),
		Retries:         s.retries.Load(),
		PublishErrors:   s.publishErrors.Load(),
		Requests:        s.requests.Load(),
		RequestErrors:   s.requestErrors.Load(),
		Commands:        s.commands.Load(),
		CommandsRun:     s.commandsRun.Load(),
		CommandsRefused: s.commandsRefused.Load(),
		Disconnects:     s.disconnects.Load(),
		Reconnects:      s.reconnects.Load(),
		OutboxPending:   pending,
		OutboxResent:    s.outboxResent.Load(),
	}
}

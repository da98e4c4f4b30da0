package central

import (
	"context"
	"fmt"

	"github.com/lintel-io/lintel/storage"
)

// Status is a snapshot of a central node's health, for readiness checks
// and metrics.
type Status struct {
	// Server reports that the server accepts connections, and JetStream
	// that JetStream is enabled on it.
	Server, JetStream bool
	// Leafs is the number of edges linked.
	Leafs int
	// Database is "" without a database, "ok", or the error of a ping or
	// of reading Storage.
	Database string
	// Storage is what storage.Store.Health read when the ping succeeded:
	// the flavor, Lintel's TimescaleDB jobs with their latest status, and
	// the latest maintenance pass of any node. nil without a database.
	Storage *storage.Health
	// Maintenance holds this node's maintenance counters; nil unless
	// Config.Maintenance is set.
	Maintenance *storage.MaintenanceStats
	// Orgs holds each org's status by org code.
	Orgs map[string]OrgStatus
}

// OrgStatus is the status of what central runs for one org.
type OrgStatus struct {
	// Started reports that the org's hub, manager and ingest run. A
	// clustered central starts them once JetStream has a quorum, and until
	// then Error says why not.
	Started bool
	Error   string // the last failure to start the org or to run as its leader; "" when none
	// Leader reports that this node runs the org's auditor and
	// supervisor: always on a single node, on a clustered central the node
	// that leads the org's event stream.
	Leader bool
	// EventStreamLastSeq is the last sequence of the org's event stream.
	EventStreamLastSeq uint64
	// Ingest holds the ingest's counters; nil without a database.
	Ingest *storage.IngestStats
	// IngestLag is how many messages of the event stream the ingest has
	// not yet committed.
	IngestLag uint64
}

// Ready reports whether s is ready to serve: server, JetStream and the
// database (when configured) up, none of Lintel's TimescaleDB jobs failed
// and the latest maintenance pass not failed (storage.Health.Err), and
// every ingest without a failure it is retrying. The error names what is
// not.
func (s Status) Ready() error {
	switch {
	case !s.Server:
		return fmt.Errorf("server not accepting connections")
	case !s.JetStream:
		return fmt.Errorf("JetStream not enabled")
	case s.Database != "" && s.Database != "ok":
		return fmt.Errorf("database: %s", s.Database)
	}
	if s.Storage != nil {
		if err := s.Storage.Err(); err != nil {
			return fmt.Errorf("database: %w", err)
		}
	}
	for code, o := range s.Orgs {
		if !o.Started {
			return fmt.Errorf("org %s not started: %s", code, o.Error)
		}
		if o.Ingest != nil && o.Ingest.LastError != "" {
			return fmt.Errorf("org %s: ingest: %s", code, o.Ingest.LastError)
		}
	}
	return nil
}

// Status returns central's status; ctx bounds the database ping, the
// reading of its health and the stream lookups.
func (c *Central) Status(ctx context.Context) Status {
	st := Status{
		Server:    c.srv.Running(),
		JetStream: c.srv.JetStreamEnabled(),
		Leafs:     c.srv.NumLeafNodes(),
		Orgs:      make(map[string]OrgStatus, len(c.orgs)),
	}
	if c.cfg.Database != nil {
		st.Database = "ok"
		if err := c.cfg.Database.Ping(ctx); err != nil {
			st.Database = err.Error()
		} else if h, err := c.store.Health(ctx); err != nil {
			st.Database = fmt.Sprintf("read its health: %v", err)
		} else {
			st.Storage = &h
		}
	}
	if c.maint != nil {
		ms := c.maint.Stats()
		st.Maintenance = &ms
	}
	for code, o := range c.orgs {
		var os OrgStatus
		o.mu.Lock()
		os.Leader, os.Error = o.sup != nil, o.failing
		o.mu.Unlock()
		if os.Started = o.ready.Load(); !os.Started {
			st.Orgs[code] = os
			continue
		}
		if s, err := o.js.Stream(ctx, o.hub.EventStream()); err == nil {
			os.EventStreamLastSeq = s.CachedInfo().State.LastSeq
		}
		if o.ingest != nil {
			is := o.ingest.Stats()
			os.Ingest = &is
			if os.EventStreamLastSeq > is.Position {
				os.IngestLag = os.EventStreamLastSeq - is.Position
			}
		}
		st.Orgs[code] = os
	}
	return st
}

package authz_test

import (
	"errors"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/nats-io/nats.go"
)

func TestSourceTableCheck(t *testing.T) {
	table, err := authz.NewSourceTable("acme", "hq", "lab")
	if err != nil {
		t.Fatal(err)
	}
	hq, _ := authz.NamesFor("acme", "hq")
	from := func(src string) nats.Header {
		h := nats.Header{}
		if src != "" {
			h.Set(authz.HeaderStreamSource, src+" 12 > > acme.hq.reader.r1.evt")
		}
		return h
	}
	evt := authz.SourceName(hq.EventSource())
	tlm := authz.SourceName(hq.TelemetrySource())
	for _, tc := range []struct {
		name, subject, source string
		edge                  string // the origin reported
		ok                    bool
	}{
		{"own event", "acme.hq.reader.r1.evt", evt, "hq", true},
		{"own telemetry", "acme.hq.sensor.s1.tlm", tlm, "hq", true},
		{"another edge", "acme.lab.reader.x1.evt", evt, "hq", false},
		{"another org", "globex.plant.reader.g1.evt", evt, "hq", false},
		{"system subject of another edge", "acme.lab._sys.audit.evt", evt, "hq", false},
		{"own system subject", "acme.hq._sys.audit.evt", evt, "hq", false},
		{"unknown source", "acme.hq.reader.r1.evt", "events-acme-hq", "", false},
		{"central's own", "acme.hq._sys.audit.evt", "", "", true},
		{"central on an edge's subject", "acme.hq.reader.r1.evt", "", "", false},
		{"not a subject", "acme.hq", evt, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := table.Check(tc.subject, from(tc.source))
			if tc.ok != (err == nil) {
				t.Fatalf("Check(%s, %q) = %v, want ok %v", tc.subject, tc.source, err, tc.ok)
			}
			if err != nil {
				var oe *authz.OriginError
				if !errors.Is(err, authz.ErrOrigin) || !errors.As(err, &oe) {
					t.Fatalf("error %v is not an *OriginError wrapping ErrOrigin", err)
				}
			}
			if o.Edge != tc.edge {
				t.Fatalf("origin edge %q, want %q", o.Edge, tc.edge)
			}
		})
	}
	// An edge first seen in a subject is learnt from the topology.
	late, err := authz.NewSourceTable("acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := late.Check("acme.hq.reader.r1.evt", from(evt)); err != nil {
		t.Fatalf("edge not learnt: %v", err)
	}
}

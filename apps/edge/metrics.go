package main

import (
	"log/slog"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintel-io/lintel/apps/internal/admin"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/topic"
)

// registerMetrics registers the edge's metrics, read from the node's
// status at most once a second, and the access service's decisions.
func registerMetrics(reg *prometheus.Registry, node *edgekit.Node, svc *access.Service, log *slog.Logger) {
	status := admin.Cached(node.Status)
	gauge := func(name, help string, f func(edgekit.NodeStatus) float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(status()) }))
	}
	gauge("lintel_edge_link_up", "1 when the leaf link to central is up.", func(s edgekit.NodeStatus) float64 {
		if s.LinkUp {
			return 1
		}
		return 0
	})
	gauge("lintel_edge_backlog_messages", "Events central has not yet received.", func(s edgekit.NodeStatus) float64 { return float64(s.Backlog) })
	gauge("lintel_edge_telemetry_backlog_messages", "Telemetry central has not yet received.", func(s edgekit.NodeStatus) float64 { return float64(s.TelemetryBacklog) })
	gauge("lintel_edge_stream_fill_ratio", "Fill of the event stream, 0 to 1.", func(s edgekit.NodeStatus) float64 { return s.Fill })
	gauge("lintel_edge_devices_online", "Devices connected.", func(s edgekit.NodeStatus) float64 { return float64(s.DevicesOnline) })
	counter := func(name, help string, f func(edgekit.NodeStats) uint64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f(node.Stats())) }))
	}
	counter("lintel_edge_commands_delivered_total", "Commands handed to their device.", func(s edgekit.NodeStats) uint64 { return s.CommandsDelivered })
	counter("lintel_edge_commands_expired_total", "Commands whose deadline passed first.", func(s edgekit.NodeStats) uint64 { return s.CommandsExpired })
	counter("lintel_edge_commands_rejected_total", "Commands the edge could not deliver.", func(s edgekit.NodeStats) uint64 { return s.CommandsRejected })
	counter("lintel_edge_releases_total", "Purges releasing what central stored.", func(s edgekit.NodeStats) uint64 { return s.Releases })
	counter("lintel_edge_repairs_total", "Messages sent to central again because central's stream held a gap sourcing would not fill.", func(s edgekit.NodeStats) uint64 { return s.Repairs })
	counter("lintel_edge_rate_limited_total", "Device connections closed for their publish rate.", func(s edgekit.NodeStats) uint64 { return s.RateLimited })
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lintel_edge_messages_in_total", Help: "Messages received by the edge's server."},
		func() float64 {
			v, err := node.Server().Varz(nil)
			if err != nil {
				return 0
			}
			return float64(v.InMsgs)
		}))
	if svc != nil {
		reg.MustRegister(&decisionCollector{svc: svc})
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lintel_access_credentials_synced_timestamp_seconds",
			Help: "Unix time of the credential set's last confirmed sync with central; 0 when never."},
			func() float64 {
				if t := svc.SyncedAt(); !t.IsZero() {
					return float64(t.UnixNano()) / 1e9
				}
				return 0
			}))
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lintel_access_credentials_version",
			Help: "Version of the edge's credential set: the last revision of its bucket applied."},
			func() float64 { return float64(svc.Version()) }))
	}
	// Messages on the edge's subjects by type: what devices send (evt,
	// state, ack, tlm, req) and what reaches them (cmd, cfg).
	byType := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lintel_edge_messages_total",
		Help: "Messages on the edge's device subjects, by message type."}, []string{"type"})
	reg.MustRegister(byType)
	n := node.Names()
	known := topic.MessageTypes()
	if _, err := node.Conn().Subscribe(n.Org+"."+n.Edge+".>", func(m *nats.Msg) {
		if i := strings.LastIndexByte(m.Subject, '.'); i >= 0 {
			if mt := m.Subject[i+1:]; slices.Contains(known, topic.MessageType(mt)) {
				byType.WithLabelValues(mt).Inc()
			}
		}
	}); err != nil {
		log.Warn("no message counts by type", "err", err)
	}
}

// decisionCollector exports the access service's decisions by outcome.
type decisionCollector struct{ svc *access.Service }

var descDecisions = prometheus.NewDesc("lintel_access_decisions_total", "Access decisions by outcome.", []string{"outcome"}, nil)

func (d *decisionCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descDecisions }

func (d *decisionCollector) Collect(ch chan<- prometheus.Metric) {
	s := d.svc.Stats()
	ch <- prometheus.MustNewConstMetric(descDecisions, prometheus.CounterValue, float64(s.Granted), "granted")
	ch <- prometheus.MustNewConstMetric(descDecisions, prometheus.CounterValue, float64(s.Denied), "denied")
}

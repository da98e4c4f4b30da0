package main

import (
	"context"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintel-io/lintel/apps/internal/admin"
	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/edgekit"
)

// registerMetrics registers central's metrics, read from its status at
// most once a second.
func registerMetrics(reg *prometheus.Registry, c *central.Central) {
	status := admin.Cached(func(ctx context.Context) (central.Status, error) { return c.Status(ctx), nil })
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lintel_central_edges_linked", Help: "Edges linked to this central node."},
		func() float64 { return float64(status().Leafs) }))
	varz := func(f func(in, out int64) float64) func() float64 {
		return func() float64 {
			v, err := c.Server().Varz(nil)
			if err != nil {
				return 0
			}
			return f(v.InMsgs, v.OutMsgs)
		}
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lintel_central_messages_in_total", Help: "Messages received by the server."},
		varz(func(in, _ int64) float64 { return float64(in) })))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lintel_central_messages_out_total", Help: "Messages sent by the server."},
		varz(func(_, out int64) float64 { return float64(out) })))
	reg.MustRegister(&orgCollector{status: status})
	reg.MustRegister(&storageCollector{status: status})
	reg.MustRegister(&edgeCollector{central: c, sources: admin.Cached(func(ctx context.Context) (map[string][]edgekit.SourceStatus, error) {
		return readSources(ctx, c, status()), nil
	})})
}

// readSources returns the sources of each started org's event stream.
func readSources(ctx context.Context, c *central.Central, st central.Status) map[string][]edgekit.SourceStatus {
	out := make(map[string][]edgekit.SourceStatus, len(st.Orgs))
	for code := range st.Orgs {
		hub := c.Hub(code)
		if hub == nil {
			continue
		}
		if src, err := hub.Sources(ctx); err == nil {
			out[code] = src
		}
	}
	return out
}

// edgeCollector exports, per edge, what central's sourcing of it reports,
// and each org's audit alarms (on the node that runs the auditor).
type edgeCollector struct {
	central *central.Central
	sources func() map[string][]edgekit.SourceStatus
}

var (
	descSourceActive = prometheus.NewDesc("lintel_central_source_active_seconds",
		"Seconds since central last heard from the edge's flow (a message or the sourcing heartbeat); -1 when not since the source (re)started.",
		[]string{"org", "edge", "flow"}, nil)
	descSourceLag = prometheus.NewDesc("lintel_central_source_lag_messages",
		"Messages the edge's stream held beyond the last one central received, as of that message.", []string{"org", "edge", "flow"}, nil)
	descAuditAlarms = prometheus.NewDesc("lintel_audit_alarms_total",
		"Alarms the org's auditor raised: broken audit chains, grants of revoked credentials, forged or refused records.", []string{"org"}, nil)
)

func (e *edgeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSourceActive
	ch <- descSourceLag
	ch <- descAuditAlarms
}

func (e *edgeCollector) Collect(ch chan<- prometheus.Metric) {
	for code, src := range e.sources() {
		for _, s := range src {
			active := -1.0
			if !s.Missing && s.Active >= 0 {
				active = s.Active.Seconds()
			}
			ch <- prometheus.MustNewConstMetric(descSourceActive, prometheus.GaugeValue, active, code, s.Edge, s.Flow)
			ch <- prometheus.MustNewConstMetric(descSourceLag, prometheus.GaugeValue, float64(s.Lag), code, s.Edge, s.Flow)
		}
		if a := e.central.Auditor(code); a != nil {
			ch <- prometheus.MustNewConstMetric(descAuditAlarms, prometheus.CounterValue, float64(a.Stats().Alarms), code)
		}
	}
}

// orgCollector exports each org's ingest figures.
type orgCollector struct{ status func() central.Status }

var (
	descLag      = prometheus.NewDesc("lintel_ingest_lag_messages", "Messages of the org's event stream not yet committed to the database.", []string{"org"}, nil)
	descIngested = prometheus.NewDesc("lintel_ingest_events_total", "Events stored in the database.", []string{"org"}, nil)
	descBatches  = prometheus.NewDesc("lintel_ingest_batches_total", "Batches committed.", []string{"org"}, nil)
	descDead     = prometheus.NewDesc("lintel_ingest_dead_letters_total", "Messages sent to the dead-letter stream.", []string{"org"}, nil)
	descRefused  = prometheus.NewDesc("lintel_ingest_refused_total", "Messages refused for their origin.", []string{"org"}, nil)
	descLastSeq  = prometheus.NewDesc("lintel_event_stream_last_seq", "Last sequence of the org's event stream.", []string{"org"}, nil)
	descBatchAvg = prometheus.NewDesc("lintel_ingest_mean_batch_size", "Messages read per committed batch, on average since start.", []string{"org"}, nil)
	descByType   = prometheus.NewDesc("lintel_ingest_messages_total", "Messages the ingest committed, by message type.", []string{"org", "type"}, nil)
	descAcks     = prometheus.NewDesc("lintel_command_acks_total", "Command acks the ingest committed, by status.", []string{"org", "status"}, nil)
	descStarted  = prometheus.NewDesc("lintel_org_started", "1 when this node runs the org's hub, manager and ingest.", []string{"org"}, nil)
	descLeader   = prometheus.NewDesc("lintel_org_leader", "1 when this node runs the org's auditor, supervisor and release tracker (the event stream's leader on a clustered central).", []string{"org"}, nil)
)

func (o *orgCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLag, descIngested, descBatches, descDead, descRefused, descLastSeq, descByType, descAcks, descBatchAvg, descStarted, descLeader} {
		ch <- d
	}
}

func (o *orgCollector) Collect(ch chan<- prometheus.Metric) {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for code, s := range o.status().Orgs {
		ch <- prometheus.MustNewConstMetric(descStarted, prometheus.GaugeValue, b(s.Started), code)
		ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, b(s.Leader), code)
		ch <- prometheus.MustNewConstMetric(descLastSeq, prometheus.GaugeValue, float64(s.EventStreamLastSeq), code)
		if s.Ingest == nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(s.IngestLag), code)
		ch <- prometheus.MustNewConstMetric(descIngested, prometheus.CounterValue, float64(s.Ingest.Ingested), code)
		ch <- prometheus.MustNewConstMetric(descBatches, prometheus.CounterValue, float64(s.Ingest.Batches), code)
		if s.Ingest.Batches > 0 {
			ch <- prometheus.MustNewConstMetric(descBatchAvg, prometheus.GaugeValue, float64(s.Ingest.Read)/float64(s.Ingest.Batches), code)
		}
		ch <- prometheus.MustNewConstMetric(descDead, prometheus.CounterValue, float64(s.Ingest.DeadLettered), code)
		ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(s.Ingest.Refused), code)
		for mt, n := range s.Ingest.ByType {
			ch <- prometheus.MustNewConstMetric(descByType, prometheus.CounterValue, float64(n), code, string(mt))
		}
		for st, n := range s.Ingest.Acks {
			ch <- prometheus.MustNewConstMetric(descAcks, prometheus.CounterValue, float64(n), code, string(st))
		}
	}
}

// storageCollector exports the database's health: Lintel's TimescaleDB
// jobs and central's own maintenance.
type storageCollector struct{ status func() central.Status }

var (
	descJobFailed = prometheus.NewDesc("lintel_storage_job_failed",
		"1 when the latest run of one of Lintel's TimescaleDB jobs failed while it is scheduled.", []string{"job", "proc", "relation"}, nil)
	descMaintFailed = prometheus.NewDesc("lintel_storage_maintenance_failed",
		"1 when the latest maintenance pass of any central node failed.", nil, nil)
	descMaintSuccess = prometheus.NewDesc("lintel_storage_maintenance_last_success_timestamp_seconds",
		"When the latest successful maintenance pass of any central node started; 0 before the first.", nil, nil)
	descMaintRuns = prometheus.NewDesc("lintel_storage_maintenance_runs_total",
		"Maintenance passes this node ran.", nil, nil)
	descMaintFailures = prometheus.NewDesc("lintel_storage_maintenance_failures_total",
		"Maintenance passes of this node that failed.", nil, nil)
	descMaintDropped = prometheus.NewDesc("lintel_storage_maintenance_dropped_total",
		"Event partitions or chunks this node's maintenance dropped by retention.", nil, nil)
	descMaintCompressed = prometheus.NewDesc("lintel_storage_maintenance_compressed_total",
		"Event chunks this node's maintenance compressed.", nil, nil)
)

func (s *storageCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descJobFailed, descMaintFailed, descMaintSuccess, descMaintRuns, descMaintFailures, descMaintDropped, descMaintCompressed} {
		ch <- d
	}
}

func (s *storageCollector) Collect(ch chan<- prometheus.Metric) {
	st := s.status()
	if h := st.Storage; h != nil {
		for _, j := range h.Jobs {
			v := 0.0
			if j.Failing() {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descJobFailed, prometheus.GaugeValue, v, strconv.Itoa(j.ID), j.Proc, j.Relation)
		}
		failed, success := 0.0, 0.0
		if h.Maintenance.LastError != "" {
			failed = 1
		}
		if !h.Maintenance.LastSuccess.IsZero() {
			success = float64(h.Maintenance.LastSuccess.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(descMaintFailed, prometheus.GaugeValue, failed)
		ch <- prometheus.MustNewConstMetric(descMaintSuccess, prometheus.GaugeValue, success)
	}
	if m := st.Maintenance; m != nil {
		ch <- prometheus.MustNewConstMetric(descMaintRuns, prometheus.CounterValue, float64(m.Runs))
		ch <- prometheus.MustNewConstMetric(descMaintFailures, prometheus.CounterValue, float64(m.Failures))
		ch <- prometheus.MustNewConstMetric(descMaintDropped, prometheus.CounterValue, float64(m.Dropped))
		ch <- prometheus.MustNewConstMetric(descMaintCompressed, prometheus.CounterValue, float64(m.Compressed))
	}
}

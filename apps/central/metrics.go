package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintel-io/lintel/apps/internal/admin"
	"github.com/lintel-io/lintel/central"
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

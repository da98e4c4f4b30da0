package gateway_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// benchDevices is the number of devices of the concurrent runs.
const benchDevices = 100

// BenchmarkPublish stores events at a real edge node in the same run by
// three paths, each with one device and with 100 devices publishing at
// once: through the gateway (HTTP POST of a structured CloudEvent, 200
// once the stream stored it), through a bare net/http handler that only
// decodes the same body (the HTTP and decode floor), and with devicekit
// over NATS. It reports events/s and the p50 and p99 latency of one event.
func BenchmarkPublish(b *testing.B) {
	e := newEnvN(b, 2*benchDevices) // the gateway's devices, then NATS's

	// The edge's per-device publish limit (1,000/s) would ban the device
	// the benchmark drives flat out, over HTTP and NATS alike, and with
	// central unreachable it holds at most 10,000 events per subject.
	n := startNodeWith(b, e, nil, func(c *edgekit.NodeConfig) { c.DeviceRate = -1; c.EventMaxMsgsPerSubject = -1 })
	g := startGateway(b, e, n, func(c *gateway.Config) { c.Rate = -1 })
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var env message.Envelope
		if err := (message.CloudEventsCodec{}).Unmarshal(body, &env); err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"` + env.ID.String() + `"}`))
	}))
	b.Cleanup(bare.Close)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2 * benchDevices
	client := &http.Client{Transport: tr}
	b.Cleanup(client.CloseIdleConnections)

	devices := make([]topic.Thing, 2*benchDevices)
	for i := range devices {
		devices[i] = sensor(i)
	}
	post := func(url string) func(b *testing.B, t topic.Thing) func() error {
		return func(b *testing.B, t topic.Thing) func() error {
			user, pass := authz.DeviceUser(t), e.password(t)
			return func() error {
				_, body := event(b, t, topic.Event, "bench", map[string]any{"door": "front", "n": 1})
				req, err := http.NewRequest("POST", url, bytes.NewReader(body))
				if err != nil {
					return err
				}
				req.Header.Set("Content-Type", message.ContentTypeCloudEventsJSON)
				req.SetBasicAuth(user, pass)
				res, err := client.Do(req)
				if err != nil {
					return err
				}
				msg, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Fatalf("status %d: %s", res.StatusCode, msg)
				}
				return nil
			}
		}
	}
	nats := func(b *testing.B, t topic.Thing) func() error {
		d, err := devicekit.Connect(testCtx(b), devicekit.Config{Thing: t, URLs: []string{n.ClientURL()}, Password: devicekit.Password(e.password(t))})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = d.Close() })
		return func() error {
			_, err := d.PublishEvent(context.Background(), "bench", map[string]any{"door": "front", "n": 1})
			return err
		}
	}
	paths := []struct {
		name  string
		dev   func(b *testing.B, t topic.Thing) func() error
		first int // the first device of the path
	}{
		{"gateway", post(g.url + gateway.PathEvents), 0},
		{"bare-http-decode", post(bare.URL), 0},
		{"devicekit-nats", nats, benchDevices},
	}
	for _, p := range paths {
		for _, nd := range []int{1, benchDevices} {
			b.Run(p.name+"/devices="+itoa(nd), func(b *testing.B) {
				pubs := make([]func() error, nd)
				for i := range pubs {
					pubs[i] = p.dev(b, devices[p.first+i])
					if err := pubs[i](); err != nil { // warm: session, caches
						b.Fatal(err)
					}
				}
				lat := make([][]time.Duration, nd)
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for w := range nd {
					share := b.N / nd
					if w < b.N%nd {
						share++
					}
					wg.Go(func() {
						for range share {
							t0 := time.Now()
							if err := pubs[w](); err != nil {
								b.Error(err)
								return
							}
							lat[w] = append(lat[w], time.Since(t0))
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				all := slices.Concat(lat...)
				slices.Sort(all)
				if len(all) == 0 {
					return
				}
				b.ReportMetric(float64(len(all))/elapsed.Seconds(), "events/s")
				b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
			})
		}
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

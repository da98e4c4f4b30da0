package gateway_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/message"
)

// FuzzRequest sends arbitrary bodies, content types and CloudEvents
// headers as device r1 to a gateway in front of a real edge: whatever the
// input, the answer is never a server error, a refusal is a problem
// document naming its status, and a success says what was stored. The seed
// corpus (testdata/fuzz/FuzzRequest and the f.Add seeds) runs in every
// `go test`.
func FuzzRequest(f *testing.F) {
	e := newEnv(f)
	n := startNode(f, e, nil)
	g := startGateway(f, e, n, func(c *gateway.Config) { c.Rate = -1; c.MaxBodyBytes = 64 << 10 })
	_, good := event(f, r1, "evt", "door.opened", map[string]any{"door": "front", "n": 1})
	_, spoof := event(f, r2, "evt", "door.opened", nil)
	f.Add(uint8(0), good, "", "")
	f.Add(uint8(0), spoof, "", "")
	f.Add(uint8(1), []byte("["+string(good)+","+string(spoof)+"]"), "", "")
	f.Add(uint8(2), []byte(`{"a":1}`), "io.lintel.evt.x", "/acme/hq/reader/r1")
	f.Add(uint8(3), good, "", "")
	f.Add(uint8(4), []byte(`{"specversion":"1.0"}`), "", "")
	f.Add(uint8(0), []byte(`{"specversion":"1.0","id":"0190a0a0-0000-7000-8000-000000000001","source":"/acme/hq/reader/r1","type":"io.lintel.evt","datacontenttype":"application/msgpack","data_base64":"3g=="}`), "", "")
	f.Fuzz(func(t *testing.T, mode uint8, body []byte, ceType, ceSource string) {
		path := gateway.PathEvents
		h := http.Header{}
		switch mode % 5 {
		case 0:
			h.Set("Content-Type", message.ContentTypeCloudEventsJSON)
		case 1:
			h.Set("Content-Type", gateway.ContentTypeCloudEventsBatch)
		case 2:
			h.Set("Content-Type", "application/json")
			h.Set("Ce-Specversion", "1.0")
			h.Set("Ce-Id", "0190a0a0-0000-7000-8000-000000000002")
			h.Set("Ce-Type", ceType)
			h.Set("Ce-Source", ceSource)
		case 3:
			path = gateway.PathRequests
			h.Set("Content-Type", message.ContentTypeCloudEventsJSON)
		case 4:
			h.Set("Content-Type", ceType)
		}
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		for k, v := range h {
			if strings.ContainsAny(strings.Join(v, ""), "\r\n\x00") {
				return // not a header an HTTP client can send
			}
			req.Header[k] = v
		}
		req.SetBasicAuth(authz.DeviceUser(r1), e.password(r1))
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		res := rec.Result()
		if res.StatusCode >= 500 && res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d for mode %d body %q: %s", res.StatusCode, mode%5, body, rec.Body.Bytes())
		}
		if res.StatusCode == http.StatusServiceUnavailable && path != gateway.PathRequests {
			t.Fatalf("503 for an event: %s", rec.Body.Bytes())
		}
		if res.StatusCode >= 400 {
			var p gateway.Problem
			if res.Header.Get("Content-Type") != gateway.ContentTypeProblem || json.Unmarshal(rec.Body.Bytes(), &p) != nil || p.Status != res.StatusCode || p.Detail == "" {
				t.Fatalf("status %d without a problem document: %q", res.StatusCode, rec.Body.Bytes())
			}
			if res.StatusCode == http.StatusForbidden && p.Subject == "" {
				t.Fatalf("403 without the subject: %+v", p)
			}
		}
	})
}

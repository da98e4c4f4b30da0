package api_test

import (
	"testing"
	"time"

	"github.com/lintel-io/lintel/central/api"
)

// TestOpenAPIResponses: the OpenAPI document describes the live stream
// as text/event-stream and the main list routes' answers by their
// fields.
func TestOpenAPIResponses(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Content map[string]struct {
					Schema    map[string]any `json:"schema"`
					EventData map[string]any `json:"x-lintel-event-data"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	f.do(t, "GET", api.PathPrefix+"/openapi.json", "", nil).decode(t, &doc)
	stream := doc.Paths[api.PathPrefix+"/events/stream"]["get"].Responses["2XX"].Content
	if _, ok := stream["application/json"]; ok || len(stream) != 1 {
		t.Fatalf("the live stream's answer: %v, want text/event-stream only", stream)
	}
	ev, ok := stream["text/event-stream"]
	if !ok || ev.Schema["type"] != "string" || ev.EventData["properties"] == nil {
		t.Fatalf("the live stream's answer: %+v", stream)
	}
	props := func(path string) map[string]any {
		t.Helper()
		c, ok := doc.Paths[api.PathPrefix+path]["get"].Responses["2XX"].Content["application/json"]
		if !ok {
			t.Fatalf("GET %s: no JSON answer", path)
		}
		s := c.Schema
		if s["type"] == "array" {
			s, _ = s["items"].(map[string]any)
		} else if p, _ := s["properties"].(map[string]any); p["items"] != nil {
			s, _ = p["items"].(map[string]any)["items"].(map[string]any)
		}
		p, _ := s["properties"].(map[string]any)
		if len(p) == 0 {
			t.Fatalf("GET %s: no fields described: %v", path, c.Schema)
		}
		return p
	}
	for path, fields := range map[string][]string{
		"/edges":                    {"edge", "link"},
		"/decisions":                {"time", "edge", "door", "granted"},
		"/events":                   {"time", "thing", "name"},
		"/edges/{edge}/credentials": {"id", "holder", "state"},
		"/tokens":                   {"id", "name", "role"},
		"/audit-log":                {"seq", "who", "action", "before", "after"},
	} {
		p := props(path)
		for _, name := range fields {
			if p[name] == nil {
				t.Errorf("GET %s: field %q not described: %v", path, name, p)
			}
		}
		if path == "/tokens" && p["hash"] != nil {
			t.Error("GET /tokens describes the hash, which is never served")
		}
	}
	if tm := props("/decisions")["time"].(map[string]any); tm["format"] != "date-time" {
		t.Errorf("a time: %v", tm)
	}
}

// TestOperatorAuditRetention: the operator audit log keeps entries for
// the configured age: 400 days by default, and a new setting applies to
// the existing stream.
func TestOperatorAuditRetention(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	js := f.c.JetStream("acme")
	maxAge := func() time.Duration {
		t.Helper()
		str, err := js.Stream(ctx(t), api.OperatorAuditStream("acme"))
		if err != nil {
			t.Fatal(err)
		}
		info, err := str.Info(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		return info.Config.MaxAge
	}
	if got := maxAge(); got != 400*24*time.Hour {
		t.Fatalf("default max age %v, want 400 days", got)
	}
	srv, err := api.Start(ctx(t), api.Config{Central: f.c, OperatorAuditMaxAge: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if got := maxAge(); got != 30*24*time.Hour {
		t.Fatalf("max age %v after a start with 30 days", got)
	}
	if _, err := api.Start(ctx(t), api.Config{Central: f.c, OperatorAuditMaxAge: -time.Hour}); err == nil {
		t.Fatal("a negative max age was accepted")
	}
}

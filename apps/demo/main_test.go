package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), nil, &out, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"subject: acme.hq.reader.door-1.evt",
		"received on acme.hq.reader.door-1.evt: same id true",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	_, ce, ok := strings.Cut(text, "as CloudEvents JSON: ")
	if !ok {
		t.Fatalf("no CloudEvents line:\n%s", text)
	}
	var ev struct {
		SpecVersion string `json:"specversion"`
		Source      string `json:"source"`
		Type        string `json:"type"`
		Data        struct {
			Granted bool   `json:"granted"`
			Door    string `json:"door"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(ce)), &ev); err != nil {
		t.Fatalf("CloudEvents line is not JSON: %v\n%s", err, ce)
	}
	if ev.SpecVersion != "1.0" || ev.Source != "/acme/hq/reader/door-1" || ev.Type != "io.lintel.evt.access.granted" || !ev.Data.Granted || ev.Data.Door != "front" {
		t.Errorf("unexpected CloudEvent %+v", ev)
	}
}

func TestRunRejectsArguments(t *testing.T) {
	if err := run(context.Background(), []string{"extra"}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Fatal("run accepted an argument")
	}
}

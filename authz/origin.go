package authz

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/lintel-io/lintel/internal/topology"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers of sourced messages.
const (
	// HeaderStreamSource is the header nats-server puts on a message that a
	// stream stored through sourcing. Its first field names the source; the
	// rest (the origin's sequence and subject) are the origin's word.
	HeaderStreamSource = "Nats-Stream-Source"
	// HeaderRepairOf marks a message an edge published again into its platform
	// stream because central never stored the original: "{flow} {sequence}",
	// the original's flow and sequence in the edge's stream of that flow.
	HeaderRepairOf = "Lintel-Repair-Of"
)

// SourceName returns the first field of the [HeaderStreamSource] header
// that nats-server writes on every message central's stream stores through
// src: the source's name, then ":" and a hash of its external API prefix
// when it has one, then ":C=" and a hash of its consumer's name when it has
// one (nats-server v2.15.2, server/stream.go:1217-1224, composeIName; the
// hash is getHash, server/events.go:1165-1178: 8 characters of SHA-256 in
// base 62).
//
// That field can be trusted, the rest of the header cannot:
// nats-server strips any incoming header of that name from a sourced
// message and writes its own (server/stream.go:4952 and :4959, whose
// genSourceHeader at :5026-5030 writes the source's index name first),
// and refuses a message published directly into a stream with the header
// (server/stream.go:7004-7005, and server/jetstream_batching.go:632-633 on a
// clustered stream). The sequence and subject fields that follow are taken
// from the origin's reply subject and subject, which a compromised edge
// controls.
func SourceName(src *jetstream.StreamSource) string {
	name := src.Name
	if src.External != nil {
		name += ":" + serverHash(src.External.APIPrefix)
	}
	if src.Consumer != nil {
		name += ":C=" + serverHash(src.Consumer.Name)
	}
	return name
}

// serverHash is nats-server's getHash: the first 8 bytes of the SHA-256 of
// s, each mapped to one of 62 digits (server/events.go:1165-1178,
// server/accounts.go:2459-2460).
func serverHash(s string) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	sum := sha256.Sum256([]byte(s))
	var b [8]byte
	for i := range b {
		b[i] = digits[int(sum[i]%62)]
	}
	return string(b[:])
}

// Origin is where a message of central's event stream came from.
type Origin struct {
	// Edge is the edge whose stream it was sourced from; empty for one of
	// central's own messages.
	Edge string
	// Source is the first field of its [HeaderStreamSource] header; empty
	// for one of central's own messages.
	Source string
}

// OriginError reports a message of central's event stream that its
// origin was not allowed to write. It wraps [ErrOrigin].
type OriginError struct {
	Subject string // the message's subject
	Source  string // the first field of its HeaderStreamSource, "" if it had none
	Edge    string // the edge Source names, "" if none
	Reason  string // what is wrong, e.g. "sourced from edge hq, not acme.lab"
}

// Error returns "authz: origin of {Subject} (source {Source}): {Reason}",
// with "central (not sourced)" for an empty Source.
func (e *OriginError) Error() string {
	src := e.Source
	if src == "" {
		src = "central (not sourced)"
	}
	return fmt.Sprintf("authz: origin of %s (source %s): %s", e.Subject, src, e.Reason)
}

// Unwrap returns [ErrOrigin].
func (e *OriginError) Unwrap() error { return ErrOrigin }

// SourceTable maps the sources of an org's central event stream to its
// edges, and checks that a message stored there came from where its
// subject says it did ([SourceTable.Check]). The names come from the
// topology ([NamesFor], [EdgeNames.Sources]), never from splitting the
// header. Build it with [NewSourceTable]: the edges given up front are
// the ones a refused message can be traced to; Check learns the edge a
// subject names when it first sees it. It is safe for concurrent use.
type SourceTable struct {
	org     string
	central []topic.Filter

	mu    sync.RWMutex
	edges map[string]string // source name → edge
}

// NewSourceTable returns the table of org's central event stream with
// edges. It returns an error wrapping [ErrReservedName] or a
// [*topic.Error] for a bad org or edge, as [NamesFor] does.
func NewSourceTable(org string, edges ...string) (*SourceTable, error) {
	if err := topology.CheckOrg(org); err != nil {
		return nil, err
	}
	t := &SourceTable{org: org, edges: map[string]string{}}
	for _, s := range CentralEventSubjects(org) {
		f, err := topic.ParseFilter(s)
		if err != nil {
			return nil, fmt.Errorf("authz: central event subject %s: %w", s, err)
		}
		t.central = append(t.central, f)
	}
	for _, e := range edges {
		if err := t.Add(e); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// NewSourceTableFor returns the table of org with every edge of org in inv.
func NewSourceTableFor(inv *Inventory, org string) (*SourceTable, error) {
	var edges []string
	for _, e := range inv.Edges {
		if e.Org == org {
			edges = append(edges, e.Code)
		}
	}
	return NewSourceTable(org, edges...)
}

// Org returns the table's org.
func (t *SourceTable) Org() string { return t.org }

// Add adds edge of the table's org. It returns the error of [NamesFor].
func (t *SourceTable) Add(edge string) error {
	n, err := NamesFor(t.org, edge)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, src := range n.Sources() { // one list of the edge's sourced streams
		t.edges[SourceName(src)] = edge
	}
	return nil
}

// Edges returns the table's edges, sorted.
func (t *SourceTable) Edges() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []string
	for _, e := range t.edges {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	slices.Sort(out)
	return out
}

// Check reports where a message stored in the org's central event stream
// on subject with header h came from, and whether that origin may have
// written it:
//
//   - a sourced message (one with a [HeaderStreamSource] header) must come
//     from a source of the table, and that source's edge must be the edge
//     of the subject, in the table's org; it must not be on a system
//     subject ("{org}.{edge}._sys.…"), which only central writes;
//   - a message without that header was published at central, and is
//     accepted only on central's own subjects ([CentralEventSubjects]).
//
// It returns an [*OriginError] (wrapping [ErrOrigin]) when the message
// must not be believed.
func (t *SourceTable) Check(subject string, h nats.Header) (Origin, error) {
	src := ""
	if vs := h.Values(HeaderStreamSource); len(vs) > 0 {
		src = vs[0]
	}
	first, _, _ := strings.Cut(src, " ")
	refuse := func(edge, reason string) (Origin, error) {
		return Origin{Edge: edge, Source: first}, &OriginError{Subject: subject, Source: first, Edge: edge, Reason: reason}
	}
	subj, err := topic.Parse(subject)
	if err != nil {
		return refuse("", "not a thing's subject: "+err.Error())
	}
	if src == "" {
		for _, f := range t.central {
			if f.Matches(subj) {
				return Origin{}, nil
			}
		}
		return refuse("", "not sourced, and not one of central's own subjects")
	}
	t.mu.RLock()
	edge, ok := t.edges[first]
	t.mu.RUnlock()
	if !ok && subj.Org == t.org {
		// Learn the subject's edge: its sources are fixed by the topology,
		// and only central's configuration can make a message carry them.
		if t.Add(subj.Edge) == nil {
			t.mu.RLock()
			edge, ok = t.edges[first]
			t.mu.RUnlock()
		}
	}
	switch {
	case !ok:
		return refuse("", "unknown source")
	case subj.Org != t.org || subj.Edge != edge:
		return refuse(edge, "sourced from edge "+t.org+"."+edge+", not "+subj.Org+"."+subj.Edge)
	case subj.Type == topic.ThingTypeSystem:
		return refuse(edge, "system subject sourced from an edge")
	}
	return Origin{Edge: edge, Source: first}, nil
}

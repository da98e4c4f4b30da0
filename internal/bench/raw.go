package bench

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The raw baseline's topology: a hub server (central's place) and an edge
// server linked to it as a leaf node, each its own JetStream domain, the
// edge fsyncing before every acknowledgement; a stream on the edge and one
// on the hub sourcing it, as Lintel's edge and central streams are.
const (
	rawHubDomain  = "rawhub"
	rawEdgeDomain = "rawedge"
	rawEdgeStream = "RAW-EDGE"
	rawHubStream  = "RAW-CENTRAL"
)

// rawPair is the raw baseline's topology, plain nats-server and nats.go.
type rawPair struct {
	hub, edge     *server.Server
	hubNC, edgeNC *nats.Conn
	hubJS, edgeJS jetstream.JetStream
}

// startRawPair starts the raw topology under dir with the edge stream
// holding subjects; with sourced, the hub's stream sources it at once;
// with syncAlways, the edge fsyncs before every acknowledgement.
func startRawPair(ctx context.Context, dir string, subjects []string, sourced, syncAlways bool) (*rawPair, error) {
	p := &rawPair{}
	hubOpts := &server.Options{Host: loopback, Port: -1, JetStream: true, JetStreamDomain: rawHubDomain,
		StoreDir: filepath.Join(dir, "hub"), NoLog: true, NoSigs: true,
		LeafNode: server.LeafNodeOpts{Host: loopback, Port: -1}}
	var err error
	if p.hub, err = startServer(hubOpts); err != nil {
		return nil, err
	}
	u, err := url.Parse("nats-leaf://" + net.JoinHostPort(loopback, strconv.Itoa(hubOpts.LeafNode.Port)))
	if err != nil {
		p.close()
		return nil, fmt.Errorf("bench: raw leaf URL: %w", err)
	}
	edgeOpts := &server.Options{Host: loopback, Port: -1, JetStream: true, JetStreamDomain: rawEdgeDomain,
		StoreDir: filepath.Join(dir, "edge"), NoLog: true, NoSigs: true, SyncAlways: syncAlways,
		LeafNode: server.LeafNodeOpts{ReconnectInterval: 100 * time.Millisecond, Remotes: []*server.RemoteLeafOpts{{URLs: []*url.URL{u}}}}}
	if p.edge, err = startServer(edgeOpts); err != nil {
		p.close()
		return nil, err
	}
	if err := waitFor(ctx, "the raw leaf link", 10*time.Millisecond, func() bool { return p.edge.NumLeafNodes() > 0 }); err != nil {
		p.close()
		return nil, err
	}
	if p.hubNC, p.hubJS, err = connectJS(p.hub.ClientURL()); err != nil {
		p.close()
		return nil, err
	}
	if p.edgeNC, p.edgeJS, err = connectJS(p.edge.ClientURL()); err != nil {
		p.close()
		return nil, err
	}
	if _, err := p.edgeJS.CreateStream(ctx, jetstream.StreamConfig{Name: rawEdgeStream, Subjects: subjects,
		Storage: jetstream.FileStorage}); err != nil {
		p.close()
		return nil, fmt.Errorf("bench: raw edge stream: %w", err)
	}
	if sourced {
		if err := p.source(ctx); err != nil {
			p.close()
			return nil, err
		}
	}
	return p, nil
}

// source creates the hub's stream, sourcing the edge's.
func (p *rawPair) source(ctx context.Context) error {
	if _, err := p.hubJS.CreateStream(ctx, jetstream.StreamConfig{Name: rawHubStream, Storage: jetstream.FileStorage,
		Sources: []*jetstream.StreamSource{{Name: rawEdgeStream,
			External: &jetstream.ExternalStream{APIPrefix: "$JS." + rawEdgeDomain + ".API"}}}}); err != nil {
		return fmt.Errorf("bench: raw hub stream: %w", err)
	}
	return nil
}

// hubMsgs returns how many messages the hub's stream holds.
func (p *rawPair) hubMsgs(ctx context.Context) uint64 { return streamMsgs(ctx, p.hubJS, rawHubStream) }

func (p *rawPair) close() {
	for _, nc := range []*nats.Conn{p.hubNC, p.edgeNC} {
		if nc != nil {
			nc.Close()
		}
	}
	for _, s := range []*server.Server{p.edge, p.hub} {
		if s != nil {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
}

// startServer starts a nats-server of opts and waits until it is ready.
func startServer(opts *server.Options) (*server.Server, error) {
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bench: nats-server: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(time.Minute) {
		s.Shutdown()
		return nil, fmt.Errorf("bench: nats-server not ready")
	}
	return s, nil
}

// connectJS connects to url.
func connectJS(url string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		return nil, nil, fmt.Errorf("bench: connect %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("bench: jetstream: %w", err)
	}
	return nc, js, nil
}

// streamMsgs returns how many messages stream holds, 0 when it cannot
// be read.
func streamMsgs(ctx context.Context, js jetstream.JetStream, stream string) uint64 {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0
	}
	return s.CachedInfo().State.Msgs
}

// subjectMsgs returns how many messages of stream match filter (a
// wildcard over few subjects), 0 when it cannot be read.
func subjectMsgs(ctx context.Context, js jetstream.JetStream, stream, filter string) uint64 {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return 0
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

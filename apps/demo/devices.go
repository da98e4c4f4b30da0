package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/devicekit/simulator"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/gateway"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// The live mode's site, beside door front: a door per name, each with a
// simulated reader, lock and door contact, environment sensors on the
// first few doors, a visitor kiosk that speaks HTTP through the edge's
// gateway, a sensor on the roof that speaks MQTT, and the operator.
var doorNames = []string{"lobby", "office", "lab", "server-room", "garage", "loading-dock", "roof-hatch", "archive"}

const (
	envSensors   = 6
	operatorName = "ops"
	// simSeed seeds the simulated devices: one seed, one behaviour.
	simSeed = 1
)

var (
	kiosk      = topic.Thing{Org: org, Edge: edge, Type: "kiosk", Code: "lobby"}
	roofSensor = topic.Thing{Org: org, Edge: edge, Type: "sensor", Code: "roof"}
)

// Mean intervals of the live mode's devices at speed 1.
const (
	readerEvery    = 30 * time.Second
	doorEvery      = 20 * time.Second
	telemetryEvery = 10 * time.Second
	kioskEvery     = 20 * time.Second
	roofEvery      = 5 * time.Second
)

// simConfig is the simulated fleet, its devices acting speed times as
// often as at speed 1; Connect is left to the caller.
func simConfig(speed float64) simulator.Config {
	return simulator.Config{
		Org: org, Edge: edge, Seed: simSeed,
		Readers: len(doorNames), Locks: len(doorNames), DoorSensors: len(doorNames), EnvSensors: envSensors,
		ReaderInterval: faster(readerEvery, speed), DoorInterval: faster(doorEvery, speed),
		TelemetryInterval: faster(telemetryEvery, speed),
	}
}

// faster divides d by speed.
func faster(d time.Duration, speed float64) time.Duration {
	return time.Duration(math.Max(float64(d)/speed, float64(time.Millisecond)))
}

// simulatedThings returns the simulated devices by kind, in order.
func simulatedThings() map[simulator.Kind][]topic.Thing {
	by := make(map[simulator.Kind][]topic.Thing)
	for _, t := range simulator.Things(simConfig(1)) {
		by[simulator.Kind(t.Type)] = append(by[simulator.Kind(t.Type)], t)
	}
	return by
}

// liveInventory adds the live mode's identities and doors to inv.
func liveInventory(inv *authz.Inventory) {
	inv.Services = append(inv.Services, authz.Service{Name: operatorName, Kind: authz.ServiceOperator, Org: org})
	for _, t := range simulator.Things(simConfig(1)) {
		inv.Things = append(inv.Things, authz.Thing{Thing: t})
	}
	inv.Things = append(inv.Things,
		authz.Thing{Thing: topic.Thing{Org: org, Edge: edge, Type: kiosk.Type, Code: kiosk.Code}},
		authz.Thing{Thing: topic.Thing{Org: org, Edge: edge, Type: roofSensor.Type, Code: roofSensor.Code}, MQTT: true})
	sim := simulatedThings()
	for i, name := range doorNames {
		d := authz.Door{Org: org, Edge: edge, Code: name,
			Readers: []string{sim[simulator.Reader][i].Code},
			Locks:   []string{sim[simulator.Lock][i].Code},
			Sensors: []string{sim[simulator.DoorSensor][i].Code}}
		if i < len(sim[simulator.EnvSensor]) {
			d.Sensors = append(d.Sensors, sim[simulator.EnvSensor][i].Code)
		}
		inv.Doors = append(inv.Doors, d)
	}
}

// doorOf returns the door of each thing code of inv's doors.
func doorOf(inv *authz.Inventory) map[string]string {
	m := make(map[string]string)
	for _, d := range inv.Doors {
		for _, codes := range [][]string{d.Readers, d.Locks, d.Sensors} {
			for _, c := range codes {
				m[c] = d.Code
			}
		}
	}
	return m
}

// badge is a card of the live mode's people. Cards travel only from the
// reader to the edge, which hashes them; they are never printed.
type badge struct {
	holder string             // "" for a card nobody enrolled
	card   message.Credential // as the reader reads it
	doors  []string           // the doors it opens; nil for every door
	reason string             // why it is suspended, "" for an active card
	weight int                // how often readers read it, relative to the others
}

// badges are the cards the simulated readers read: most enrolled, some
// not, one suspended, and some holders allowed at some doors only.
var badges = []badge{
	{holder: "alice", card: aliceCard, weight: 3},
	{holder: "bob", card: "04C3D2E1F00A17", doors: []string{"lobby", "office", "lab", "garage"}, weight: 2},
	{holder: "carol", card: "04731F2A9C5D01", doors: []string{"lobby", "office", "server-room", "loading-dock", "archive"}, weight: 2},
	{holder: "dave", card: "0419E4B7720C3A", reason: "on leave", weight: 1},
	{card: unknownCard, weight: 1},
	{card: "04D5A0A81C62F3", weight: 1},
}

// badgeDeck lists the cards the readers read, each as often as its weight.
func badgeDeck() []message.Credential {
	var deck []message.Credential
	for _, b := range badges {
		for range b.weight {
			deck = append(deck, b.card)
		}
	}
	return deck
}

// siteDevice is a simulated device placed in the demo's site. The
// simulator names its doors after its devices and draws random card
// numbers; siteDevice reports the door its thing has in the inventory,
// and its reader reads the site's badges instead, picked by the drawn
// number (so that the simulator's seed still decides).
type siteDevice struct {
	devicekit.Device
	door  string               // the thing's door
	cards []message.Credential // what a reader reads; nil for other kinds
}

var _ devicekit.Device = (*siteDevice)(nil)

// Request sends the request; an access request is for the device's door,
// with one of its cards.
func (d *siteDevice) Request(ctx context.Context, name string, payload any) (*message.Envelope, error) {
	if ar, ok := payload.(message.AccessRequest); ok {
		ar.Door = d.door
		if len(d.cards) > 0 {
			h := fnv.New32a()
			h.Write([]byte(ar.Credential))
			ar.Credential = d.cards[h.Sum32()%uint32(len(d.cards))]
		}
		payload = ar
	}
	return d.Device.Request(ctx, name, payload)
}

// PublishEvent publishes the event, a door's for the device's door.
func (d *siteDevice) PublishEvent(ctx context.Context, name string, payload any) (message.ID, error) {
	return d.Device.PublishEvent(ctx, name, d.place(payload))
}

// PublishState publishes the state, a door's for the device's door.
func (d *siteDevice) PublishState(ctx context.Context, name string, payload any) (message.ID, error) {
	return d.Device.PublishState(ctx, name, d.place(payload))
}

func (d *siteDevice) place(payload any) any {
	if ds, ok := payload.(message.DoorState); ok && d.door != "" {
		ds.Door = d.door
		return ds
	}
	return payload
}

// startSimulator starts the simulated fleet, connected to the edge over
// NATS like any device.
func (l *live) startSimulator(ctx context.Context) error {
	doors, deck := doorOf(l.inv), badgeDeck()
	cfg := simConfig(l.opts.speed)
	cfg.Logger = l.log
	cfg.Connect = func(ctx context.Context, t topic.Thing) (devicekit.Device, error) {
		d, err := devicekit.Connect(ctx, devicekit.Config{
			Thing: t, URLs: []string{l.node.ClientURL()},
			Password: devicekit.Password(l.password(authz.DeviceUser(t))), Logger: l.log,
			CommandKeys: l.st.CommandPublicKeys(org, edge),
		})
		if err != nil {
			return nil, err
		}
		sd := &siteDevice{Device: d, door: doors[t.Code]}
		if t.Type == string(simulator.Reader) {
			sd.cards = deck
		}
		return sd, nil
	}
	sim, err := simulator.Start(ctx, cfg)
	if err != nil {
		return fmt.Errorf("start the simulated devices: %w", err)
	}
	l.sim = sim
	l.onClose(sim.Stop)
	return nil
}

// enrolBadges has central enrol the enrolled badges at edge hq, suspends
// the one with a reason, and waits for the edge to apply them.
func (l *live) enrolBadges(ctx context.Context) error {
	var creds []*access.Credential
	var suspend []string
	for _, b := range badges {
		if b.holder == "" {
			continue
		}
		id, err := l.manager.Hash(b.card)
		if err != nil {
			return fmt.Errorf("hash %s's card: %w", b.holder, err)
		}
		doors := b.doors
		if doors == nil {
			doors = append([]string{door}, doorNames...)
		}
		creds = append(creds, &access.Credential{ID: id, Holder: b.holder, Kind: message.CredentialCard,
			State: access.StateActive, Doors: doors})
		if b.reason != "" {
			suspend = append(suspend, id, b.reason)
		}
	}
	rev, err := l.manager.PutMany(ctx, edge, creds)
	if err != nil {
		return fmt.Errorf("enrol the badges: %w", err)
	}
	for i := 0; i < len(suspend); i += 2 {
		revs, err := l.manager.Suspend(ctx, suspend[i], suspend[i+1])
		if err != nil {
			return fmt.Errorf("suspend a badge: %w", err)
		}
		rev = max(rev, revs[edge])
	}
	return waitFor(ctx, fmt.Sprintf("the edge to apply set version %d", rev), func() bool { return l.service.Version() >= rev })
}

// startKiosk serves the edge's HTTP gateway on a loopback port and
// connects the visitor kiosk through it, which posts a check-in event
// every kioskEvery (at speed 1).
func (l *live) startKiosk(ctx context.Context) error {
	auth, err := authz.NewEdgeAuthenticator(l.inv, l.st, org, edge, authz.EdgeAuthConfig{Logger: l.log})
	if err != nil {
		return fmt.Errorf("gateway: credentials: %w", err)
	}
	l.onClose(auth.Close)
	gw, err := gateway.New(gateway.Config{Org: org, Edge: edge, URLs: []string{l.node.ClientURL()}, Auth: auth, Logger: l.log})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
	if err != nil {
		_ = gw.Close()
		return fmt.Errorf("gateway: %w", err)
	}
	srv := gateway.NewServer(ln.Addr().String(), gw, l.log)
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.fail(fmt.Errorf("gateway: %w", err))
		}
	}()
	l.onClose(func() {
		// Event streams and long polls end with the gateway; the
		// server's Shutdown waits for the rest.
		_ = gw.Close()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-served
	})
	l.gatewayURL = "http://" + ln.Addr().String()

	dev, err := devicekit.ConnectHTTP(ctx, devicekit.HTTPConfig{
		Thing: kiosk, URL: l.gatewayURL, Password: devicekit.Password(l.password(authz.DeviceUser(kiosk))),
		Model: "visitor kiosk", Logger: l.log,
	})
	if err != nil {
		return fmt.Errorf("connect the kiosk through the gateway: %w", err)
	}
	l.onClose(func() { _ = dev.Close() })
	hosts := []string{"alice", "bob", "carol"}
	n := 0
	l.every(faster(kioskEvery, l.opts.speed), func(ctx context.Context) {
		n++
		visit := map[string]string{"visitor": fmt.Sprintf("V-%04d", n), "host": hosts[n%len(hosts)]}
		if _, err := dev.PublishEvent(ctx, nameCheckedIn, visit); err != nil && ctx.Err() == nil {
			l.out.line("kiosk %s (HTTP): check-in not stored: %v", kiosk.Code, err)
		}
	})
	return nil
}

// nameCheckedIn is the kiosk's event: a visitor checked in.
const nameCheckedIn = "visitor.checked_in"

// roofHeartbeats is how many readings the roof sensor sends per heartbeat.
const roofHeartbeats = 6

// startRoofSensor connects the roof's sensor to the edge's MQTT listener
// with an MQTT 3.1.1 client, as its device user. It publishes msgpack
// envelopes at QoS 1 on its own topics: its birth, a temperature reading
// every roofEvery (at speed 1), a heartbeat every roofHeartbeats readings,
// and its death when it stops.
func (l *live) startRoofSensor(ctx context.Context) error {
	opts := mqtt.NewClientOptions().
		AddBroker("tcp://" + l.node.MQTTAddr()).
		SetClientID(authz.MQTTClientID(roofSensor)).
		SetUsername(authz.DeviceUser(roofSensor)).
		SetPassword(l.password(authz.DeviceUser(roofSensor))).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetConnectTimeout(waitTimeout)
	c := mqtt.NewClient(opts)
	if err := waitToken(ctx, c.Connect()); err != nil {
		c.Disconnect(0)
		return fmt.Errorf("connect the roof sensor over MQTT: %w", err)
	}
	d := &mqttDevice{c: c, thing: roofSensor, boot: (&message.IDGenerator{}).New(), started: time.Now()}
	every := faster(roofEvery, l.opts.speed)
	if err := d.publish(ctx, topic.State, message.NameThingBirth,
		message.Birth{BootID: d.boot, Model: "roof sensor (MQTT)", HeartbeatInterval: roofHeartbeats * every}); err != nil {
		c.Disconnect(0)
		return fmt.Errorf("roof sensor over MQTT: birth: %w", err)
	}
	l.onClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_ = d.publish(ctx, topic.State, message.NameThingDeath, message.Death{BootID: d.boot, Reason: "shutdown", LastSeq: d.seq})
		c.Disconnect(250)
	})

	rng := rand.New(rand.NewPCG(simSeed, 0))
	temp, n := 14.0, 0
	l.every(every, func(ctx context.Context) {
		n++
		temp += rng.NormFloat64() * 0.2
		err := d.publish(ctx, topic.Telemetry, message.NameSensorReading,
			message.SensorReading{Metric: "temperature", Value: math.Round(temp*100) / 100, Unit: "Cel"})
		if err == nil && n%roofHeartbeats == 0 {
			err = d.publish(ctx, topic.State, message.NameThingHeartbeat, message.Heartbeat{BootID: d.boot, Uptime: time.Since(d.started)})
		}
		if err != nil && ctx.Err() == nil {
			l.out.line("sensor %s (MQTT): not sent: %v", roofSensor.Code, err)
		}
	})
	return nil
}

// mqttDevice is a device that speaks MQTT: it publishes Lintel envelopes,
// msgpack encoded, on the topics of its subjects, "acme/hq/sensor/roof/tlm"
// for "acme.hq.sensor.roof.tlm". Its methods are called by one goroutine at
// a time.
type mqttDevice struct {
	c       mqtt.Client
	thing   topic.Thing
	ids     message.IDGenerator
	boot    message.ID
	seq     uint64
	started time.Time
}

// publish publishes a message of type mt named name at QoS 1 and waits
// for the server's PUBACK.
func (d *mqttDevice) publish(ctx context.Context, mt topic.MessageType, name string, payload any) error {
	d.seq++
	e := &message.Envelope{ID: d.ids.New(), Time: time.Now().UTC(), Source: d.thing, Type: mt, Name: name,
		BootID: d.boot, Seq: d.seq}
	if err := message.SetPayload(e, payload); err != nil {
		return err
	}
	data, err := e.AppendMsgpack(nil)
	if err != nil {
		return err
	}
	t := strings.ReplaceAll(d.thing.Subject(mt).String(), ".", "/")
	return waitToken(ctx, d.c.Publish(t, 1, false, data))
}

// waitToken waits for an MQTT operation, at most until ctx ends or
// waitTimeout.
func waitToken(ctx context.Context, t mqtt.Token) error {
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

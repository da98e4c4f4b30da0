package api

import (
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// DoorItem is a door of the inventory with its last reported state.
type DoorItem struct {
	Edge    string   `json:"edge"`              // the edge code
	Code    string   `json:"code"`              // the door code
	Name    string   `json:"name,omitempty"`    // its display name
	Readers []string `json:"readers,omitempty"` // its readers, EDGE.TYPE.CODE
	Locks   []string `json:"locks,omitempty"`   // its locks, EDGE.TYPE.CODE: where lock and unlock commands go
	Sensors []string `json:"sensors,omitempty"` // its sensors, EDGE.TYPE.CODE
	// State is the door's last door.state report from its locks or
	// sensors, and StateAt when it was made; nil when central holds none.
	State   *message.DoorState `json:"state,omitempty"`
	StateAt time.Time          `json:"state_at,omitzero"` // see State
}

func (s *Server) listDoors(c *call) (any, error) {
	edge, err := s.edgeFilter(c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	str, err := s.eventStream(ctx)
	if err != nil {
		return nil, err
	}
	inv := s.central.Inventory()
	types := map[[2]string]string{} // edge, code -> type
	for _, t := range inv.Things {
		if t.Org == s.org {
			types[[2]string{t.Edge, t.Code}] = t.Type
		}
	}
	out := []DoorItem{}
	for _, d := range inv.Doors {
		if d.Org != s.org || (edge != "" && d.Edge != edge) {
			continue
		}
		it := DoorItem{Edge: d.Edge, Code: d.Code, Name: d.Name}
		refs := func(codes []string) ([]string, []topic.Thing) {
			var rs []string
			var ts []topic.Thing
			for _, code := range codes {
				t := topic.Thing{Org: s.org, Edge: d.Edge, Type: types[[2]string{d.Edge, code}], Code: code}
				if t.Type == "" {
					continue
				}
				rs, ts = append(rs, thingRef(t)), append(ts, t)
			}
			return rs, ts
		}
		var locks, sensors []topic.Thing
		it.Readers, _ = refs(d.Readers)
		it.Locks, locks = refs(d.Locks)
		it.Sensors, sensors = refs(d.Sensors)
		for _, t := range append(locks, sensors...) {
			m, err := str.GetLastMsgForSubject(ctx, t.Subject(topic.State).String())
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			e, err := message.FromMsg(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
			if err != nil || e.Name != message.NameDoorState {
				continue
			}
			ds, err := message.DecodePayload[message.DoorState](e)
			if err != nil || ds.Door != d.Code || !e.Time.After(it.StateAt) {
				continue
			}
			it.State, it.StateAt = &ds, e.Time
		}
		out = append(out, it)
	}
	return out, nil
}

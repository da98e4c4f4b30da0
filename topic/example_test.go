package topic_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/lintel-io/lintel/topic"
)

func ExampleParse() {
	s, err := topic.Parse("acme.hq.reader.door-1.evt")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Org, s.Edge, s.Type, s.Code, s.MessageType)
	fmt.Println(s.Thing)
	// Output:
	// acme hq reader door-1 evt
	// acme.hq.reader.door-1
}

func ExampleParse_error() {
	_, err := topic.Parse("acme.hq.reader.door 1.evt")
	fmt.Println(err)

	var te *topic.Error
	if errors.As(err, &te) {
		fmt.Println("part:", te.Part)
	}
	fmt.Println("invalid character:", errors.Is(err, topic.ErrInvalidChar))
	// Output:
	// topic: thing_code "door 1": space not allowed
	// part: thing_code
	// invalid character: true
}

func ExampleNew() {
	s, err := topic.New("acme", "hq", "lock", "front", topic.Command)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s)

	_, err = topic.New("acme", "hq", "lock", "front.>", topic.Command)
	fmt.Println(err)
	// Output:
	// acme.hq.lock.front.cmd
	// topic: thing_code "front.>": '.' not allowed (it separates tokens)
}

func ExampleAppendSubject() {
	s, err := topic.New("acme", "hq", "sensor", "t1", topic.Telemetry)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Reuse one buffer for many subjects; with enough capacity, no allocation.
	buf := make([]byte, 0, 64)
	buf = append(buf, "PUB "...)
	buf = topic.AppendSubject(buf, s)
	buf = append(buf, '\n')
	os.Stdout.Write(buf)
	// Output:
	// PUB acme.hq.sensor.t1.tlm
}

func ExampleEdgeFilter() {
	f, err := topic.EdgeFilter("acme", "hq")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f)
	for _, in := range []string{"acme.hq.reader.r1.evt", "acme.b2.reader.r1.evt"} {
		s, err := topic.Parse(in)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(in, f.Matches(s))
	}
	// Output:
	// acme.hq.>
	// acme.hq.reader.r1.evt true
	// acme.b2.reader.r1.evt false
}

func ExampleMessageTypeFilter() {
	f, err := topic.MessageTypeFilter("acme", "hq", topic.Event)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f)
	// Output:
	// acme.hq.*.*.evt
}

func ExampleThing_Filter() {
	t := topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}
	f, err := t.Filter()
	if err != nil {
		panic(err)
	}
	fmt.Println(f)
	fmt.Println(t.InboxPrefix())
	// Output:
	// acme.hq.reader.r1.*
	// _INBOX.acme.hq.reader.r1
}

func ExampleFilter_Covers() {
	edge, err := topic.ParseFilter("acme.hq.>")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, in := range []string{"acme.hq.*.*.evt", "acme.*.>", "acme.hq.reader.r1.>"} {
		g, err := topic.ParseFilter(in)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s covers %s: %v\n", edge, g, edge.Covers(g))
	}
	// Output:
	// acme.hq.> covers acme.hq.*.*.evt: true
	// acme.hq.> covers acme.*.>: false
	// acme.hq.> covers acme.hq.reader.r1.>: true
}

func ExampleValidateThing() {
	for _, t := range []topic.Thing{
		{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"},
		{Org: "acme", Edge: "hq", Type: topic.ThingTypeEdge, Code: "hq"},
	} {
		fmt.Println(t, topic.ValidateThing(t))
	}
	// Output:
	// acme.hq.reader.r1 <nil>
	// acme.hq._edge.hq topic: thing_type "_edge": thing types beginning with '_' are reserved for the platform
}

func ExampleNewRegistry() {
	r, err := topic.NewRegistry("alarm")
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := r.Parse("acme.hq.panel.p1.alarm")
	fmt.Println(s, err)

	// The package-level functions know only the built-in types.
	_, err = topic.Parse("acme.hq.panel.p1.alarm")
	fmt.Println(errors.Is(err, topic.ErrUnknownMessageType))
	// Output:
	// acme.hq.panel.p1.alarm <nil>
	// true
}

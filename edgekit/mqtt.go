package edgekit

import (
	"fmt"
	"net"
	"strconv"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultMQTTPort is the MQTT listener's port unless MQTTConfig.Port says
// otherwise.
const DefaultMQTTPort = 1883

// MQTTConfig enables nats-server's built-in MQTT listener on the edge, for
// devices that speak only MQTT 3.1.1. They log in with the same users and
// passwords as NATS devices, through the same [authz.EdgeAuthenticator],
// and get the same permissions: MQTT topic "org/edge/type/code/evt" is NATS
// subject "org.edge.type.code.evt", so such a device publishes on its own
// subjects only and its messages land in the event stream like any other.
//
// nats-server's MQTT needs a server name (authz renders one) and JetStream
// (the edge has it): it keeps sessions and QoS 1 state in streams of the
// org's account ("$MQTT_msgs", "$MQTT_sess", "$MQTT_rmsgs"), which count
// against the edge's store.
//
// With TLS on the client listener ([authz.RenderOptions].TLS), the MQTT
// listener requires TLS too, with the same certificate (mqtts, usually on
// port 8883: set Port accordingly).
//
// An MQTT publish gets no JetStream acknowledgement: the server's PUBACK
// (QoS 1) says the server received the message, not that the event stream
// stored it, so an MQTT device does not learn that the stream is full;
// the edge's fill alarm and status still do. Devices that must know use NATS
// (devicekit).
type MQTTConfig struct {
	// Enabled turns the MQTT listener on.
	Enabled bool
	// Host is the listen address; empty means the client listener's host.
	Host string
	// Port is the listen port: 0 means [DefaultMQTTPort], -1 a random port.
	Port int
}

func (c MQTTConfig) apply(opts *server.Options) error {
	if !c.Enabled {
		return nil
	}
	if opts.ServerName == "" || !opts.JetStream {
		return fmt.Errorf("%w: MQTT needs a server name and JetStream", ErrInvalidConfig)
	}
	opts.MQTT.Host = c.Host
	if opts.MQTT.Host == "" {
		opts.MQTT.Host = opts.Host
	}
	opts.MQTT.Port = c.Port
	if opts.MQTT.Port == 0 {
		opts.MQTT.Port = DefaultMQTTPort
	}
	// The MQTT listener uses the client listener's TLS, if any
	// (authz.RenderOptions.TLS): same certificate, same client
	// verification.
	opts.MQTT.TLSConfig = opts.TLSConfig
	opts.MQTT.TLSTimeout = opts.TLSTimeout
	return nil
}

// MQTTAddr returns the host:port of the MQTT listener, or "" when MQTT is
// not enabled or the node has not started.
func (n *Node) MQTTAddr() string {
	if !n.cfg.MQTT.Enabled || n.srv == nil || n.opts.MQTT.Port <= 0 {
		return ""
	}
	host := n.opts.MQTT.Host
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(n.opts.MQTT.Port))
}

package authz

import (
	"reflect"
	"strings"

	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats-server/v2/server"
)

// MQTTClientID returns the one MQTT client ID the device t may use on its
// edge's MQTT listener: its thing's four tokens joined by '/',
// "{org}/{edge}/{type}/{code}" (nats-server refuses '.' in client IDs).
// The edge's [EdgeAuthenticator] refuses an MQTT login with any other
// client ID, so that no device can take over another's session.
func MQTTClientID(t topic.Thing) string {
	return t.Org + "/" + t.Edge + "/" + t.Type + "/" + t.Code
}

// connectionTypes returns the nats-server connection types id may use.
func (id identity) connectionTypes() []string {
	if id.mqtt {
		return []string{"STANDARD", "MQTT"}
	}
	return []string{"STANDARD"}
}

// mqttClient tells an MQTT connection from a NATS one for the custom
// authenticator, which nats-server does not tell: it reads the client's
// unexported MQTT state, and its client ID. known is false when c is not a
// nats-server client whose layout it recognises.
func mqttClient(c server.ClientAuthentication) (clientID string, isMQTT, known bool) {
	v := reflect.ValueOf(c)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return "", false, false
	}
	f := v.Elem().FieldByName("mqtt")
	if !f.IsValid() || f.Kind() != reflect.Pointer {
		return "", false, false
	}
	if f.IsNil() {
		return "", false, true
	}
	if f.Elem().Kind() != reflect.Struct {
		return "", true, false
	}
	cid := f.Elem().FieldByName("cid")
	if !cid.IsValid() || cid.Kind() != reflect.String {
		return "", true, false
	}
	return cid.String(), true, true
}

// isServerClient reports whether c is nats-server's own client type.
func isServerClient(c server.ClientAuthentication) bool {
	return strings.HasSuffix(reflect.TypeOf(c).String(), "server.client")
}

// checkMQTT applies the MQTT rules of u to c: an MQTT login needs a device
// the inventory marks as MQTT ([Thing].MQTT) and its own client ID
// ([MQTTClientID]). A nats-server client whose kind cannot be told is
// refused, so that a change of nats-server's internals fails closed.
func checkMQTT(c server.ClientAuthentication, u *authUser) (bool, string) {
	cid, isMQTT, known := mqttClient(c)
	switch {
	case !known && isServerClient(c):
		return false, "cannot tell an MQTT connection from a NATS one"
	case !isMQTT:
		return true, ""
	case u.mqttID == "":
		return false, "MQTT not allowed for the user"
	case cid != u.mqttID:
		return false, "MQTT client ID " + cid + " is not the device's own, " + u.mqttID
	}
	return true, ""
}

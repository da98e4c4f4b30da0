package authz

import "github.com/lintel-io/lintel/topic"

// DeviceUser returns the NATS user name of a device: its thing's four tokens,
// "{org}.{edge}.{type}.{code}". State keys device passwords by it.
func DeviceUser(t topic.Thing) string { return t.String() }

// ServiceUser returns the NATS user name of a service identity:
// "_svc.{org}.{name}". The '_' prefix keeps it apart from every device user,
// whose first token is an org code and can never begin with '_'.
func ServiceUser(org, name string) string { return "_svc." + org + "." + name }

// EdgeServiceUser returns the NATS user name of an edge's own service, which
// every edge has: "_edge.{org}.{edge}".
func EdgeServiceUser(org, edge string) string { return "_edge." + org + "." + edge }

// EdgeKeyID returns the key under which [State.EdgeKeys] holds an edge's NKey:
// "{org}.{edge}".
func EdgeKeyID(org, edge string) string { return org + "." + edge }

package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/lintel-io/lintel/apps/internal/config"
)

// Paths in the configuration files render writes, relative to the file's
// directory (DIR/central or DIR/edges/{org}-{edge}).
const (
	cfgInventory   = "inventory.json"
	cfgState       = "state.json"
	cfgSecrets     = "secrets"
	centralCert    = "tls/central.crt"
	centralKey     = "tls/central.key"
	edgeCert       = "tls/edge.crt"
	edgeKey        = "tls/edge.key"
	edgeHubCA      = "tls/central-ca.crt"
	centralStore   = "/var/db/lintel/central"
	edgeStore      = "/var/db/lintel/edge"
	hubPlaceholder = "nats-leaf://central.example:7422"
)

// centralConfig returns the starter central.json: a [config.Central] with
// comments, written once and then left to the operator. leafListen is its
// leaf_listen (the default, or its overlay address from the Nebula plan).
func centralConfig(leafListen string) []byte {
	return fmt.Appendf(nil, `// Configuration of Lintel's central node (apps/central). lintelctl render
// wrote it once and never overwrites it: edit it freely. Relative paths are
// relative to this file's directory. Unknown keys are refused.
{
  // The deployment's inventory and credential state; render refreshes
  // both copies every time it runs.
  "inventory": %[1]s,
  "state": %[2]s,
  // Each org's central service password, command key seed and credential
  // hash key (mode 0700; render adds to it).
  "secrets_dir": %[3]s,
  // The JetStream store: change it to where central keeps its data.
  "store_dir": %[4]s,
  "name": "lintel-central",
  // Client listener (central's services, operators, org-wide gateways) and
  // the listener edges link to.
  "listen": %[5]s,
  "leaf_listen": %[6]s,
  // TLS of both listeners, PEM files the operator supplies (they are not
  // generated): central refuses to start, naming the field, while they are
  // missing. Set "plaintext": true and remove "tls" and "leaf_tls" only
  // when every link runs over an encrypted overlay.
  "plaintext": false,
  "tls": {"cert_file": %[7]s, "key_file": %[8]s},
  "leaf_tls": {"cert_file": %[7]s, "key_file": %[8]s},
  // Admin HTTP listener (/healthz, /readyz, /metrics); "off" disables it.
  "admin_listen": %[9]s,
  // To run central as a cluster of three nodes (docs/cluster.md), give each
  // node its own "name" and store, copy this directory to each, and add:
  // "cluster": {"listen": "0.0.0.0:6222",
  //   "routes": ["nats-route://10.42.0.1:6222", "nats-route://10.42.0.2:6222", "nats-route://10.42.0.3:6222"],
  //   "password_file": "secrets/cluster.password",
  //   "tls": {"cert_file": "tls/central.crt", "key_file": "tls/central.key", "client_ca_file": "tls/central-ca.crt"}},
  // and list every node's leaf listener in each edge's "hub_urls".
  // Bounds of central's event stream; 30 days and 10 GiB when left out.
  // Add "database": {"url_file": "..."} to keep history in PostgreSQL.
  "history": {"max_age": "720h"},
  "log": {"level": "info", "format": "json"}
}
`, q(cfgInventory), q(cfgState), q(cfgSecrets), q(centralStore),
		q(config.DefaultCentralListen), q(leafListen),
		q(centralCert), q(centralKey), q(config.DefaultCentralAdmin))
}

// edgeConfig returns the starter edge.json of edge at org: a
// [config.Edge] with comments, written once and then left to the operator.
// hubURLs are central's leaf listeners, from the Nebula plan; none writes
// a placeholder to replace.
func edgeConfig(org, edge string, hubURLs []string) []byte {
	hubs, hubComment := q(hubPlaceholder), "Central's leaf listener(s): replace the placeholder."
	if len(hubURLs) > 0 {
		quoted := make([]string, len(hubURLs))
		for i, u := range hubURLs {
			quoted[i] = q(u)
		}
		hubs, hubComment = strings.Join(quoted, ", "), "Central's leaf listeners, on the Nebula overlay (the address plan)."
	}
	return fmt.Appendf(nil, `// Configuration of Lintel's edge node %[1]s of org %[2]s (apps/edge).
// lintelctl render wrote it once and never overwrites it: edit it freely.
// Relative paths are relative to this file's directory. Unknown keys are
// refused.
{
  "org": %[3]s,
  "edge": %[4]s,
  // The deployment's inventory and credential state; render refreshes
  // both copies every time it runs.
  "inventory": %[5]s,
  "state": %[6]s,
  // The edge's leaf.seed, audit.seed, command.seed and hash.key (mode 0700).
  "secrets_dir": %[7]s,
  // The JetStream store: change it to where the edge keeps its data.
  "store_dir": %[8]s,
  // The device listener.
  "listen": %[9]s,
  // %[15]s
  "hub_urls": [%[10]s],
  // TLS of the device listener, and the CA that signed central's leaf
  // certificate: PEM files the operator supplies (they are not generated);
  // the edge refuses to start, naming the field, while they are missing.
  // Set "plaintext": true and remove "tls" and "hub_tls" only when the
  // links run over an encrypted overlay.
  "plaintext": false,
  "tls": {"cert_file": %[11]s, "key_file": %[12]s},
  "hub_tls": {"ca_file": %[13]s},
  // Admin HTTP listener (/healthz, /readyz, /metrics); "off" disables it.
  "admin_listen": %[14]s,
  "log": {"level": "info", "format": "json"}
}
`, edge, org, q(org), q(edge), q(cfgInventory), q(cfgState), q(cfgSecrets), q(edgeStore),
		q(config.DefaultEdgeListen), hubs, q(edgeCert), q(edgeKey), q(edgeHubCA),
		q(config.DefaultEdgeAdmin), hubComment)
}

// q returns s as a JSON string.
func q(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

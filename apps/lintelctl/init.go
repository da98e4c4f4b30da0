package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// starterInventory is what lintelctl init writes: a small site that
// renders and loads as it is, with comments explaining each section.
const starterInventory = `// Lintel inventory: the organisations, edges, devices, doors and services of
// one deployment. "lintelctl render" turns it into credentials and into the
// files central and every edge read; edit it, then render again.
//
// Lines whose first non-blank characters are "//" are comments; a comment
// needs a line of its own ("//" after a value is an error). Keys are exact
// (case included) and unknown keys are refused. Every code, type and service name is a subject token:
// ASCII letters, digits, '_' and '-', at most 64 bytes, not starting with
// '_'. Names ("name") are free text for people.
//
// Removing an entry revokes its credentials at the next render; renaming one
// is removing it and adding another.
{
  // orgs: each organisation is one NATS account, on central and on each of
  // its edges; its data never crosses into another org's.
  "orgs": [
    {"code": "acme", "name": "Acme Corporation"}
  ],

  // edges: each site runs one edge node. The code names the edge's
  // JetStream domain, so it must be unique in the whole inventory, not just
  // the org. timezone (an IANA zone) is the site's, for access schedules;
  // UTC when left out.
  "edges": [
    {"org": "acme", "code": "hq", "name": "Headquarters", "timezone": "Europe/Berlin"}
  ],

  // things: the devices. Each logs in to its edge as user
  // "{org}.{edge}.{type}.{code}" with a password render writes under
  // devices/; the code is unique within its edge, whatever the type.
  // "mqtt": true also admits the device over the edge's MQTT listener.
  "things": [
    {"org": "acme", "edge": "hq", "type": "reader", "code": "front-in", "name": "Front door, entry reader"},
    {"org": "acme", "edge": "hq", "type": "lock", "code": "front-lock", "name": "Front door strike"},
    {"org": "acme", "edge": "hq", "type": "door_sensor", "code": "front-contact", "name": "Front door contact"},
    {"org": "acme", "edge": "hq", "type": "sensor", "code": "lobby-env", "name": "Lobby temperature", "mqtt": true}
  ],

  // doors: access points. Readers request access to the door, locks open
  // it, sensors report its state; each list names things of the same edge
  // by code, and a thing may serve several doors.
  "doors": [
    {
      "org": "acme", "edge": "hq", "code": "front", "name": "Front door",
      "readers": ["front-in"],
      "locks": ["front-lock"],
      "sensors": ["front-contact"]
    }
  ],

  // services: identities that are not devices. kind is "central" (central's
  // services of one org; central itself logs in as the org's first central
  // service, so every org needs one), "gateway" (the HTTP gateway, for the
  // org or, with "edge", for one edge) or "operator" (an operator's
  // administrative identity). Names are unique within their org. Each edge
  // also has its own edge service identity without being listed here.
  "services": [
    {"name": "central", "kind": "central", "org": "acme"}
  ]
}
`

// initCommand returns "lintelctl init".
func (a *app) initCommand() *cobra.Command {
	var out string
	var force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented starter inventory",
		Long: `Init writes a starter inventory: one org, one edge with a door (reader,
lock, door contact), a sensor, and the org's central service, with comments
explaining each section. Edit it to describe the deployment, then run
"lintelctl render".

Init refuses to overwrite an existing file unless --force is given; with
--out - it writes the inventory to standard output.`,
		Example: `  lintelctl init
  lintelctl init --out deploy/inventory.json
  lintelctl init --out - | less`,
		Args: cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("--out: empty file name")
			}
			if out == "-" {
				_, err := fmt.Fprint(a.stdout, starterInventory)
				return err
			}
			if !force {
				ok, err := exists(out)
				if err != nil {
					return err
				}
				if ok {
					return fmt.Errorf("%s exists; pass --force to overwrite it", out)
				}
			}
			if err := writeFileAtomic(out, []byte(starterInventory), modePublic); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "wrote %s\n", out)
			return nil
		}),
	}
	cmd.Flags().StringVarP(&out, "out", "o", "inventory.json", "file to write, - for standard output")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	return cmd
}

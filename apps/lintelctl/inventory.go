package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lintel-io/lintel/apps/internal/config"
	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/topic"
	"github.com/spf13/cobra"
)

// inventoryCounts is how many entries of each kind an inventory lists.
type inventoryCounts struct {
	Orgs     int `json:"orgs"`
	Edges    int `json:"edges"`
	Things   int `json:"things"`
	Doors    int `json:"doors"`
	Services int `json:"services"`
}

func countsOf(inv *authz.Inventory) *inventoryCounts {
	return &inventoryCounts{Orgs: len(inv.Orgs), Edges: len(inv.Edges), Things: len(inv.Things),
		Doors: len(inv.Doors), Services: len(inv.Services)}
}

// String returns "1 org, 2 edges, 40 things, 5 doors, 3 services".
func (c *inventoryCounts) String() string {
	return strings.Join([]string{plural(c.Orgs, "org"), plural(c.Edges, "edge"), plural(c.Things, "thing"),
		plural(c.Doors, "door"), plural(c.Services, "service")}, ", ")
}

// plural returns "1 door", "2 doors".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// validateReport is what "validate --output json" prints.
type validateReport struct {
	Inventory string `json:"inventory"`
	Valid     bool   `json:"valid"`
	// Counts is nil when the file does not decode as an inventory.
	Counts *inventoryCounts `json:"counts"`
	// Errors are the problems, one per entry at fault, each starting with
	// the entry's name: "things[3] (acme.hq.reader.r1): ...".
	Errors []string `json:"errors"`
}

// validateCommand returns "lintelctl validate".
func (a *app) validateCommand() *cobra.Command {
	var path, output string
	cmd := &cobra.Command{
		Use:   "validate --inventory FILE",
		Short: "Check an inventory as render would, listing every problem",
		Long: `Validate reads the inventory as render and the apps do (whole-line "//"
comments allowed), checks every rule of the format and what render itself
requires (a central service in every org, distinct edge directories), and
prints a one-line summary of what the inventory holds.

Every problem is reported at once, one per line, each naming the entry at
fault by list, position and identity:

  things[3] (acme.hq.reader.door 1): thing_code "door 1": space not allowed

It exits with status 0 when the inventory is valid and 1 when it is not.
With --output json it prints {"inventory", "valid", "counts", "errors"};
counts is null when the file does not decode.`,
		Example: `  lintelctl validate --inventory deploy/inventory.json
  lintelctl validate -i deploy/inventory.json -o json | jq -r '.errors[]'`,
		Args: cobra.NoArgs,
		RunE: a.runE(func(_ *cobra.Command, _ []string) error {
			if output != outputTable && output != outputJSON {
				return usagef("--output %q: want table or json", output)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("inventory: %w", err)
			}
			inv, problems := checkInventory(data)
			rep := validateReport{Inventory: path, Valid: len(problems) == 0, Errors: []string{}}
			for _, p := range problems {
				rep.Errors = append(rep.Errors, problemLine(p))
			}
			if inv != nil {
				rep.Counts = countsOf(inv)
			}
			if output == outputJSON {
				if err := a.writeJSON(rep); err != nil {
					return err
				}
				if !rep.Valid {
					return &problemsError{what: path + ": invalid, " + plural(len(problems), "problem"), errs: problems, brief: true}
				}
				return nil
			}
			if !rep.Valid {
				return &problemsError{what: path + ": " + plural(len(problems), "problem"), errs: problems}
			}
			_, err = fmt.Fprintf(a.stdout, "%s: %s\n", path, rep.Counts)
			return err
		}),
	}
	cmd.Flags().StringVarP(&path, "inventory", "i", "", "the inventory file (required)")
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, "output format: table or json")
	_ = cmd.MarkFlagRequired("inventory") // the flag exists
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputTable, outputJSON}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// checkInventory parses data as render does and returns every problem,
// authz's and render's own ([renderChecks]), each naming its entry, and
// the inventory as far as it decodes (nil when it does not).
func checkInventory(data []byte) (*authz.Inventory, []error) {
	stripped := config.StripComments(data)
	inv, err := authz.ParseInventory(stripped)
	if err == nil {
		return inv, renderChecks(inv)
	}
	problems := splitErrors(err)
	if errors.Is(err, authz.ErrMalformed) || errors.Is(err, authz.ErrUnknownKey) || errors.Is(err, authz.ErrDuplicateKey) {
		return nil, problems
	}
	// It decodes but breaks rules: count what it lists, and run render's
	// checks too, so that every problem is reported at once.
	var loose authz.Inventory
	if json.Unmarshal(stripped, &loose) != nil {
		return nil, problems
	}
	return &loose, append(problems, renderChecks(&loose)...)
}

// splitErrors returns the errors err joins (as authz's validation joins
// one per entry at fault), or err alone.
func splitErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// problemLine returns a problem as one line, without authz's package
// prefix: "things[3] (acme.hq.reader.r1): ...".
func problemLine(err error) string {
	return strings.ReplaceAll(strings.TrimPrefix(err.Error(), "authz: "), "\n", "; ")
}

// problemsError is a list of problems, printed after what, one per line
// (or not at all when brief: they were printed already).
type problemsError struct {
	what  string
	errs  []error
	brief bool
}

// Error returns what, then each problem on a line of its own.
func (e *problemsError) Error() string {
	if e.brief {
		return e.what
	}
	var b strings.Builder
	b.WriteString(e.what + ":")
	for _, err := range e.errs {
		b.WriteString("\n  " + problemLine(err))
	}
	return b.String()
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (e *problemsError) Unwrap() []error { return e.errs }

// renderChecks returns what render refuses beyond authz's validation (see
// centralUsers and checkSites), one problem per entry at fault, named as
// authz names entries.
func renderChecks(inv *authz.Inventory) []error {
	var out []error
	if _, err := centralUsers(inv); err != nil {
		for i, o := range inv.Orgs {
			one := &authz.Inventory{Orgs: []authz.Org{o}, Services: inv.Services}
			if _, err := centralUsers(one); err != nil {
				out = append(out, fmt.Errorf("%s: %w", entryLabel("orgs", i, o.Code), err))
			}
		}
	}
	first := make(map[string]int, len(inv.Edges))
	for i, e := range inv.Edges {
		s := site(e.Org, e.Code)
		j, seen := first[s]
		if !seen {
			first[s] = i
			continue
		}
		if e.Org == inv.Edges[j].Org && e.Code == inv.Edges[j].Code {
			continue // a duplicate edge, which authz reports
		}
		pair := &authz.Inventory{Edges: []authz.Edge{inv.Edges[j], e}}
		if err := checkSites(pair); err != nil {
			out = append(out, fmt.Errorf("%s: %w", entryLabel("edges", i, e.Org, e.Code), err))
		}
	}
	return out
}

// entryLabel names an entry as authz's errors do: "things[3] (acme.hq.reader.r1)".
func entryLabel(list string, i int, id ...string) string {
	return fmt.Sprintf("%s[%d] (%s)", list, i, strings.Join(id, "."))
}

func thingLabel(i int, t authz.Thing) string {
	return entryLabel("things", i, t.Org, t.Edge, t.Type, t.Code)
}

func doorLabel(i int, d authz.Door) string {
	return entryLabel("doors", i, d.Org, d.Edge, d.Code)
}

func serviceLabel(i int, s authz.Service) string {
	return entryLabel("services", i, authz.ServiceUser(s.Org, s.Name))
}

// inventoryFile is an inventory file loaded to be changed.
type inventoryFile struct {
	path string // the file written: path, its symbolic links resolved
	perm fs.FileMode
	data []byte // as read
	// header is the leading comment block, kept when the file is
	// rewritten; dropped counts the comment lines after it, which are not.
	header  []byte
	dropped int
	inv     *authz.Inventory
}

// loadInventoryFile reads and parses the inventory at path; one that does
// not parse is an error listing its problems.
func loadInventoryFile(path string) (*inventoryFile, error) {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	fi, err := os.Stat(target)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	data, err := os.ReadFile(target)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	inv, err := authz.ParseInventory(config.StripComments(data))
	if err != nil {
		return nil, &problemsError{what: "inventory " + path + " does not load; fix it first (\"lintelctl validate\" lists every problem)",
			errs: splitErrors(err)}
	}
	f := &inventoryFile{path: target, perm: fi.Mode().Perm(), data: data, inv: inv}
	f.header, f.dropped = commentHeader(data)
	return f, nil
}

// commentHeader returns the leading comment block of an inventory file
// (its first lines, as long as they are "//" comments or blank; nil when
// there is no comment among them) and how many comment lines follow it.
func commentHeader(data []byte) (header []byte, dropped int) {
	rest, end, comments := data, 0, 0
	for len(rest) > 0 {
		line, after, found := bytes.Cut(rest, []byte("\n"))
		t := bytes.TrimSpace(line)
		if len(t) > 0 && !bytes.HasPrefix(t, []byte("//")) {
			break
		}
		if len(t) > 0 {
			comments++
		}
		end += len(line)
		if found {
			end++
		}
		rest = after
	}
	for l := range bytes.SplitSeq(data[end:], []byte("\n")) {
		if bytes.HasPrefix(bytes.TrimSpace(l), []byte("//")) {
			dropped++
		}
	}
	if comments == 0 {
		return nil, dropped
	}
	header = slices.Clone(data[:end])
	if !bytes.HasSuffix(header, []byte("\n")) {
		header = append(header, '\n')
	}
	return header, dropped
}

// marshalInventory returns inv as an inventory file: header, then the
// JSON object with one entry per line, in the order of the format.
func marshalInventory(header []byte, inv *authz.Inventory) ([]byte, error) {
	var b bytes.Buffer
	b.Write(header)
	b.WriteString("{\n")
	var sections []string
	var errs []error
	add := func(name string, n int, entry func(i int) any, always bool) {
		if n == 0 && !always {
			return
		}
		var s strings.Builder
		fmt.Fprintf(&s, "  %q: [", name)
		for i := range n {
			line, err := oneLine(entry(i))
			errs = append(errs, err)
			if i > 0 {
				s.WriteString(",")
			}
			s.WriteString("\n    ")
			s.Write(line)
		}
		if n > 0 {
			s.WriteString("\n  ")
		}
		s.WriteString("]")
		sections = append(sections, s.String())
	}
	add("orgs", len(inv.Orgs), func(i int) any { return inv.Orgs[i] }, true)
	add("edges", len(inv.Edges), func(i int) any { return inv.Edges[i] }, true)
	add("things", len(inv.Things), func(i int) any { return inv.Things[i] }, true)
	add("doors", len(inv.Doors), func(i int) any { return inv.Doors[i] }, false)
	add("services", len(inv.Services), func(i int) any { return inv.Services[i] }, false)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("marshal inventory: %w", err)
	}
	b.WriteString(strings.Join(sections, ",\n\n"))
	b.WriteString("\n}\n")
	return b.Bytes(), nil
}

// oneLine returns v as JSON on one line, with a space after each ':' and
// ',' between values, as people write it: {"code": "acme", "name": "Acme"}.
func oneLine(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // names may hold '&' and '<'
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	compact := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	out := make([]byte, 0, len(compact)+len(compact)/8)
	inString, escaped := false, false
	for _, c := range compact {
		out = append(out, c)
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && (c == ':' || c == ','):
			out = append(out, ' ')
		}
	}
	return out, nil
}

// editOptions are the flags of every "add" and "remove" command.
type editOptions struct {
	inventory string
	dryRun    bool
}

func addEditFlags(cmd *cobra.Command, o *editOptions) {
	cmd.Flags().StringVarP(&o.inventory, "inventory", "i", "", "the inventory file to change (required)")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "print the changed inventory on stdout, what would change on stderr, and write nothing")
	_ = cmd.MarkFlagRequired("inventory") // the flag exists
}

// inventoryEdit is what a change did to an inventory, for its summary.
type inventoryEdit struct {
	verb  string // "added" or "removed"
	entry string // e.g. "things[4] (acme.hq.reader.r1)"
	// also lists further entries changed with it (--cascade), each with
	// what happened to it.
	also []string
}

// editHelp is the part of the help every "add" and "remove" command shares.
const editHelp = `The inventory is loaded, changed, checked as "lintelctl validate" checks
it, and written back atomically; a change that would make it invalid (a
duplicate code, an unknown org or edge, an org left without a central
service) is refused, naming the entry at fault, and the file is left as it
was.

The file is rewritten as pretty-printed JSON, one entry per line. Its
leading comment block (the "//" lines before the opening "{") is kept;
comments elsewhere are not (the summary says how many were dropped).

Nothing changes in the deployment until "lintelctl render" turns the
changed inventory into credentials and into the files central and the edges
read.`

// changeInventory loads the inventory of o, applies change to it, checks
// the result and writes it (or, with --dry-run, prints it), then prints
// what changed. change mutates the inventory it is given.
func (a *app) changeInventory(o *editOptions, change func(inv *authz.Inventory) (*inventoryEdit, error)) error {
	f, err := loadInventoryFile(o.inventory)
	if err != nil {
		return err
	}
	before := renderChecks(f.inv)
	inv := f.inv
	ed, err := change(inv)
	if err != nil {
		return err
	}
	what := ed.verb + " " + ed.entry
	if err := inv.Validate(); err != nil {
		return &problemsError{what: what + ": refused, the inventory would be invalid", errs: splitErrors(err)}
	}
	var fresh []error
	for _, p := range renderChecks(inv) {
		if !slices.ContainsFunc(before, func(b error) bool { return b.Error() == p.Error() }) {
			fresh = append(fresh, p)
		}
	}
	if len(fresh) > 0 {
		return &problemsError{what: what + ": refused, render would refuse the inventory", errs: fresh}
	}
	data, err := marshalInventory(f.header, inv)
	if err != nil {
		return err
	}
	if _, err := authz.ParseInventory(config.StripComments(data)); err != nil {
		return fmt.Errorf("internal error: the changed inventory does not parse back, nothing written: %w", err)
	}

	summary := a.stdout
	if o.dryRun {
		if _, err := a.stdout.Write(data); err != nil {
			return err
		}
		summary = a.stderr
	} else {
		now, err := os.ReadFile(f.path)
		if err != nil {
			return fmt.Errorf("inventory: %w", err)
		}
		if !bytes.Equal(now, f.data) {
			return fmt.Errorf("%s changed while lintelctl was changing it; nothing written: run the command again", o.inventory)
		}
		if err := writeFileAtomic(f.path, data, f.perm); err != nil {
			return fmt.Errorf("inventory: %w", err)
		}
	}
	fmt.Fprintf(summary, "%s\n", what)
	for _, s := range ed.also {
		fmt.Fprintf(summary, "  %s\n", s)
	}
	if f.dropped > 0 {
		fmt.Fprintf(summary, "note: %s outside the leading comment block not kept\n", plural(f.dropped, "comment line"))
	}
	if o.dryRun {
		fmt.Fprintf(summary, "dry run: %s not changed\n", o.inventory)
		return nil
	}
	fmt.Fprintf(summary, "wrote %s\n", o.inventory)
	fmt.Fprintf(summary, "next: \"lintelctl render --inventory %s --out DIR\" turns the change into credentials and configuration\n", o.inventory)
	return nil
}

// edgeOrg returns the org of a thing, door or service at edge: org when
// given, else the edge's org (edge codes are unique in an inventory), else
// the inventory's only org.
func edgeOrg(inv *authz.Inventory, org, edge string) (string, error) {
	if org != "" {
		return org, nil
	}
	for _, e := range inv.Edges {
		if e.Code == edge {
			return e.Org, nil
		}
	}
	if len(inv.Orgs) == 1 {
		return inv.Orgs[0].Code, nil
	}
	return "", fmt.Errorf("edge %q is not in the inventory's edges", edge)
}

// serviceOrg returns the org of service name: org when given, else the
// org of --edge, else the only org with a service of that name (remove)
// or the inventory's only org.
func serviceOrg(inv *authz.Inventory, org, edge, name string, existing bool) (string, error) {
	if org != "" {
		return org, nil
	}
	if edge != "" {
		return edgeOrg(inv, "", edge)
	}
	if existing {
		var orgs []string
		for _, s := range inv.Services {
			if s.Name == name {
				orgs = append(orgs, s.Org)
			}
		}
		switch len(orgs) {
		case 0:
			return "", fmt.Errorf("no service %q in the inventory", name)
		case 1:
			return orgs[0], nil
		}
		return "", usagef("service %q is in orgs %s: name one with --org", name, strings.Join(orgs, ", "))
	}
	if len(inv.Orgs) == 1 {
		return inv.Orgs[0].Code, nil
	}
	return "", usagef("the inventory has %d orgs: name the service's with --org", len(inv.Orgs))
}

// addCommand returns "lintelctl add".
func (a *app) addCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "add",
		Short: "Add an edge, thing, service or door to the inventory",
		Long:  "Add adds one entry to the inventory file.\n\n" + editHelp,
		Example: `  lintelctl add edge acme branch --name "Branch office" --timezone Europe/Paris -i deploy/inventory.json
  lintelctl add thing branch reader entry-1 --name "Entry reader" -i deploy/inventory.json
  lintelctl add door branch entry --reader entry-1 --lock entry-lock -i deploy/inventory.json
  lintelctl add service gw-branch --kind gateway --edge branch -i deploy/inventory.json --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return usagef("add what? name one: edge, thing, service or door")
		},
	}

	var eo editOptions
	var edgeName, zone string
	edgeCmd := &cobra.Command{
		Use:   "edge ORG CODE",
		Short: "Add an edge (a site) to an org",
		Long: `Add edge adds a site with its own edge node to an org. Edge codes are
unique in the whole inventory: each names the edge's JetStream domain.

` + editHelp,
		Example: `  lintelctl add edge acme branch --name "Branch office" --timezone Europe/Paris -i deploy/inventory.json`,
		Args:    cobra.ExactArgs(2),
		RunE: a.runE(func(_ *cobra.Command, args []string) error {
			return a.changeInventory(&eo, func(inv *authz.Inventory) (*inventoryEdit, error) {
				e := authz.Edge{Org: args[0], Code: args[1], Name: edgeName, TimeZone: zone}
				inv.Edges = append(inv.Edges, e)
				return &inventoryEdit{verb: "added", entry: entryLabel("edges", len(inv.Edges)-1, e.Org, e.Code)}, nil
			})
		}),
	}
	addEditFlags(edgeCmd, &eo)
	edgeCmd.Flags().StringVar(&edgeName, "name", "", "display name")
	edgeCmd.Flags().StringVar(&zone, "timezone", "", "the site's IANA time zone, for access schedules (default UTC)")

	var to editOptions
	var thingOrg, thingName string
	var mqtt bool
	thingCmd := &cobra.Command{
		Use:   "thing EDGE TYPE CODE",
		Short: "Add a thing (a device) at an edge",
		Long: `Add thing adds a device at an edge. Its code is unique within the edge,
whatever the type; it logs in as "{org}.{edge}.{type}.{code}" with the
password render writes under devices/. The org is the edge's unless --org
says otherwise.

` + editHelp,
		Example: `  lintelctl add thing hq reader side-in --name "Side door reader" -i deploy/inventory.json
  lintelctl add thing hq sensor cellar-env --mqtt -i deploy/inventory.json`,
		Args: cobra.ExactArgs(3),
		RunE: a.runE(func(_ *cobra.Command, args []string) error {
			return a.changeInventory(&to, func(inv *authz.Inventory) (*inventoryEdit, error) {
				org, err := edgeOrg(inv, thingOrg, args[0])
				if err != nil {
					return nil, err
				}
				t := authz.Thing{Thing: topic.Thing{Org: org, Edge: args[0], Type: args[1], Code: args[2]}, Name: thingName, MQTT: mqtt}
				inv.Things = append(inv.Things, t)
				return &inventoryEdit{verb: "added", entry: thingLabel(len(inv.Things)-1, t)}, nil
			})
		}),
	}
	addEditFlags(thingCmd, &to)
	thingCmd.Flags().StringVar(&thingOrg, "org", "", "the thing's org (default: the edge's)")
	thingCmd.Flags().StringVar(&thingName, "name", "", "display name")
	thingCmd.Flags().BoolVar(&mqtt, "mqtt", false, "also admit the device over the edge's MQTT listener")

	var so editOptions
	var kind, svcOrg, svcEdge string
	svcCmd := &cobra.Command{
		Use:   "service NAME --kind central|gateway|operator",
		Short: "Add a service identity (central service, gateway, operator)",
		Long: `Add service adds a non-device identity. --kind is central (central's
services of one org; central logs in as the org's first), gateway (the HTTP
gateway, for the org or, with --edge, for one edge) or operator (an
operator's administrative identity). Names are unique within their org. The
org defaults to --edge's, or to the inventory's only org.

` + editHelp,
		Example: `  lintelctl add service ops-alice --kind operator -i deploy/inventory.json
  lintelctl add service gw-hq --kind gateway --edge hq -i deploy/inventory.json`,
		Args: cobra.ExactArgs(1),
		RunE: a.runE(func(_ *cobra.Command, args []string) error {
			k := authz.ServiceKind(kind)
			if k != authz.ServiceCentral && k != authz.ServiceGateway && k != authz.ServiceOperator {
				return usagef("--kind %q: want %s, %s or %s", kind, authz.ServiceCentral, authz.ServiceGateway, authz.ServiceOperator)
			}
			return a.changeInventory(&so, func(inv *authz.Inventory) (*inventoryEdit, error) {
				org, err := serviceOrg(inv, svcOrg, svcEdge, args[0], false)
				if err != nil {
					return nil, err
				}
				s := authz.Service{Name: args[0], Kind: k, Org: org, Edge: svcEdge}
				inv.Services = append(inv.Services, s)
				return &inventoryEdit{verb: "added", entry: serviceLabel(len(inv.Services)-1, s)}, nil
			})
		}),
	}
	addEditFlags(svcCmd, &so)
	svcCmd.Flags().StringVar(&kind, "kind", "", "central, gateway or operator (required)")
	svcCmd.Flags().StringVar(&svcOrg, "org", "", "the service's org (default: --edge's, or the only org)")
	svcCmd.Flags().StringVar(&svcEdge, "edge", "", "the edge a gateway is scoped to")
	_ = svcCmd.MarkFlagRequired("kind")
	_ = svcCmd.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions(
		[]string{string(authz.ServiceCentral), string(authz.ServiceGateway), string(authz.ServiceOperator)}, cobra.ShellCompDirectiveNoFileComp))

	var do editOptions
	var doorOrg, doorName string
	var readers, locks, sensors []string
	doorCmd := &cobra.Command{
		Use:   "door EDGE CODE [--reader R]... [--lock L]... [--sensor S]...",
		Short: "Add a door (an access point) at an edge",
		Long: `Add door adds an access point at an edge: its readers request access to
it, its locks open it, its sensors report its state. Each names a thing of
the same edge by code; a thing may serve several doors. Door codes are
unique within their edge. The org is the edge's unless --org says
otherwise.

` + editHelp,
		Example: `  lintelctl add door hq side --reader side-in --lock side-lock --sensor side-contact -i deploy/inventory.json`,
		Args:    cobra.ExactArgs(2),
		RunE: a.runE(func(_ *cobra.Command, args []string) error {
			return a.changeInventory(&do, func(inv *authz.Inventory) (*inventoryEdit, error) {
				org, err := edgeOrg(inv, doorOrg, args[0])
				if err != nil {
					return nil, err
				}
				d := authz.Door{Org: org, Edge: args[0], Code: args[1], Name: doorName,
					Readers: readers, Locks: locks, Sensors: sensors}
				inv.Doors = append(inv.Doors, d)
				return &inventoryEdit{verb: "added", entry: doorLabel(len(inv.Doors)-1, d)}, nil
			})
		}),
	}
	addEditFlags(doorCmd, &do)
	doorCmd.Flags().StringVar(&doorOrg, "org", "", "the door's org (default: the edge's)")
	doorCmd.Flags().StringVar(&doorName, "name", "", "display name")
	doorCmd.Flags().StringSliceVar(&readers, "reader", nil, "code of a reader of the door (repeatable, or comma-separated)")
	doorCmd.Flags().StringSliceVar(&locks, "lock", nil, "code of a lock of the door (repeatable, or comma-separated)")
	doorCmd.Flags().StringSliceVar(&sensors, "sensor", nil, "code of a sensor of the door (repeatable, or comma-separated)")

	cmd.AddCommand(edgeCmd, thingCmd, svcCmd, doorCmd)
	return cmd
}

// dependents lists at most limit entries, "and N more" after them.
func dependents(labels []string, limit int) string {
	if len(labels) <= limit {
		return strings.Join(labels, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(labels[:limit], ", "), len(labels)-limit)
}

// removeCommand returns "lintelctl remove".
func (a *app) removeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "remove",
		Aliases: []string{"rm"},
		Short:   "Remove an edge, thing, service or door from the inventory",
		Long: `Remove removes one entry from the inventory file, named by the same
arguments "lintelctl add" takes. The next render revokes the credentials of
what was removed.

` + editHelp,
		Example: `  lintelctl remove thing hq reader side-in -i deploy/inventory.json
  lintelctl remove edge acme branch --cascade -i deploy/inventory.json --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return usagef("remove what? name one: edge, thing, service or door")
		},
	}

	var eo editOptions
	var cascadeEdge bool
	edgeCmd := &cobra.Command{
		Use:   "edge ORG CODE [--cascade]",
		Short: "Remove an edge, and with --cascade its things, doors and gateways",
		Long: `Remove edge removes a site. An edge that still has things, doors or
edge-scoped gateways is refused unless --cascade is given, which removes
them too and lists them.

` + editHelp,
		Example: `  lintelctl remove edge acme branch -i deploy/inventory.json
  lintelctl remove edge acme branch --cascade -i deploy/inventory.json`,
		Args: cobra.ExactArgs(2),
		RunE: a.runE(func(_ *cobra.Command, args []string) error {
			return a.changeInventory(&eo, func(inv *authz.Inventory) (*inventoryEdit, error) {
				org, code := args[0], args[1]
				i := slices.IndexFunc(inv.Edges, func(e authz.Edge) bool { return e.Org == org && e.Code == code })
				if i < 0 {
					return nil, fmt.Errorf("no edge %q of org %q in %s", code, org, eo.inventory)
				}
				ed := &inventoryEdit{verb: "removed", entry: entryLabel("edges", i, org, code)}
				var deps []string
				for j, t := range inv.Things {
					if t.Org == org && t.Edge == code {
						deps = append(deps, thingLabel(j, t))
					}
				}
				for j, d := range inv.Doors {
					if d.Org == org && d.Edge == code {
						deps = append(deps, doorLabel(j, d))
					}
				}
				for j, s := range inv.Services {
					if s.Org == org && s.Edge == code {
						deps = append(deps, serviceLabel(j, s))
					}
				}
				if len(deps) > 0 && !cascadeEdge {
					return nil, fmt.Errorf("%s still has %s: %s; remove them first, or pass --cascade to remove them with the edge",
						ed.entry, plural(len(deps), "entry"), dependents(deps, 10))
				}
				for _, d := range deps {
					ed.also = append(ed.also, "removed "+d)
				}
				inv.Edges = slices.Delete(inv.Edges, i, i+1)
				inv.Things = slices.DeleteFunc(inv.Things, func(t authz.Thing) bool { return t.Org == org && t.Edge == code })
				inv.Doors = slices.DeleteFunc(inv.Doors, func(d authz.Door) bool { return d.Org == org && d.Edge == code })
				inv.Services = slices.DeleteFunc(inv.Services, func(s authz.Service) bool { return s.Org == org && s.Edge == code })
				return ed, nil
			})
		}),
	}
	addEditFlags(edgeCmd, &eo)
	edgeCmd.Flags().BoolVar(&cascadeEdge, "cascade", false, "also remove the edge's things, doors and edge-scoped gateways")

	var to editOptions
	var thingOrg string
	var cascadeThing bool
	thingCmd := &cobra.Command{
		Use:   "thing EDGE TYPE CODE [--cascade]",
		Short: "Remove a thing (a device) from an edge",
		Long: `Remove thing removes a device. A thing a door still lists as a reader,
lock or sensor is refused unless --cascade is given, which removes it from
those doors' lists too. The org is the edge's unless --org says otherwise.

` + editHelp,
		Example: `  lintelctl remove thing hq reader side-in -i deploy/inventory.json
  lintelctl remove thing hq lock front-lock --cascade -i deploy/inventory.json`,
		Args: cobra.ExactArgs(3),
		RunE: a.runE(func(_ *cobra.Command, args []string) error {
			return a.changeInventory(&to, func(inv *authz.Inventory) (*inventoryEdit, error) {
				org, err := edgeOrg(inv, thingOrg, args[0])
				if err != nil {
					return nil, err
				}
				want := authz.Thing{Thing: topic.Thing{Org: org, Edge: args[0], Type: args[1], Code: args[2]}}
				i := slices.IndexFunc(inv.Things, func(t authz.Thing) bool {
					return t.Org == want.Org && t.Edge == want.Edge && t.Type == want.Type && t.Code == want.Code
				})
				if i < 0 {
					return nil, fmt.Errorf("no thing %s.%s.%s.%s in %s", want.Org, want.Edge, want.Type, want.Code, to.inventory)
				}
				ed := &inventoryEdit{verb: "removed", entry: thingLabel(i, inv.Things[i])}
				var users []string
				for j := range inv.Doors {
					d := &inv.Doors[j]
					if d.Org != want.Org || d.Edge != want.Edge {
						continue
					}
					var roles []string
					for _, l := range []struct {
						role  string
						codes *[]string
					}{{"reader", &d.Readers}, {"lock", &d.Locks}, {"sensor", &d.Sensors}} {
						if slices.Contains(*l.codes, want.Code) {
							roles = append(roles, l.role)
							if cascadeThing {
								*l.codes = slices.DeleteFunc(*l.codes, func(c string) bool { return c == want.Code })
							}
						}
					}
					if len(roles) > 0 {
						users = append(users, fmt.Sprintf("%s lists it as %s", doorLabel(j, *d), strings.Join(roles, " and ")))
					}
				}
				if len(users) > 0 && !cascadeThing {
					return nil, fmt.Errorf("%s is in use: %s; remove it from the doors first, or pass --cascade to remove it from them",
						ed.entry, dependents(users, 10))
				}
				for _, u := range users {
					ed.also = append(ed.also, "removed it from "+strings.Replace(u, " lists it as ", " as ", 1))
				}
				inv.Things = slices.Delete(inv.Things, i, i+1)
				return ed, nil
			})
		}),
	}
	addEditFlags(thingCmd, &to)
	thingCmd.Flags().StringVar(&thingOrg, "org", "", "the thing's org (default: the edge's)")
	thingCmd.Flags().BoolVar(&cascadeThing, "cascade", false, "also remove the thing from the doors that list it")

	var so editOptions
	var svcOrg string
	svcCmd := &cobra.Command{
		Use:   "service NAME",
		Short: "Remove a service identity",
		Long: `Remove service removes a non-device identity. The org defaults to the
only org with a service of that name. An org's last central service cannot
be removed: central logs in as it.

` + editHelp,
		Example: `  lintelctl remove service ops-alice -i deploy/inventory.json`,
		Args:    cobra.ExactArgs(1),
		RunE: a.runE(func(_ *cobra.Command, args []string) error {
			return a.changeInventory(&so, func(inv *authz.Inventory) (*inventoryEdit, error) {
				org, err := serviceOrg(inv, svcOrg, "", args[0], true)
				if err != nil {
					return nil, err
				}
				i := slices.IndexFunc(inv.Services, func(s authz.Service) bool { return s.Org == org && s.Name == args[0] })
				if i < 0 {
					return nil, fmt.Errorf("no service %q of org %q in %s", args[0], org, so.inventory)
				}
				ed := &inventoryEdit{verb: "removed", entry: serviceLabel(i, inv.Services[i])}
				inv.Services = slices.Delete(inv.Services, i, i+1)
				return ed, nil
			})
		}),
	}
	addEditFlags(svcCmd, &so)
	svcCmd.Flags().StringVar(&svcOrg, "org", "", "the service's org (default: the only org with a service of that name)")

	var do editOptions
	var doorOrg string
	doorCmd := &cobra.Command{
		Use:   "door EDGE CODE",
		Short: "Remove a door from an edge",
		Long: `Remove door removes an access point; its things stay. The org is the
edge's unless --org says otherwise.

` + editHelp,
		Example: `  lintelctl remove door hq side -i deploy/inventory.json`,
		Args:    cobra.ExactArgs(2),
		RunE: a.runE(func(_ *cobra.Command, args []string) error {
			return a.changeInventory(&do, func(inv *authz.Inventory) (*inventoryEdit, error) {
				org, err := edgeOrg(inv, doorOrg, args[0])
				if err != nil {
					return nil, err
				}
				i := slices.IndexFunc(inv.Doors, func(d authz.Door) bool { return d.Org == org && d.Edge == args[0] && d.Code == args[1] })
				if i < 0 {
					return nil, fmt.Errorf("no door %s.%s.%s in %s", org, args[0], args[1], do.inventory)
				}
				ed := &inventoryEdit{verb: "removed", entry: doorLabel(i, inv.Doors[i])}
				inv.Doors = slices.Delete(inv.Doors, i, i+1)
				return ed, nil
			})
		}),
	}
	addEditFlags(doorCmd, &do)
	doorCmd.Flags().StringVar(&doorOrg, "org", "", "the door's org (default: the edge's)")

	cmd.AddCommand(edgeCmd, thingCmd, svcCmd, doorCmd)
	return cmd
}

package deploy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const zabbixTemplate = "zabbix/lintel_templates.yaml"

// The value sets of Zabbix 7.0's export format that the template uses.
var (
	zbxItemTypes = []string{"ZABBIX_PASSIVE", "TRAP", "SIMPLE", "INTERNAL", "ZABBIX_ACTIVE", "EXTERNAL",
		"ODBC", "IPMI", "SSH", "TELNET", "CALCULATED", "JMX", "SNMP_TRAP", "DEPENDENT", "HTTP_AGENT", "SNMP_AGENT", "SCRIPT", "BROWSER"}
	zbxValueTypes = []string{"FLOAT", "CHAR", "LOG", "UNSIGNED", "TEXT", "BINARY"}
	zbxPreproc    = []string{"MULTIPLIER", "RTRIM", "LTRIM", "TRIM", "REGEX", "BOOL_TO_DECIMAL", "OCTAL_TO_DECIMAL",
		"HEX_TO_DECIMAL", "SIMPLE_CHANGE", "CHANGE_PER_SECOND", "XMLPATH", "JSONPATH", "IN_RANGE", "MATCHES_REGEX",
		"NOT_MATCHES_REGEX", "CHECK_JSON_ERROR", "CHECK_XML_ERROR", "CHECK_REGEX_ERROR", "DISCARD_UNCHANGED",
		"DISCARD_UNCHANGED_HEARTBEAT", "JAVASCRIPT", "PROMETHEUS_PATTERN", "PROMETHEUS_TO_JSON", "CSV_TO_JSON",
		"STR_REPLACE", "CHECK_NOT_SUPPORTED", "XML_TO_JSON", "SNMP_WALK_VALUE", "SNMP_WALK_TO_JSON", "SNMP_GET_VALUE"}
	zbxErrorHandlers = []string{"ORIGINAL_ERROR", "DISCARD_VALUE", "CUSTOM_VALUE", "CUSTOM_ERROR"}
	zbxPriorities    = []string{"NOT_CLASSIFIED", "INFO", "WARNING", "AVERAGE", "HIGH", "DISASTER"}
	// Trigger functions the template may use.
	zbxFunctions = []string{"last", "min", "max", "avg", "sum", "count", "first", "change", "delta", "nodata", "now", "time"}

	zbxUUID     = regexp.MustCompile(`^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$`)
	zbxRef      = regexp.MustCompile(`\(/([^/]*)/([A-Za-z0-9_.\-]+(?:\[[^\]]*\])?)`)
	zbxFunc     = regexp.MustCompile(`([a-z_]+)\(`)
	zbxUserMac  = regexp.MustCompile(`\{\$[A-Z0-9_.]+\}`)
	zbxLLDMac   = regexp.MustCompile(`\{#[A-Z0-9_.]+\}`)
	promPattern = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$`)
	promLabel   = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// zbx is a parsed YAML mapping of the export.
type zbx = map[string]any

// zbxObject is what one kind of object of the export may hold: fields of
// its own, and fields holding objects (a mapping or a list of them) of
// another kind.
type zbxObject struct {
	fields  []string
	objects map[string]string
}

// zbxFormat is Zabbix 7.0's template export format (the importer's
// schema, C70XmlValidator), by kind of object: the fields each may have.
// A field not listed is a mistake, such as a misspelling, that Zabbix
// refuses on import.
var zbxFormat = map[string]zbxObject{
	"export": {[]string{"version"}, map[string]string{"template_groups": "group", "host_groups": "group", "templates": "template",
		"hosts": "opaque", "triggers": "trigger", "graphs": "opaque", "media_types": "opaque", "maps": "opaque", "images": "opaque"}},
	"group": {[]string{"uuid", "name"}, nil},
	"template": {[]string{"uuid", "template", "name", "description"}, map[string]string{"vendor": "vendor", "templates": "ref",
		"groups": "ref", "tags": "tag", "macros": "macro", "items": "item", "discovery_rules": "discovery rule",
		"httptests": "opaque", "dashboards": "opaque", "valuemaps": "valuemap"}},
	"vendor":   {[]string{"name", "version"}, nil},
	"ref":      {[]string{"name"}, nil},
	"tag":      {[]string{"tag", "value"}, nil},
	"macro":    {[]string{"macro", "type", "value", "description"}, nil},
	"valuemap": {[]string{"uuid", "name"}, map[string]string{"mappings": "mapping"}},
	"mapping":  {[]string{"type", "value", "newvalue"}, nil},
	"item": {slices.Concat(zbxItemFields, []string{"history", "trends", "value_type", "units", "inventory_link", "logtimefmt"}),
		map[string]string{"valuemap": "ref", "preprocessing": "step", "master_item": "key ref", "query_fields": "pair",
			"headers": "pair", "tags": "tag", "triggers": "trigger"}},
	"item prototype": {slices.Concat(zbxItemFields, []string{"history", "trends", "value_type", "units", "inventory_link", "logtimefmt", "discover"}),
		map[string]string{"valuemap": "ref", "preprocessing": "step", "master_item": "key ref", "query_fields": "pair",
			"headers": "pair", "tags": "tag", "trigger_prototypes": "trigger prototype"}},
	"discovery rule": {slices.Concat(zbxItemFields, []string{"lifetime_type", "lifetime", "enabled_lifetime_type", "enabled_lifetime"}),
		map[string]string{"preprocessing": "step", "master_item": "key ref", "query_fields": "pair", "headers": "pair",
			"filter": "opaque", "overrides": "opaque", "lld_macro_paths": "lld macro path", "item_prototypes": "item prototype",
			"trigger_prototypes": "trigger prototype", "graph_prototypes": "opaque", "host_prototypes": "opaque"}},
	"step":           {[]string{"type", "parameters", "error_handler", "error_handler_params"}, nil},
	"key ref":        {[]string{"key"}, nil},
	"pair":           {[]string{"name", "value"}, nil},
	"lld macro path": {[]string{"lld_macro", "path"}, nil},
	"trigger":        {zbxTriggerFields, map[string]string{"dependencies": "dependency", "tags": "tag"}},
	"trigger prototype": {slices.Concat(zbxTriggerFields, []string{"discover"}),
		map[string]string{"dependencies": "dependency", "tags": "tag"}},
	"dependency": {[]string{"name", "expression", "recovery_expression"}, nil},
}

// The fields that items, item prototypes and discovery rules share, and
// those of triggers and trigger prototypes.
var (
	zbxItemFields = []string{"uuid", "name", "type", "snmp_oid", "key", "delay", "status", "allowed_hosts", "params",
		"ipmi_sensor", "authtype", "username", "password", "publickey", "privatekey", "description", "jmx_endpoint",
		"timeout", "url", "parameters", "posts", "status_codes", "follow_redirects", "post_type", "http_proxy",
		"retrieve_mode", "request_method", "output_format", "allow_traps", "ssl_cert_file", "ssl_key_file",
		"ssl_key_password", "verify_peer", "verify_host"}
	zbxTriggerFields = []string{"uuid", "expression", "recovery_mode", "recovery_expression", "name", "event_name",
		"opdata", "correlation_mode", "correlation_tag", "url_name", "url", "status", "priority", "description",
		"type", "manual_close"}
)

// zbxFields reports, through bad, every field of m (an object of kind, at
// where) and of the objects under it that zbxFormat does not allow.
func zbxFields(m zbx, kind, where string, bad func(string, ...any)) {
	f, ok := zbxFormat[kind]
	if !ok {
		return // "opaque": parts of the format the templates do not use
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if slices.Contains(f.fields, k) {
			continue
		}
		sub, ok := f.objects[k]
		if !ok {
			bad("%s: unknown field %q (%s)", where, k, kind)
			continue
		}
		if one, ok := m[k].(zbx); ok {
			zbxFields(one, sub, where+"."+k, bad)
			continue
		}
		for i, e := range list(m[k]) {
			zbxFields(e, sub, fmt.Sprintf("%s.%s[%d]", where, k, i), bad)
		}
	}
}

func list(v any) []zbx {
	var out []zbx
	if l, ok := v.([]any); ok {
		for _, e := range l {
			if m, ok := e.(zbx); ok {
				out = append(out, m)
			}
		}
	}
	return out
}

func str(m zbx, k string) string {
	s, _ := m[k].(string)
	return s
}

func loadZabbix(t *testing.T) zbx {
	t.Helper()
	b, err := os.ReadFile(zabbixTemplate)
	if err != nil {
		t.Fatal(err)
	}
	var doc zbx
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", zabbixTemplate, err)
	}
	return doc
}

// metricRef is a Prometheus pattern the template reads from a /metrics
// master item: the metric name and the label matchers.
type metricRef struct {
	template, master, pattern string
	lld                       bool // a discovery rule's PROMETHEUS_TO_JSON
}

// zbxCheck checks doc against the rules of Zabbix 7.0's export format
// that can be checked without a Zabbix server, and returns what it broke
// and the metrics the templates read.
func zbxCheck(doc zbx) (problems []string, metrics []metricRef) {
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	exp, ok := doc["zabbix_export"].(zbx)
	if !ok {
		return []string{"no zabbix_export mapping"}, nil
	}
	zbxFields(exp, "export", "zabbix_export", bad)
	if v := str(exp, "version"); v != "6.4" && v != "7.0" {
		bad("zabbix_export.version %q: want '6.4' or '7.0'", v)
	}
	uuids := map[string]string{}
	uuid := func(where string, m zbx) {
		u := str(m, "uuid")
		switch {
		case !zbxUUID.MatchString(u):
			bad("%s: uuid %q is not 32 lowercase hex digits of a version 4 UUID", where, u)
		case uuids[u] != "":
			bad("%s: uuid %s already used by %s", where, u, uuids[u])
		default:
			uuids[u] = where
		}
	}
	groups := map[string]bool{}
	for _, g := range list(exp["template_groups"]) {
		uuid("template group "+str(g, "name"), g)
		groups[str(g, "name")] = true
	}
	if len(groups) == 0 {
		bad("no template_groups")
	}
	templates := list(exp["templates"])
	if len(templates) == 0 {
		bad("no templates")
	}
	for _, tp := range templates {
		name := str(tp, "template")
		where := "template " + name
		uuid(where, tp)
		if name == "" || str(tp, "name") == "" {
			bad("%s: template and name are required", where)
		}
		for _, g := range list(tp["groups"]) {
			if !groups[str(g, "name")] {
				bad("%s: group %q is not among template_groups", where, str(g, "name"))
			}
		}
		if len(list(tp["groups"])) == 0 {
			bad("%s: no groups", where)
		}
		macros := map[string]bool{}
		for _, m := range list(tp["macros"]) {
			if !zbxUserMac.MatchString(str(m, "macro")) || zbxUserMac.FindString(str(m, "macro")) != str(m, "macro") {
				bad("%s: macro %q is not of the form {$NAME}", where, str(m, "macro"))
			}
			macros[str(m, "macro")] = true
		}
		valuemaps := map[string]bool{}
		for _, v := range list(tp["valuemaps"]) {
			uuid(where+" valuemap "+str(v, "name"), v)
			valuemaps[str(v, "name")] = true
		}
		usesMacros := func(what, s string, lld map[string]bool) {
			for _, m := range zbxUserMac.FindAllString(s, -1) {
				if !macros[m] {
					bad("%s: macro %s is not defined in the template", what, m)
				}
			}
			for _, m := range zbxLLDMac.FindAllString(s, -1) {
				if !lld[m] {
					bad("%s: LLD macro %s is not defined by its discovery rule", what, m)
				}
			}
		}
		keys := map[string]zbx{} // items and item prototypes by key
		for _, it := range list(tp["items"]) {
			keys[str(it, "key")] = it
		}
		for _, r := range list(tp["discovery_rules"]) {
			for _, it := range list(r["item_prototypes"]) {
				if keys[str(it, "key")] != nil {
					bad("%s: key %s used twice", where, str(it, "key"))
				}
				keys[str(it, "key")] = it
			}
		}
		// checkItem checks an item, item prototype or discovery rule.
		checkItem := func(it zbx, kind string, lld map[string]bool) {
			key := str(it, "key")
			what := fmt.Sprintf("%s %s %s", where, kind, key)
			uuid(what, it)
			if str(it, "name") == "" || key == "" {
				bad("%s: name and key are required", what)
			}
			usesMacros(what, str(it, "name")+" "+key+" "+str(it, "url"), lld)
			typ := str(it, "type")
			if !slices.Contains(zbxItemTypes, typ) {
				bad("%s: type %q", what, typ)
			}
			if vt, ok := it["value_type"]; ok && !slices.Contains(zbxValueTypes, fmt.Sprint(vt)) {
				bad("%s: value_type %v", what, vt)
			}
			if vm, ok := it["valuemap"].(zbx); ok && !valuemaps[str(vm, "name")] {
				bad("%s: valuemap %q is not defined", what, str(vm, "name"))
			}
			var master zbx
			switch typ {
			case "HTTP_AGENT":
				if !strings.Contains(str(it, "url"), "://") {
					bad("%s: HTTP agent item without a url", what)
				}
			case "DEPENDENT":
				mk, _ := it["master_item"].(zbx)
				if master = keys[str(mk, "key")]; master == nil {
					bad("%s: master item %q does not exist", what, str(mk, "key"))
				}
				if str(it, "delay") != "0" {
					bad("%s: a dependent item's delay must be '0'", what)
				}
			}
			for _, p := range list(it["preprocessing"]) {
				pt := str(p, "type")
				params, _ := p["parameters"].([]any)
				if !slices.Contains(zbxPreproc, pt) {
					bad("%s: preprocessing type %q", what, pt)
				}
				if eh, ok := p["error_handler"]; ok && !slices.Contains(zbxErrorHandlers, fmt.Sprint(eh)) {
					bad("%s: error_handler %v", what, eh)
				}
				for _, x := range params {
					usesMacros(what, fmt.Sprint(x), lld)
				}
				switch pt {
				case "PROMETHEUS_PATTERN":
					if len(params) != 3 || !slices.Contains([]string{"value", "label", "function"}, fmt.Sprint(params[1])) {
						bad("%s: PROMETHEUS_PATTERN wants (pattern, value|label|function, label or function): %v", what, params)
						continue
					}
				case "PROMETHEUS_TO_JSON":
					if len(params) != 1 {
						bad("%s: PROMETHEUS_TO_JSON wants one parameter: %v", what, params)
						continue
					}
				default:
					continue
				}
				if master == nil || str(master, "type") != "HTTP_AGENT" || !strings.HasSuffix(str(master, "url"), "/metrics") {
					bad("%s: a Prometheus pattern on a master item that is not an HTTP agent item on /metrics", what)
					continue
				}
				if !promPattern.MatchString(fmt.Sprint(params[0])) {
					bad("%s: pattern %q is not a metric name with label matchers", what, params[0])
				}
				metrics = append(metrics, metricRef{template: name, master: str(master, "key"), pattern: fmt.Sprint(params[0]), lld: kind == "discovery rule"})
			}
		}
		// checkTrigger checks a trigger or trigger prototype; own is the
		// key of the item it sits under.
		checkTrigger := func(tr zbx, kind, own string, lld map[string]bool) {
			what := fmt.Sprintf("%s %s %q", where, kind, str(tr, "name"))
			uuid(what, tr)
			expr := str(tr, "expression")
			if expr == "" || str(tr, "name") == "" {
				bad("%s: expression and name are required", what)
			}
			usesMacros(what, expr+" "+str(tr, "name"), lld)
			if p, ok := tr["priority"]; ok && !slices.Contains(zbxPriorities, fmt.Sprint(p)) {
				bad("%s: priority %v", what, p)
			}
			refs := zbxRef.FindAllStringSubmatch(expr, -1)
			if len(refs) == 0 {
				bad("%s: the expression references no item", what)
			}
			for _, r := range refs {
				if r[1] != name {
					bad("%s: references host %q, not the template %q", what, r[1], name)
				}
				if keys[r[2]] == nil {
					bad("%s: references key %s, which the template lacks", what, r[2])
				}
				if own != "" && r[2] != own {
					bad("%s: sits under item %s but references %s", what, own, r[2])
				}
			}
			for _, f := range zbxFunc.FindAllStringSubmatch(expr, -1) {
				if !slices.Contains(zbxFunctions, f[1]) {
					bad("%s: function %s()", what, f[1])
				}
			}
			if strings.Count(expr, "(") != strings.Count(expr, ")") {
				bad("%s: unbalanced parentheses", what)
			}
		}
		for _, it := range list(tp["items"]) {
			checkItem(it, "item", nil)
			for _, tr := range list(it["triggers"]) {
				checkTrigger(tr, "trigger", str(it, "key"), nil)
			}
		}
		for _, tr := range list(exp["triggers"]) {
			checkTrigger(tr, "trigger", "", nil)
		}
		for _, r := range list(tp["discovery_rules"]) {
			lld := map[string]bool{}
			for _, m := range list(r["lld_macro_paths"]) {
				lld[str(m, "lld_macro")] = true
				if !strings.HasPrefix(str(m, "path"), "$.") {
					bad("%s discovery rule %s: LLD macro path %q is not a JSONPath", where, str(r, "key"), str(m, "path"))
				}
			}
			checkItem(r, "discovery rule", nil)
			for _, it := range list(r["item_prototypes"]) {
				checkItem(it, "item prototype", lld)
				if !zbxLLDMac.MatchString(str(it, "key")) {
					bad("%s item prototype %s: the key holds no LLD macro", where, str(it, "key"))
				}
				for _, tr := range list(it["trigger_prototypes"]) {
					checkTrigger(tr, "trigger prototype", str(it, "key"), lld)
				}
			}
		}
	}
	return problems, metrics
}

// TestZabbixTemplateFormat checks the template against the export
// format's rules, and that the check catches templates that break them.
func TestZabbixTemplateFormat(t *testing.T) {
	doc := loadZabbix(t)
	problems, metrics := zbxCheck(doc)
	for _, p := range problems {
		t.Error(p)
	}
	if len(metrics) < 20 {
		t.Errorf("the templates read %d metric patterns; expected the central and edge metrics", len(metrics))
	}

	// Each breakage is found, and named.
	first := func(d zbx, path ...string) zbx {
		m := d["zabbix_export"].(zbx)
		for _, p := range path {
			m = list(m[p])[0]
		}
		return m
	}
	cases := []struct {
		name   string
		mutate func(zbx)
		want   string
	}{
		{"old version", func(d zbx) { d["zabbix_export"].(zbx)["version"] = "5.0" }, "version"},
		{"duplicate uuid", func(d zbx) {
			first(d, "templates", "items")["uuid"] = first(d, "templates")["uuid"]
		}, "already used"},
		{"uuid with dashes", func(d zbx) { first(d, "templates")["uuid"] = "0d0b2a5e-6d1f-4b7c-9d0e-1a2b3c4d5e6f" }, "32 lowercase hex"},
		{"missing master item", func(d zbx) {
			for _, it := range list(first(d, "templates")["items"]) {
				if str(it, "type") == "DEPENDENT" {
					it["master_item"] = zbx{"key": "no.such.item"}
					return
				}
			}
		}, "master item"},
		{"trigger on another template", func(d zbx) {
			for _, it := range list(first(d, "templates")["items"]) {
				for _, tr := range list(it["triggers"]) {
					tr["expression"] = strings.Replace(str(tr, "expression"), "/Lintel central by HTTP/", "/Other/", 1)
					return
				}
			}
		}, "not the template"},
		{"undefined macro", func(d zbx) { first(d, "templates")["macros"] = []any{} }, "not defined in the template"},
		{"bad value type", func(d zbx) { first(d, "templates", "items")["value_type"] = "STRING" }, "value_type"},
		{"misspelled item field", func(d zbx) {
			it := first(d, "templates", "items")
			it["value_typ"] = it["value_type"]
			delete(it, "value_type")
		}, `templates[0].items[0]: unknown field "value_typ" (item)`},
		{"misspelled trigger prototype field", func(d zbx) {
			for _, r := range list(first(d, "templates")["discovery_rules"]) {
				for _, it := range list(r["item_prototypes"]) {
					for _, tr := range list(it["trigger_prototypes"]) {
						tr["priorty"] = "HIGH"
						return
					}
				}
			}
		}, `unknown field "priorty" (trigger prototype)`},
		{"misspelled nested field", func(d zbx) {
			first(d, "templates", "items")["tags"] = []any{zbx{"tag": "component", "vaule": "raw"}}
		}, `items[0].tags[0]: unknown field "vaule" (tag)`},
		{"item field on a template", func(d zbx) { first(d, "templates")["delay"] = "1m" }, `unknown field "delay" (template)`},
		{"bad preprocessing", func(d zbx) {
			for _, it := range list(first(d, "templates")["items"]) {
				for _, p := range list(it["preprocessing"]) {
					if str(p, "type") == "PROMETHEUS_PATTERN" {
						p["parameters"] = []any{"lintel_edge_link_up"}
						return
					}
				}
			}
		}, "PROMETHEUS_PATTERN wants"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := loadZabbix(t)
			c.mutate(d)
			problems, _ := zbxCheck(d)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, c.want) }) {
				t.Fatalf("no problem mentioning %q found; got %q", c.want, problems)
			}
		})
	}
}

// series is one sample line of a Prometheus text exposition.
type series struct {
	name   string
	labels map[string]string
}

// parseMetrics returns the samples of a Prometheus text exposition.
func parseMetrics(text string) []series {
	var out []series
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		s := series{labels: map[string]string{}}
		if i := strings.IndexByte(line, '{'); i >= 0 && i < len(name)+1 {
			j := strings.LastIndexByte(line, '}')
			name = line[:i]
			for _, l := range promLabel.FindAllStringSubmatch(line[i+1:j], -1) {
				s.labels[l[1]] = l[2]
			}
		}
		s.name = name
		out = append(out, s)
	}
	return out
}

// matches reports which samples pattern (a metric name with label
// matchers, LLD macros replaced) selects.
func matches(pattern string, samples []series) []series {
	m := promPattern.FindStringSubmatch(pattern)
	if m == nil {
		return nil
	}
	want := map[string]string{}
	for _, l := range promLabel.FindAllStringSubmatch(m[2], -1) {
		want[l[1]] = l[2]
	}
	var out []series
	for _, s := range samples {
		if s.name != m[1] {
			continue
		}
		ok := true
		for k, v := range want {
			if s.labels[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, s)
		}
	}
	return out
}

// TestZabbixMetricsExported runs central (with PostgreSQL), an edge
// linked to it and an HTTP gateway at the edge, built from apps/, scrapes their admin listeners the way
// the templates' HTTP agent items do, and finds every metric series the
// templates read, with the discovered org and edge filled in, and the
// readiness fields their JSONPath items read.
func TestZabbixMetricsExported(t *testing.T) {
	doc := loadZabbix(t)
	problems, refs := zbxCheck(doc)
	if len(problems) > 0 {
		t.Fatalf("the template has problems: %q", problems)
	}
	sys := runSystem(t, true)
	admins := map[string]string{"lintel.central.metrics": sys.centralAdmin, "lintel.edge.metrics": sys.edgeAdmin,
		"lintel.gateway.metrics": sys.gatewayAdmin}
	macros := strings.NewReplacer("{#ORG}", "acme", "{#EDGE}", "hq")
	var missing []string
	check := func() bool {
		missing = missing[:0]
		scraped := map[string][]series{}
		for master, addr := range admins {
			body, err := httpGet("http://" + addr + "/metrics")
			if err != nil {
				missing = append(missing, err.Error())
				return false
			}
			scraped[master] = parseMetrics(body)
		}
		for _, r := range refs {
			samples, ok := scraped[r.master]
			if !ok {
				missing = append(missing, r.template+": no running app for master item "+r.master)
				continue
			}
			got := matches(macros.Replace(r.pattern), samples)
			if len(got) == 0 {
				missing = append(missing, r.master+": "+macros.Replace(r.pattern))
				continue
			}
			if r.lld {
				// The discovery rule's macros come from these labels.
				if !slices.ContainsFunc(got, func(s series) bool { return s.labels["org"] == "acme" }) {
					missing = append(missing, r.master+": discovery "+r.pattern+" finds no org acme")
				}
			}
		}
		return len(missing) == 0
	}
	if !eventually(check) {
		t.Fatalf("series the Zabbix templates read but the apps do not export:\n%s", strings.Join(missing, "\n"))
	}
	// The edges discovery finds the edge by its labels.
	body, err := httpGet("http://" + sys.centralAdmin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if got := matches(`lintel_central_source_active_seconds{flow="events"}`, parseMetrics(body)); len(got) != 1 ||
		got[0].labels["org"] != "acme" || got[0].labels["edge"] != "hq" {
		t.Fatalf("edge discovery: %+v", got)
	}

	// The readiness items' JSONPaths.
	for _, c := range []struct{ addr, path string }{
		{sys.centralAdmin, "status"}, {sys.centralAdmin, "detail.Database"},
		{sys.edgeAdmin, "status"}, {sys.edgeAdmin, "detail.devices_stale"}, {sys.gatewayAdmin, "status"},
	} {
		body, err := httpGet("http://" + c.addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("readyz of %s: %v", c.addr, err)
		}
		for _, k := range strings.Split(c.path, ".") {
			m, _ := v.(map[string]any)
			var ok bool
			if v, ok = m[k]; !ok {
				t.Fatalf("readyz of %s has no %s: %s", c.addr, c.path, body)
			}
		}
	}
	// And the JSONPaths in the template are these.
	var paths []string
	for _, tp := range list(doc["zabbix_export"].(zbx)["templates"]) {
		for _, it := range list(tp["items"]) {
			for _, p := range list(it["preprocessing"]) {
				if str(p, "type") == "JSONPATH" {
					paths = append(paths, fmt.Sprint(p["parameters"].([]any)[0]))
				}
			}
		}
	}
	for _, p := range paths {
		if !slices.Contains([]string{"$.status", "$.error", "$.detail.Database", "$.detail.devices_stale"}, p) {
			t.Errorf("JSONPath %s is not checked against a running app", p)
		}
	}
}

func httpGet(url string) (string, error) {
	r, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	return string(b), err
}

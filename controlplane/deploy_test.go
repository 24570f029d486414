package controlplane

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// metricName finds the metrics an expression names: ours, and the Go
// client's standard ones (not Prometheus's own, such as up).
var metricName = regexp.MustCompile(`\b(?:fillcast|go|process)_[a-zA-Z0-9_]+\b`)

// checkDeployNames checks that every metric an alert rule or a
// dashboard panel of deploy/ names is on pages[process], the names on
// the /metrics page of the process it is about: a rule group is about
// the process its name says (fillcast-controlplane, fillcast-appliance),
// a dashboard the one its file name says.
func checkDeployNames(t *testing.T, pages map[string]map[string]bool) {
	t.Helper()
	dir := filepath.Join("..", "deploy")
	type source struct{ file, process string }
	exprs := map[source][]string{}
	groups := ruleExprs(t, filepath.Join(dir, "prometheus", "fillcast-rules.yml"))
	for g, es := range groups {
		exprs[source{"fillcast-rules.yml group " + g, strings.TrimPrefix(g, "fillcast-")}] = es
	}
	if len(groups) != len(pages) {
		t.Errorf("%d rule groups, want one for each of %d processes", len(groups), len(pages))
	}
	for process := range pages {
		file := "fillcast-" + process + ".json"
		exprs[source{file, process}] = dashboardExprs(t, filepath.Join(dir, "grafana", file))
	}
	for src, es := range exprs {
		file, process := src.file, src.process
		page, ok := pages[process]
		if !ok {
			t.Errorf("%s: about %q, which no page is", file, process)
			continue
		}
		named := 0
		for _, e := range es {
			for _, name := range metricName.FindAllString(e, -1) {
				named++
				if !page[name] {
					t.Errorf("%s names %s, which the %s does not serve (in %q)", file, name, process, e)
				}
			}
		}
		if named == 0 {
			t.Errorf("%s: no metric named", file)
		}
	}
}

// ruleExprs returns the expressions of the rules file's alerts by group
// name: an expr on one line, or a block (expr: |) of the lines indented
// below it. promtool checks the file's YAML and PromQL.
func ruleExprs(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	group, block, indent := "", (*strings.Builder)(nil), 0
	flush := func() {
		if block != nil {
			out[group] = append(out[group], block.String())
			block = nil
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		lead := len(line) - len(strings.TrimLeft(line, " "))
		if block != nil {
			if trimmed == "" || lead > indent {
				block.WriteString(trimmed + "\n")
				continue
			}
			flush()
		}
		switch {
		case strings.HasPrefix(trimmed, "- name:"):
			group = strings.TrimSpace(strings.TrimPrefix(trimmed, "- name:"))
		case trimmed == "expr: |" || trimmed == "expr: >-" || trimmed == "expr: >":
			block, indent = &strings.Builder{}, lead
		case strings.HasPrefix(trimmed, "expr:"):
			out[group] = append(out[group], strings.TrimSpace(strings.TrimPrefix(trimmed, "expr:")))
		}
	}
	flush()
	return out
}

// dashboardExprs returns every query of a Grafana dashboard: panels'
// targets (expr) and template variables (query), wherever they nest.
func dashboardExprs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "query") {
					out = append(out, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	return out
}

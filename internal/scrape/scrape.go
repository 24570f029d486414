// Package scrape reads a Prometheus /metrics page, in the text
// exposition format, into samples that tests look metrics up in: the
// tests that check each metric family appears with its labels and moves,
// and the check that every metric deploy/'s alert rules and dashboards
// name is one a running process serves.
package scrape

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
)

// Sample is one line of the page: a series and its value.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Page is a scraped page.
type Page struct {
	Samples []Sample
	// Families are the names of the page's # TYPE lines.
	Families map[string]bool
}

// Get scrapes url, with bearer as the Authorization token when not
// empty.
func Get(ctx context.Context, c *http.Client, url, bearer string) (*Page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape: %s answered %s", url, resp.Status)
	}
	return Parse(resp.Body)
}

// Parse reads a page in the text exposition format.
func Parse(r io.Reader) (*Page, error) {
	p := &Page{Families: map[string]bool{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			if name, _, ok := strings.Cut(f, " "); ok {
				p.Families[name] = true
			}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("scrape: line %d: %w", n, err)
		}
		p.Samples = append(p.Samples, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	return p, nil
}

// parseSample reads name{label="value",...} value [timestamp].
func parseSample(line string) (Sample, error) {
	s := Sample{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return s, fmt.Errorf("%q: no value", line)
	}
	s.Name, line = line[:i], line[i:]
	if line[0] == '{' {
		line = line[1:]
		for {
			line = strings.TrimLeft(line, ", ")
			if strings.HasPrefix(line, "}") {
				line = line[1:]
				break
			}
			eq := strings.Index(line, `="`)
			if eq <= 0 {
				return s, fmt.Errorf("%s: malformed labels", s.Name)
			}
			name := line[:eq]
			value, rest, err := unquote(line[eq+2:])
			if err != nil {
				return s, fmt.Errorf("%s: label %s: %w", s.Name, name, err)
			}
			s.Labels[name], line = value, rest
		}
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return s, fmt.Errorf("%s: no value", s.Name)
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("%s: value %q: %w", s.Name, fields[0], err)
	}
	s.Value = v
	return s, nil
}

// unquote reads a label value up to its closing quote, undoing the
// format's escapes (\\, \" and \n), and returns what follows.
func unquote(s string) (value, rest string, err error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			if i+1 == len(s) {
				return "", "", fmt.Errorf("unterminated escape")
			}
			i++
			if s[i] == 'n' {
				b.WriteByte('\n')
			} else {
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("unterminated value")
}

// Value returns the value of the sample named name whose labels include
// labels, and whether there is one; with several, their sum.
func (p *Page) Value(name string, labels map[string]string) (float64, bool) {
	var sum float64
	found := false
	for _, s := range p.Samples {
		if s.Name == name && includes(s.Labels, labels) {
			sum += s.Value
			found = true
		}
	}
	return sum, found
}

func includes(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// Names returns every series name on the page (histograms' _bucket, _sum
// and _count among them) and every family of a # TYPE line.
func (p *Page) Names() map[string]bool {
	names := maps.Clone(p.Families)
	for _, s := range p.Samples {
		names[s.Name] = true
	}
	return names
}

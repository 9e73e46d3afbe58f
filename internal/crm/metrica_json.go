package crm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// metricaJSON streams {"contacts": [ContactRow, …]} or {"orders":
// [OrderRow, …]} one element at a time, so a large body is never held whole.
type metricaJSON struct {
	dec   *json.Decoder
	guard *recordGuard
	f     MetricaFormat
	key   string
	state int // 0: before the list, 1: in it, 2: after it
	n     int // elements read
	obj   map[string]json.RawMessage
}

// NewMetricaJSONReader reads a JSON upload of contacts or orders.
func NewMetricaJSONReader(r io.Reader, f MetricaFormat) (RowReader, error) {
	key := "orders"
	if f.Intake == ContactsUp {
		key = "contacts"
	}
	guard := &recordGuard{r: r, what: "JSON value"}
	dec := json.NewDecoder(guard)
	dec.UseNumber()
	m := &metricaJSON{dec: dec, guard: guard, f: f, key: key}
	if err := m.seekList(); err != nil {
		return nil, err
	}
	return m, nil
}

func jsonFileError(err error, dec *json.Decoder) error {
	var syn *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF) && dec.InputOffset() == 0:
		return &FileError{Message: "the body is empty; a JSON object is required"}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &FileError{Message: fmt.Sprintf("the JSON body ends too early (at byte %d)", dec.InputOffset())}
	case errors.As(err, &syn):
		return &FileError{Message: fmt.Sprintf("malformed JSON at byte %d: %v", syn.Offset, err)}
	}
	return err // a read error (the client went away, the body is too large)
}

// seekList moves to the first element of the rows list.
func (m *metricaJSON) seekList() error {
	tok, err := m.dec.Token()
	if err != nil {
		return jsonFileError(err, m.dec)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return &FileError{Message: fmt.Sprintf(`the body must be a JSON object {"%s": […]}`, m.key)}
	}
	for m.dec.More() {
		tok, err := m.dec.Token()
		if err != nil {
			return jsonFileError(err, m.dec)
		}
		if k, _ := tok.(string); k == m.key {
			tok, err := m.dec.Token()
			if err != nil {
				return jsonFileError(err, m.dec)
			}
			if d, ok := tok.(json.Delim); !ok || d != '[' {
				return &FileError{Column: m.key, Message: "must be a list"}
			}
			m.state = 1
			return nil
		}
		var skip json.RawMessage // another key: ignored
		m.guard.start = m.dec.InputOffset()
		if err := m.dec.Decode(&skip); err != nil {
			return jsonFileError(err, m.dec)
		}
	}
	return &FileError{Column: m.key, Message: fmt.Sprintf(`the body has no "%s" list`, m.key)}
}

func (m *metricaJSON) Next() (any, int, error) {
	if m.state != 1 || !m.dec.More() {
		if m.state == 1 {
			if _, err := m.dec.Token(); err != nil { // the closing ]
				return nil, 0, jsonFileError(err, m.dec)
			}
			m.state = 2
		}
		return nil, 0, io.EOF
	}
	m.n++
	var raw json.RawMessage
	m.guard.start = m.dec.InputOffset()
	if err := m.dec.Decode(&raw); err != nil {
		return nil, m.n, jsonFileError(err, m.dec)
	}
	m.obj = nil
	if err := json.Unmarshal(raw, &m.obj); err != nil || m.obj == nil {
		return nil, m.n, &RowError{Line: m.n, Message: fmt.Sprintf("%s[%d] must be a JSON object", m.key, m.n-1)}
	}
	row, err := buildRow(m, &m.f)
	if err != nil {
		return nil, m.n, err
	}
	return row, m.n, nil
}

func (m *metricaJSON) line() int { return m.n }

func (m *metricaJSON) column(field string) string {
	return fmt.Sprintf("%s[%d].%s", m.key, m.n-1, field)
}

func (m *metricaJSON) has(field string) bool {
	v, ok := m.obj[field]
	if !ok {
		return false
	}
	t := string(bytes.TrimSpace(v))
	return t != "null" && t != `""` && t != "[]" && t != "{}"
}

// scalar is a JSON string, number or boolean as text.
func scalar(v json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return strings.TrimSpace(s), true
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		return n.String(), true // client ids like 17263548291736450123, not rounded through a float
	}
	var b bool
	if json.Unmarshal(v, &b) == nil {
		return fmt.Sprint(b), true
	}
	return "", false
}

func (m *metricaJSON) str(field string) string {
	v, ok := m.obj[field]
	if !ok {
		return ""
	}
	s, ok := scalar(v)
	if !ok {
		return string(v) // a list or an object where text belongs: fails validation with its text
	}
	return s
}

func (m *metricaJSON) list(field string) []string {
	v := m.obj[field]
	var items []json.RawMessage
	if json.Unmarshal(v, &items) != nil {
		return SplitMulti(m.str(field)) // "a@x.ru,b@x.ru" as in CSV
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		if s, ok := scalar(it); ok && s != "" {
			out = append(out, s)
		} else if !ok {
			out = append(out, string(it))
		}
	}
	return out
}

func (m *metricaJSON) products(field string) (map[string]float64, error) {
	var p map[string]json.Number
	if err := json.Unmarshal(m.obj[field], &p); err != nil {
		if s, ok := scalar(m.obj[field]); ok {
			return parseProductsCell(s)
		}
		return nil, fmt.Errorf(`must be an object {"product id": quantity}`)
	}
	out := make(map[string]float64, len(p))
	for id, q := range p {
		f, err := q.Float64()
		if err != nil || f < 0 || f > 1e12 || strings.TrimSpace(id) == "" {
			return nil, fmt.Errorf("product %q: the quantity %s is not a number ≥ 0", id, q)
		}
		out[strings.TrimSpace(id)] += f
	}
	return out, nil
}

func (m *metricaJSON) goals(field string) ([]Goal, error) {
	var in []struct {
		ID    string       `json:"goal_action_id"`
		Price *json.Number `json:"price"`
	}
	if err := json.Unmarshal(m.obj[field], &in); err != nil {
		if s, ok := scalar(m.obj[field]); ok {
			return parseGoalsCell(s)
		}
		return nil, fmt.Errorf(`must be a list [{"goal_action_id": "…", "price": 123.5}]`)
	}
	out := make([]Goal, 0, len(in))
	for _, g := range in {
		if !statusCodeRE.MatchString(g.ID) {
			return nil, fmt.Errorf("%q is not a goal id", g.ID)
		}
		goal := Goal{ID: g.ID}
		if g.Price != nil {
			p, err := ParseMoney(g.Price.String())
			if err != nil || p < 0 {
				return nil, fmt.Errorf("goal %s: the price %s is not an amount ≥ 0", g.ID, g.Price)
			}
			goal.Price, goal.HasPrice = p, true
		}
		out = append(out, goal)
	}
	return out, nil
}

// attributes reads attribute_values, in any of the shapes uploaders send:
// [{"name": "age", "values": ["40"]}] (canonical), [["age", "40"]], or
// {"age": ["40"]}. Naming an attribute that was not declared is an error.
func (m *metricaJSON) attributes() (map[string][]string, error) {
	raw, ok := m.obj["attribute_values"]
	if !ok || !m.has("attribute_values") {
		return nil, nil
	}
	vals := map[string][]string{}
	var objs []struct {
		Name   string            `json:"name"`
		Values []json.RawMessage `json:"values"`
		Value  json.RawMessage   `json:"value"`
	}
	var pairs [][]json.RawMessage
	var byName map[string]json.RawMessage
	add := func(name string, items ...json.RawMessage) {
		for _, it := range items {
			var list []json.RawMessage
			if json.Unmarshal(it, &list) == nil {
				for _, x := range list {
					if s, ok := scalar(x); ok {
						vals[name] = append(vals[name], s)
					}
				}
				continue
			}
			if s, ok := scalar(it); ok {
				vals[name] = append(vals[name], s)
			}
		}
	}
	switch {
	case json.Unmarshal(raw, &objs) == nil && len(objs) > 0 && objs[0].Name != "":
		for _, o := range objs {
			add(o.Name, o.Values...)
			if o.Value != nil {
				add(o.Name, o.Value)
			}
		}
	case json.Unmarshal(raw, &pairs) == nil:
		for _, p := range pairs {
			if len(p) < 2 {
				return nil, &RowError{Line: m.n, Column: m.column("attribute_values"), Message: `each pair must be ["name", "value", …]`}
			}
			name, _ := scalar(p[0])
			add(name, p[1:]...)
		}
	case json.Unmarshal(raw, &byName) == nil:
		for name, v := range byName {
			add(name, v)
		}
	default:
		return nil, &RowError{Line: m.n, Column: m.column("attribute_values"), Message: `must be a list like [{"name": "age", "values": ["40"]}]`}
	}
	out := map[string][]string{}
	for name, v := range vals {
		a, ok := m.f.attribute(name)
		if !ok {
			return nil, &RowError{Line: m.n, Column: m.column("attribute_values"),
				Message: fmt.Sprintf("attribute %q is not declared: declare it first with POST schema/attributes", name)}
		}
		checked, err := checkAttribute(a, v)
		if err != nil {
			return nil, &RowError{Line: m.n, Column: m.column("attribute_values"), Message: err.Error()}
		}
		out[a.Name] = checked
	}
	return out, nil
}

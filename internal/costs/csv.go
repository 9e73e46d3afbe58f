package costs

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/throughline/throughline/internal/crm"
)

// A cost file is a CSV with a header row, one day of one ad key a row:
//
//	date;utm_source;utm_medium;utm_campaign;cost;clicks;impressions
//	01.03.2024;yandex;cpc;"spring; sale";1234,50;120;4000
//
// The delimiter is ',', ';' or a tab, guessed from the header. Header names
// are case-insensitive and several spellings are read (columns); columns
// the format does not know are ignored.

// Fields of a row, in the order of columns.
const (
	fDay = iota
	fSource
	fMedium
	fCampaign
	fContent
	fTerm
	fCost
	fClicks
	fImpressions
	fCurrency
	nFields
)

// columns name each field's column, as the field is called in JSON and
// errors, and the headers that give it (lower-case).
var columns = [nFields]struct {
	field    string
	headers  []string
	required bool
}{
	fDay:         {"day", []string{"date", "day"}, true},
	fSource:      {"source", []string{"source", "utm_source"}, true},
	fMedium:      {"medium", []string{"medium", "utm_medium"}, true},
	fCampaign:    {"campaign", []string{"campaign", "utm_campaign"}, true},
	fContent:     {"content", []string{"content", "utm_content"}, false},
	fTerm:        {"term", []string{"term", "utm_term", "keyword"}, false},
	fCost:        {"cost", []string{"cost"}, true},
	fClicks:      {"clicks", []string{"clicks"}, false},
	fImpressions: {"impressions", []string{"impressions"}, false},
	fCurrency:    {"currency", []string{"currency"}, false},
}

// reader reads a cost file, validating and normalising each row.
type reader struct {
	cr     *csv.Reader
	guard  *recordGuard
	header []string     // as written in the file, trimmed
	col    [nFields]int // field → column, -1 when absent
}

// newReader reads the header of a cost file. A header that cannot be read,
// or lacks a required column, is a *crm.FileError.
func newReader(r io.Reader) (*reader, error) {
	guard := &recordGuard{r: r}
	br := bufio.NewReaderSize(guard, 64<<10)
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	head, _ := br.Peek(br.Size())
	cr := csv.NewReader(br)
	cr.Comma = sniffDelimiter(head)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, &crm.FileError{Message: "the file is empty: a header row with column names is required (" + requiredList() + ")"}
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, &crm.FileError{Message: fmt.Sprintf("the header row cannot be read: %v", pe.Err)}
		}
		return nil, fmt.Errorf("costs: read header: %w", err)
	}
	cr.ReuseRecord = true // the rows after the header share one slice
	t := &reader{cr: cr, guard: guard, header: header}
	index := map[string]int{}
	dups := map[string]bool{}
	for i, h := range header {
		if !utf8.ValidString(h) {
			return nil, &crm.FileError{Message: "the header row is not valid UTF-8: files must be in UTF-8 (this looks like another encoding, such as Windows-1251)"}
		}
		header[i] = strings.TrimSpace(h)
		name := strings.ToLower(header[i])
		if name == "" {
			continue
		}
		if _, seen := index[name]; seen {
			dups[name] = true
		}
		index[name] = i
	}
	guard.start = cr.InputOffset()
	var missing []string
	for f, c := range columns {
		t.col[f] = -1
		for _, h := range c.headers {
			i, ok := index[h]
			if !ok {
				continue
			}
			if dups[h] {
				return nil, &crm.FileError{Column: header[i], Message: "the column appears twice in the header"}
			}
			if t.col[f] >= 0 {
				return nil, &crm.FileError{Column: header[i], Message: fmt.Sprintf("columns %s and %s both give the %s: keep one", header[t.col[f]], header[i], c.field)}
			}
			t.col[f] = i
		}
		if t.col[f] < 0 && c.required {
			missing = append(missing, strings.Join(c.headers, " or "))
		}
	}
	if len(missing) > 0 {
		return nil, &crm.FileError{Column: columns[firstMissing(t.col)].headers[0],
			Message: fmt.Sprintf("required column %s is missing: a cost file needs the columns %s (found: %s)",
				strings.Join(missing, ", "), requiredList(), strings.Join(header, ", "))}
	}
	return t, nil
}

func firstMissing(col [nFields]int) int {
	for f, c := range columns {
		if c.required && col[f] < 0 {
			return f
		}
	}
	return 0
}

func requiredList() string {
	var names []string
	for _, c := range columns {
		if c.required {
			names = append(names, c.headers[0])
		}
	}
	return strings.Join(names, ", ")
}

// sniffDelimiter guesses the delimiter from the header line: the one of
// ',', ';' and tab that occurs most often outside quotes (',' on a tie or
// when there is none).
func sniffDelimiter(head []byte) rune {
	var n [3]int
	quoted := false
	for _, c := range head {
		if c == '"' {
			quoted = !quoted
			continue
		}
		if quoted {
			continue
		}
		if c == '\n' || c == '\r' {
			break
		}
		switch c {
		case ',':
			n[0]++
		case ';':
			n[1]++
		case '\t':
			n[2]++
		}
	}
	switch {
	case n[1] > n[0] && n[1] >= n[2]:
		return ';'
	case n[2] > n[0] && n[2] > n[1]:
		return '\t'
	}
	return ','
}

// next reads the next row and its line. A row that is rejected is a
// *RowError (reading can go on); io.EOF ends the file; any other error means
// the file cannot be read further.
func (t *reader) next() (Row, int, error) {
	for {
		t.guard.start = t.cr.InputOffset()
		rec, err := t.cr.Read()
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrQuote) && pe.Line > pe.StartLine {
				// A quoted field that runs over line ends to its error has
				// swallowed the rows after it: skipping it would drop them
				// without a word.
				return Row{}, 0, &crm.FileError{Message: fmt.Sprintf("line %d: a quoted field is not closed (it runs on to line %d); the rows after it cannot be read", pe.StartLine, pe.Line)}
			}
			if errors.As(err, &pe) {
				return Row{}, pe.StartLine, &RowError{Line: pe.StartLine, Message: "malformed CSV: " + pe.Err.Error()}
			}
			if errors.Is(err, io.EOF) {
				return Row{}, 0, io.EOF
			}
			return Row{}, 0, fmt.Errorf("costs: read CSV: %w", err)
		}
		line, _ := t.cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		row, rerr := t.row(rec, line)
		if rerr != nil {
			return Row{}, line, rerr
		}
		return row, line, nil
	}
}

// row reads the cells of one record into a normalised row.
func (t *reader) row(rec []string, line int) (Row, *RowError) {
	var cell [nFields]string
	for f, i := range t.col {
		if i < 0 || i >= len(rec) {
			continue
		}
		if err := checkText(rec[i]); err != nil {
			return Row{}, t.errorf(line, f, err)
		}
		cell[f] = strings.TrimSpace(rec[i])
	}
	r := Row{Day: cell[fDay], Source: cell[fSource], Medium: cell[fMedium], Campaign: cell[fCampaign],
		Content: cell[fContent], Term: cell[fTerm], Currency: cell[fCurrency]}
	var err error
	if cell[fCost] == "" {
		return Row{}, t.errorf(line, fCost, errors.New("is empty: the cost is required (0 for a day without spend)"))
	}
	if r.Cost, err = crm.ParseMoney(cell[fCost]); err != nil {
		return Row{}, t.errorf(line, fCost, err)
	}
	if r.Cost < 0 {
		return Row{}, t.errorf(line, fCost, fmt.Errorf("%q is negative", cell[fCost]))
	}
	for _, n := range []struct {
		f int
		v *int64
	}{{fClicks, &r.Clicks}, {fImpressions, &r.Impressions}} {
		if cell[n.f] == "" {
			continue
		}
		if *n.v, err = crm.ParseCount(cell[n.f]); err != nil {
			return Row{}, t.errorf(line, n.f, err)
		}
	}
	if field, err := r.normalize(); err != nil {
		return Row{}, t.errorf(line, fieldIndex(field), err)
	}
	return r, nil
}

func fieldIndex(field string) int {
	for f, c := range columns {
		if c.field == field {
			return f
		}
	}
	return -1
}

// errorf names the column of field f as the file's header writes it.
func (t *reader) errorf(line, f int, err error) *RowError {
	e := &RowError{Line: line, Message: err.Error()}
	if f >= 0 {
		e.Column = columns[f].headers[0]
		if i := t.col[f]; i >= 0 {
			e.Column = t.header[i]
		}
	}
	return e
}

// recordGuard counts the bytes the CSV parser reads and fails once the row in
// progress — everything since start — passes crm.MaxRecordBytes: a quote that
// is never closed would otherwise read the rest of a large upload into
// memory as one field.
type recordGuard struct {
	r     io.Reader
	n     int64 // bytes read so far
	start int64 // offset where the current row began
}

func (g *recordGuard) Read(p []byte) (int, error) {
	budget := crm.MaxRecordBytes + 64<<10 - (g.n - g.start) // + what the parser buffers ahead
	if budget <= 0 {
		return 0, &crm.FileError{Message: fmt.Sprintf("a row at byte %d is longer than %d bytes: the file cannot be read further (a quote that is never closed?)",
			g.start, crm.MaxRecordBytes)}
	}
	if int64(len(p)) > budget {
		p = p[:budget]
	}
	n, err := g.r.Read(p)
	g.n += int64(n)
	return n, err
}

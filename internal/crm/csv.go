package crm

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// table reads a CSV file with a header row, the way real CRM exports come:
// a UTF-8 BOM, CRLF or LF line ends, quoted fields holding the delimiter and
// newlines, rows shorter or longer than the header (empty trailing columns).
type table struct {
	r      *csv.Reader
	guard  *recordGuard
	header []string        // as written in the file
	index  map[string]int  // lower-cased header → column
	dups   map[string]bool // lower-cased headers that appear more than once
	rec    []string        // the current row
	line   int             // line of the current row's first character
}

// MaxRecordBytes caps one row of a CSV file or one element of a JSON list.
// Readers hold a record whole while they parse it, so without a cap a quote
// that is never closed (or a file without line breaks) would read the rest
// of a 1 GiB upload into memory as one field.
const MaxRecordBytes = 4 << 20

// recordGuard counts the bytes a parser reads and fails once the record in
// progress — everything since start — passes MaxRecordBytes.
type recordGuard struct {
	r     io.Reader
	n     int64 // bytes read so far
	start int64 // offset where the current record began
	what  string
}

func (g *recordGuard) Read(p []byte) (int, error) {
	budget := MaxRecordBytes + 64<<10 - (g.n - g.start) // + what a parser buffers ahead
	if budget <= 0 {
		return 0, &FileError{Message: fmt.Sprintf("a %s at byte %d is longer than %d bytes: the file cannot be read further (a quote that is never closed?)",
			g.what, g.start, MaxRecordBytes)}
	}
	if int64(len(p)) > budget {
		p = p[:budget] // parsers read in growing chunks; none may pass the cap
	}
	n, err := g.r.Read(p)
	g.n += int64(n)
	return n, err
}

// RowReader yields the rows of one upload, validated and normalised. Next
// returns the next row (an *Order or a *Contact) and its line; a *RowError
// for a row that was rejected (reading can go on); io.EOF at the end; any
// other error means the input cannot be read further.
type RowReader interface {
	Next() (any, int, error)
}

func newTable(r io.Reader, delim rune) (*table, error) {
	guard := &recordGuard{r: r, what: "row"}
	br := bufio.NewReaderSize(guard, 64<<10)
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.Comma = delim
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, &FileError{Message: "the file is empty: a header row with column names is required"}
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, &FileError{Message: fmt.Sprintf("the header row cannot be read: %v", pe.Err)}
		}
		return nil, fmt.Errorf("crm: read header: %w", err)
	}
	guard.start = cr.InputOffset()
	t := &table{r: cr, guard: guard, header: append([]string(nil), header...), index: map[string]int{}, dups: map[string]bool{}}
	for i, h := range t.header {
		if !utf8.ValidString(h) {
			return nil, &FileError{Message: "the header row is not valid UTF-8: files must be in UTF-8 (this looks like another encoding, such as Windows-1251)"}
		}
		h = strings.ToLower(strings.TrimSpace(h))
		t.header[i] = strings.TrimSpace(t.header[i])
		if h == "" {
			continue
		}
		if _, dup := t.index[h]; dup {
			t.dups[h] = true // an error only if the column is one a reader needs (column)
		}
		t.index[h] = i
	}
	if len(t.index) == 1 && delim != ';' && strings.Contains(header[0], ";") {
		return nil, &FileError{Message: fmt.Sprintf("the header has one column %q: the file looks ';'-separated (set delimiter_type=SEMICOLON)", header[0])}
	}
	if len(t.index) == 1 && delim == ';' && strings.Contains(header[0], ",") {
		return nil, &FileError{Message: fmt.Sprintf("the header has one column %q: the file looks ','-separated, but ';' was expected", header[0])}
	}
	return t, nil
}

// column finds a column by its name (case-insensitive): -1 when the file
// has none; a *FileError when it has two, since neither can be chosen.
func (t *table) column(name string) (int, error) {
	if t.dups[strings.ToLower(name)] {
		return -1, &FileError{Column: name, Message: "the column appears twice in the header"}
	}
	if i, ok := t.index[strings.ToLower(name)]; ok {
		return i, nil
	}
	return -1, nil
}

// next reads the next row. A row that cannot be parsed as CSV is a
// *RowError; reading goes on after it.
func (t *table) next() error {
	for {
		t.guard.start = t.r.InputOffset()
		rec, err := t.r.Read()
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrQuote) && pe.Line > pe.StartLine {
				// A quoted field that runs over line ends to its error has
				// swallowed the rows after it: skipping it would drop them
				// without a word.
				return &FileError{Message: fmt.Sprintf("line %d: a quoted field is not closed (it runs on to line %d); the rows after it cannot be read", pe.StartLine, pe.Line)}
			}
			if errors.As(err, &pe) {
				return &RowError{Line: pe.StartLine, Message: "malformed CSV: " + pe.Err.Error()}
			}
			if errors.Is(err, io.EOF) {
				return io.EOF
			}
			return fmt.Errorf("crm: read CSV: %w", err)
		}
		t.line, _ = t.r.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		t.rec = rec
		return nil
	}
}

// cell returns column i of the current row ("" when the row is shorter),
// checked to be UTF-8 text of sane length.
func (t *table) cell(i int) (string, *RowError) {
	if i < 0 || i >= len(t.rec) {
		return "", nil
	}
	v := t.rec[i]
	if err := checkText(v); err != nil {
		return "", t.errorf(i, "%v", err) // the row may be longer than the header
	}
	return v, nil
}

func (t *table) errorf(col int, format string, args ...any) *RowError {
	name := ""
	if col >= 0 && col < len(t.header) {
		name = t.header[col]
	}
	return &RowError{Line: t.line, Column: name, Message: fmt.Sprintf(format, args...)}
}

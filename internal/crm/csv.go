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
	header []string       // as written in the file
	index  map[string]int // lower-cased header → column
	rec    []string       // the current row
	line   int            // line of the current row's first character
}

// RowReader yields the rows of one upload, validated and normalised. Next
// returns the next row (an *Order or a *Contact) and its line; a *RowError
// for a row that was rejected (reading can go on); io.EOF at the end; any
// other error means the input cannot be read further.
type RowReader interface {
	Next() (any, int, error)
}

func newTable(r io.Reader, delim rune) (*table, error) {
	br := bufio.NewReaderSize(r, 64<<10)
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
	t := &table{r: cr, header: append([]string(nil), header...), index: map[string]int{}}
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
			return nil, &FileError{Column: t.header[i], Message: "the column appears twice in the header"}
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

// column finds a column by its name (case-insensitive), or -1.
func (t *table) column(name string) int {
	if i, ok := t.index[strings.ToLower(name)]; ok {
		return i
	}
	return -1
}

// next reads the next row. A row that cannot be parsed as CSV is a
// *RowError; reading goes on after it.
func (t *table) next() error {
	for {
		rec, err := t.r.Read()
		if err != nil {
			var pe *csv.ParseError
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

package crm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"time"
)

// A spool holds an upload's validated rows on disk between the two passes
// of an import: the first reads and checks the whole input (from a client or
// a feed URL, at its speed) without touching the database; the second
// applies the rows in one transaction. So a bad file, a cut-off download or a
// slow client never holds the write lock, and memory does not grow with the
// file's size.
//
// The format is private to one import: a record per row — a kind byte, the
// line, then the fields in a fixed order, strings and lists length-prefixed.

const (
	kindOrder   byte = 'o'
	kindContact byte = 'c'
)

type spoolWriter struct {
	f   *os.File
	w   *bufio.Writer
	buf []byte
	n   int
}

func newSpool(dir string) (*spoolWriter, error) {
	f, err := os.CreateTemp(dir, "throughline-import-*.spool")
	if err != nil {
		return nil, fmt.Errorf("crm: create spool file: %w", err)
	}
	return &spoolWriter{f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

func (s *spoolWriter) put(row any, line int) error {
	b := s.buf[:0]
	switch r := row.(type) {
	case *Order:
		b = append(b, kindOrder)
		b = binary.AppendUvarint(b, uint64(line))
		b = appendOrder(b, r)
	case *Contact:
		b = append(b, kindContact)
		b = binary.AppendUvarint(b, uint64(line))
		b = appendContact(b, r)
	default:
		return fmt.Errorf("crm: spool: unexpected row %T", row)
	}
	s.buf = b
	var size [binary.MaxVarintLen64]byte
	if _, err := s.w.Write(size[:binary.PutUvarint(size[:], uint64(len(b)))]); err != nil {
		return fmt.Errorf("crm: write spool: %w", err)
	}
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("crm: write spool: %w", err)
	}
	s.n++
	return nil
}

// reader flushes what was written and returns a reader from the start.
func (s *spoolWriter) reader() (*spoolReader, error) {
	if err := s.w.Flush(); err != nil {
		return nil, fmt.Errorf("crm: write spool: %w", err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("crm: rewind spool: %w", err)
	}
	return &spoolReader{r: bufio.NewReaderSize(s.f, 256<<10)}, nil
}

func (s *spoolWriter) remove() {
	s.f.Close()
	os.Remove(s.f.Name())
}

type spoolReader struct {
	r   *bufio.Reader
	buf []byte
}

// next returns the next row and its line, or io.EOF.
func (s *spoolReader) next() (any, int, error) {
	size, err := binary.ReadUvarint(s.r)
	if errors.Is(err, io.EOF) {
		return nil, 0, io.EOF
	}
	if err != nil {
		return nil, 0, fmt.Errorf("crm: read spool: %w", err)
	}
	if cap(s.buf) < int(size) {
		s.buf = make([]byte, size)
	}
	b := s.buf[:size]
	if _, err := io.ReadFull(s.r, b); err != nil {
		return nil, 0, fmt.Errorf("crm: read spool: %w", err)
	}
	d := decoder{b: b[1:]}
	line := int(d.uint())
	var row any
	switch b[0] {
	case kindOrder:
		row = d.order()
	case kindContact:
		row = d.contact()
	default:
		return nil, 0, fmt.Errorf("crm: spool: unknown record kind %q", b[0])
	}
	if d.err != nil {
		return nil, 0, fmt.Errorf("crm: spool: %w", d.err)
	}
	return row, line, nil
}

func appendOrder(b []byte, o *Order) []byte {
	b = binary.AppendUvarint(b, uint64(o.Has))
	b = appendString(b, o.ID)
	b = appendString(b, o.ContactID)
	b = appendTime(b, o.CreatedAt)
	b = appendTime(b, o.UpdatedAt)
	b = appendTime(b, o.FinishedAt)
	b = appendString(b, o.Status)
	b = binary.AppendVarint(b, o.Revenue)
	b = binary.AppendVarint(b, o.Cost)
	b = binary.AppendVarint(b, o.Margin)
	b = binary.AppendVarint(b, o.Items)
	b = appendString(b, o.Currency)
	b = appendString(b, o.Comment)
	b = appendString(b, o.Type)
	b = appendString(b, o.SID)
	b = appendString(b, o.CallerPhone)
	for _, l := range [][]string{o.ClientIDs, o.Phones, o.Emails, o.PhonesMD5, o.EmailsMD5} {
		b = appendStrings(b, l)
	}
	b = binary.AppendUvarint(b, uint64(len(o.Products)))
	for _, id := range sortedKeys(o.Products) {
		b = appendString(b, id)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(o.Products[id]))
	}
	b = binary.AppendUvarint(b, uint64(len(o.Goals)))
	for _, g := range o.Goals {
		b = appendString(b, g.ID)
		b = binary.AppendVarint(b, g.Price)
		b = appendBool(b, g.HasPrice)
	}
	b = appendAttributes(b, o.Attributes)
	return appendBool(b, o.IDGenerated)
}

func (d *decoder) order() *Order {
	o := &Order{Has: Field(d.uint())}
	o.ID = d.string()
	o.ContactID = d.string()
	o.CreatedAt = d.time()
	o.UpdatedAt = d.time()
	o.FinishedAt = d.time()
	o.Status = d.string()
	o.Revenue = d.int()
	o.Cost = d.int()
	o.Margin = d.int()
	o.Items = d.int()
	o.Currency = d.string()
	o.Comment = d.string()
	o.Type = d.string()
	o.SID = d.string()
	o.CallerPhone = d.string()
	o.ClientIDs = d.strings()
	o.Phones = d.strings()
	o.Emails = d.strings()
	o.PhonesMD5 = d.strings()
	o.EmailsMD5 = d.strings()
	if n := d.uint(); n > 0 && d.err == nil {
		o.Products = make(map[string]float64, min(n, 1024))
		for range n {
			id := d.string()
			o.Products[id] = math.Float64frombits(d.fixed64())
			if d.err != nil {
				break
			}
		}
	}
	if n := d.uint(); n > 0 && d.err == nil {
		for range n {
			g := Goal{ID: d.string(), Price: d.int(), HasPrice: d.bool()}
			if d.err != nil {
				break
			}
			o.Goals = append(o.Goals, g)
		}
	}
	o.Attributes = d.attributes()
	o.IDGenerated = d.bool()
	return o
}

func appendContact(b []byte, c *Contact) []byte {
	b = binary.AppendUvarint(b, uint64(c.Has))
	b = appendString(b, c.UniqID)
	b = appendString(b, c.Name)
	b = appendTime(b, c.CreatedAt)
	b = appendTime(b, c.UpdatedAt)
	for _, l := range [][]string{c.ClientIDs, c.UserIDs, c.Phones, c.Emails, c.PhonesMD5, c.EmailsMD5} {
		b = appendStrings(b, l)
	}
	b = appendString(b, c.BirthDate)
	b = appendString(b, c.CompanyID)
	b = appendString(b, c.Comment)
	return appendAttributes(b, c.Attributes)
}

func (d *decoder) contact() *Contact {
	c := &Contact{Has: Field(d.uint())}
	c.UniqID = d.string()
	c.Name = d.string()
	c.CreatedAt = d.time()
	c.UpdatedAt = d.time()
	c.ClientIDs = d.strings()
	c.UserIDs = d.strings()
	c.Phones = d.strings()
	c.Emails = d.strings()
	c.PhonesMD5 = d.strings()
	c.EmailsMD5 = d.strings()
	c.BirthDate = d.string()
	c.CompanyID = d.string()
	c.Comment = d.string()
	c.Attributes = d.attributes()
	return c
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendStrings(b []byte, l []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(l)))
	for _, s := range l {
		b = appendString(b, s)
	}
	return b
}

// appendTime writes microseconds since the epoch; 0 is the zero time, so
// the epoch itself (a valid date: "1970-01-01 03:00" in Moscow) is written
// as math.MinInt64.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	us := t.UnixMicro()
	if us == 0 {
		us = math.MinInt64
	}
	return binary.AppendVarint(b, us)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendAttributes(b []byte, a map[string][]string) []byte {
	b = binary.AppendUvarint(b, uint64(len(a)))
	for _, k := range sortedKeys(a) {
		b = appendString(b, k)
		b = appendStrings(b, a[k])
	}
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// decoder reads what the append functions wrote; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("record cut short")

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) fixed64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) bool() bool {
	if len(d.b) < 1 {
		d.fail()
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

func (d *decoder) string() string {
	n := d.uint()
	if uint64(len(d.b)) < n {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) strings() []string {
	n := d.uint()
	if n == 0 || uint64(len(d.b)) < n {
		if n > 0 {
			d.fail()
		}
		return nil
	}
	out := make([]string, 0, n)
	for range n {
		out = append(out, d.string())
	}
	return out
}

func (d *decoder) time() time.Time {
	switch us := d.int(); us {
	case 0:
		return time.Time{}
	case math.MinInt64:
		return time.UnixMicro(0).UTC()
	default:
		return time.UnixMicro(us).UTC()
	}
}

func (d *decoder) attributes() map[string][]string {
	n := d.uint()
	if n == 0 || uint64(len(d.b)) < n {
		if n > 0 {
			d.fail()
		}
		return nil
	}
	m := make(map[string][]string, n)
	for range n {
		k := d.string()
		m[k] = d.strings()
	}
	return m
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errShort
	}
	d.b = nil
}

package crm

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/throughline/throughline/internal/normalize"
)

// The K50:Tracker CRM feed (shared/seeds/000): a ';'-separated UTF-8 CSV
// with a header row, one order per row.
//
//	date;orderId;callerPhone;sid;uuid;amount;margin;revenue;comment;type
//	2024-03-01 12:00:00;A-1001;79995551111;;;2;1500,00;4990,00;;offline
//
// date, orderId, callerPhone, sid and uuid must be columns; date and orderId
// must have values. date is local time in the counter's time zone. type is
// online or offline, derived when empty: an order with sid or uuid is online.

// K50Columns are the feed's columns: the required ones first.
var K50Columns = []string{"date", "orderId", "callerPhone", "sid", "uuid", "amount", "margin", "revenue", "comment", "type"}

const k50Required = 5

// K50Reader reads a K50 feed.
type K50Reader struct {
	t   *table
	loc *time.Location
	col [10]int // K50Columns → column index, -1 when absent
	has Field
}

// NewK50Reader reads the header of a K50 feed. mapping renames columns: it
// maps a K50 column name (orderId) to the header the feed uses instead
// ("Номер заказа"); unmapped columns are found by their K50 names,
// case-insensitively. Columns the format does not know are ignored. loc is
// the counter's time zone, in which the feed's dates are read.
func NewK50Reader(r io.Reader, loc *time.Location, mapping map[string]string) (*K50Reader, error) {
	for k := range mapping {
		if !slices.ContainsFunc(K50Columns, func(c string) bool { return strings.EqualFold(c, k) }) {
			return nil, &FileError{Column: k, Message: fmt.Sprintf("the column mapping names %q, which is not a K50 feed column (%s)", k, strings.Join(K50Columns, ", "))}
		}
	}
	t, err := newTable(r, ';')
	if err != nil {
		return nil, err
	}
	k := &K50Reader{t: t, loc: loc}
	var missing []string
	for i, name := range K50Columns {
		header := name
		for from, to := range mapping {
			if strings.EqualFold(from, name) {
				header = to
			}
		}
		if k.col[i], err = t.column(header); err != nil {
			return nil, err
		}
		if k.col[i] < 0 && i < k50Required {
			missing = append(missing, header)
		}
	}
	if len(missing) > 0 {
		return nil, &FileError{Column: missing[0], Message: fmt.Sprintf("required column %s is missing: a K50 feed needs the columns %s (found: %s)",
			strings.Join(missing, ", "), strings.Join(K50Columns[:k50Required], ", "), strings.Join(t.header, ", "))}
	}
	// The feed is a whole description of each order (merge mode SAVE), so
	// every K50 field counts as given — empty when its column is absent.
	k.has = FCallerPhone | FSID | FClientIDs | FItems | FMargin | FRevenue | FComment | FType
	return k, nil
}

// Next returns the next order.
func (k *K50Reader) Next() (any, int, error) {
	if err := k.t.next(); err != nil {
		return nil, 0, err
	}
	o, err := k.order()
	if err != nil {
		return nil, k.t.line, err
	}
	return o, k.t.line, nil
}

func (k *K50Reader) order() (*Order, error) {
	var cell [10]string
	for i, c := range k.col {
		v, err := k.t.cell(c)
		if err != nil {
			return nil, err
		}
		cell[i] = strings.TrimSpace(v)
	}
	o := &Order{Has: k.has, ID: cell[1]}
	if o.ID == "" {
		return nil, k.t.errorf(k.col[1], "the order id is empty")
	}
	if len(o.ID) > 255 {
		return nil, k.t.errorf(k.col[1], "the order id is longer than 255 characters")
	}
	var err error
	if o.CreatedAt, _, err = ParseTime(cell[0], k.loc); err != nil {
		return nil, k.t.errorf(k.col[0], "%v", err)
	}
	if cell[2] != "" {
		if o.CallerPhone, err = normalize.Phone(cell[2], ""); err != nil {
			return nil, k.t.errorf(k.col[2], "%q is not a phone number (expected 7XXXXXXXXXX)", cell[2])
		}
	}
	o.SID = strings.ToLower(cell[3])
	if cell[4] != "" {
		o.ClientIDs = []string{strings.ToLower(cell[4])}
	}
	if cell[5] != "" {
		if o.Items, err = ParseCount(cell[5]); err != nil {
			return nil, k.t.errorf(k.col[5], "%v", err)
		}
	} else {
		o.Has &^= FItems
	}
	if cell[6] != "" {
		if o.Margin, err = ParseMoney(cell[6]); err != nil {
			return nil, k.t.errorf(k.col[6], "%v", err)
		}
	} else {
		o.Has &^= FMargin
	}
	if cell[7] != "" {
		if o.Revenue, err = ParseMoney(cell[7]); err != nil {
			return nil, k.t.errorf(k.col[7], "%v", err)
		}
		if o.Revenue < 0 {
			return nil, k.t.errorf(k.col[7], "%q is negative", cell[7])
		}
	} else {
		o.Has &^= FRevenue
	}
	o.Comment = cell[8]
	switch t := strings.ToLower(cell[9]); t {
	case "online", "offline":
		o.Type = t
	case "":
		o.Has &^= FType
	default:
		return nil, k.t.errorf(k.col[9], "%q is not online or offline", cell[9])
	}
	return o, nil
}

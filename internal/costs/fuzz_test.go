package costs

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/throughline/throughline/internal/crm"
)

// FuzzCostsCSV feeds the cost file reader arbitrary bytes: it must never
// panic, every error must be a row error (reading goes on) or end the file,
// and every row it accepts must be valid as stored.
//
//	go test -run XXX -fuzz FuzzCostsCSV -fuzztime 60s ./internal/costs
func FuzzCostsCSV(f *testing.F) {
	for _, s := range []string{
		realistic,
		"date,source,medium,campaign,cost\n2024-03-01,yandex,cpc,c,1\n",
		"date\tutm_source\tutm_medium\tutm_campaign\tcost\tclicks\timpressions\tcurrency\n01.03.24\tY\tCPC\tc\t1 234,5\t3,00\t10\tusd\n",
		"day;source;medium;campaign;content;term;cost\n2024-03-01T10:00:00+03:00;vk;;\"a;\"\"b\";x;y;0\n\n",
		"date,source,medium,campaign,cost\n2024-02-30,y,cpc,c,1\n2024-03-01,,cpc,c,1\n2024-03-01,y,cpc,c,-1\n2024-03-01,y,cpc,\"c\"x\",1\n",
		"date,source,medium,campaign,cost\n2024-03-01,y,cpc,\"c,1\n",
		"date,source,utm_source,medium,campaign,cost\n",
		"\xef\xbb\xbfDate;Source;Medium;Campaign;Cost\r\n2024-03-01; İstanbul ;CPC;c;1\r\n",
		"date,source,medium,campaign,cost\n2024-03-01,\x00,cpc,c,1\n2024-03-01,\xff,cpc,c,1\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := newReader(strings.NewReader(string(data)))
		if err != nil {
			var fe *crm.FileError
			if !errors.As(err, &fe) {
				t.Fatalf("newReader: %v is not a *crm.FileError", err)
			}
			return
		}
		last := 1
		for {
			row, line, err := r.next()
			if errors.Is(err, io.EOF) {
				return
			}
			var re *RowError
			if errors.As(err, &re) {
				if re.Line <= last || re.Message == "" {
					t.Fatalf("row error %+v after line %d", re, last)
				}
				last = re.Line
				continue
			}
			if err != nil {
				var fe *crm.FileError
				if !errors.As(err, &fe) {
					t.Fatalf("next: %v is neither a row error nor a *crm.FileError", err)
				}
				return
			}
			if line <= last {
				t.Fatalf("row at line %d after line %d", line, last)
			}
			last = line
			checkRow(t, row)
		}
	})
}

// checkRow fails unless r is a row as it may be stored.
func checkRow(t *testing.T, r Row) {
	t.Helper()
	if d, err := time.Parse(time.DateOnly, r.Day); err != nil || d.Format(time.DateOnly) != r.Day || d.Year() < 1970 {
		t.Fatalf("day %q in %+v", r.Day, r)
	}
	for _, k := range []struct {
		name, v string
		lower   bool
	}{{"source", r.Source, true}, {"medium", r.Medium, true}, {"campaign", r.Campaign, false}, {"content", r.Content, false}, {"term", r.Term, false}} {
		if !utf8.ValidString(k.v) || strings.IndexByte(k.v, 0) >= 0 || len(k.v) > MaxKeyBytes ||
			k.v != strings.TrimSpace(k.v) || (k.lower && k.v != strings.ToLower(k.v)) {
			t.Fatalf("%s %q in %+v", k.name, k.v, r)
		}
	}
	if r.Source == "" || r.Cost < 0 || r.Cost >= 1e17 || r.Clicks < 0 || r.Impressions < 0 || !isCurrency(r.Currency) {
		t.Fatalf("accepted %+v", r)
	}
	again := r
	if field, err := again.normalize(); err != nil || again != r {
		t.Fatalf("normalising %+v again: %+v, %s %v", r, again, field, err)
	}
}

package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/throughline/throughline/internal/accounts"
	"github.com/throughline/throughline/internal/browsertest"
	"github.com/throughline/throughline/internal/demo"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// cabinetFixture is the whole server with the demo's last week in a counter
// and a person who may see it: the pages are compared with what the JSON
// API answers for the same question.
type cabinetFixture struct {
	*fixture
	demo demo.Result
	// viewer signs in with password; the counter's API token is demo.Token.
	viewer accounts.User
}

const cabinetPassword = "correct horse battery"

func newCabinetFixture(t *testing.T, db *store.DB) *cabinetFixture {
	t.Helper()
	f := &cabinetFixture{fixture: newFixture(t, db)}
	var err error
	if f.demo, err = demo.Generate(context.Background(), db, demo.Options{Seed: 7, Days: 7}); err != nil {
		t.Fatal(err)
	}
	if f.viewer, err = accounts.CreateUser(context.Background(), db, accounts.NewUser{Email: "viewer@shop.test", Password: cabinetPassword}); err != nil {
		t.Fatal(err)
	}
	if err := accounts.Grant(context.Background(), db, f.demo.CounterID, f.viewer.ID, accounts.Viewer); err != nil {
		t.Fatal(err)
	}
	return f
}

// signIn opens Chromium and signs in through the form.
func (f *cabinetFixture) signIn(t *testing.T) context.Context {
	t.Helper()
	b := browsertest.New(t, browsertest.Options{})
	if err := chromedp.Do(b,
		chromedp.Navigate(f.url+"/signin"),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), f.viewer.Email),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), cabinetPassword),
		chromedp.Submit(chromedp.CSS(`input[name=password]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.counters`)),
	); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	return b
}

// apiReport reads the end-to-end report through the JSON API.
func (f *cabinetFixture) apiReport(t *testing.T, query string) map[string]any {
	t.Helper()
	r := f.do(t, "GET", fmt.Sprintf("/api/v1/counters/%d/reports/end-to-end?%s", f.demo.CounterID, query), f.demo.Token, nil)
	if r.status != 200 {
		t.Fatalf("report API: %d %s", r.status, r.body)
	}
	var rep map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// pageValue reads a number the page shows from its data-value attribute.
func pageValue(t *testing.T, b context.Context, selector string) float64 {
	t.Helper()
	v, err := chromedp.Run(b, chromedp.AttributeValue(chromedp.CSS(selector), "data-value"))
	if err != nil {
		t.Fatalf("%s: %v", selector, err)
	}
	f, err := strconv.ParseFloat(v.Value, 64)
	if !v.Exists || err != nil {
		t.Fatalf("%s: data-value %q", selector, v.Value)
	}
	return f
}

func jsonNumber(t *testing.T, m map[string]any, key string) float64 {
	t.Helper()
	n, ok := m[key].(json.Number)
	if !ok {
		t.Fatalf("%s: %v is not a number", key, m[key])
	}
	f, _ := n.Float64()
	return f
}

func TestCabinetDashboardAgreesWithTheAPI(t *testing.T) {
	browsertest.Path(t)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newCabinetFixture(t, db)
		b := f.signIn(t)
		reqs := browsertest.Watch(b)
		period := "from=" + f.demo.From + "&to=" + f.demo.To
		if err := chromedp.Do(b, chromedp.Navigate(fmt.Sprintf("%s/c/%d/?%s", f.url, f.demo.CounterID, period)),
			chromedp.WaitVisible(chromedp.CSS(`.cards`))); err != nil {
			t.Fatal(err)
		}
		totals := f.apiReport(t, period+"&group=traffic_type")["totals"].(map[string]any)
		for metric, key := range map[string]string{"sessions": "sessions", "requests": "requests", "orders": "orders",
			"revenue": "revenue", "cost": "cost"} {
			page := pageValue(t, b, `[data-metric=`+metric+`] .value`)
			api := jsonNumber(t, totals, key)
			if math.Abs(page-api) > 0.005 {
				t.Errorf("%s: the dashboard shows %v, the API answers %v", metric, page, api)
			}
		}
		if jsonNumber(t, totals, "sessions") == 0 {
			t.Fatal("the demo's week has no sessions: the comparison proves nothing")
		}
		// The page weighs under 200 KB with its stylesheet and script, and
		// asks no other origin for anything.
		weight, err := chromedp.Run(b, chromedp.Evaluate[float64](`performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
			.reduce(function (n, e) { return n + (e.decodedBodySize || 0); }, 0)`))
		if err != nil {
			t.Fatal(err)
		}
		if weight == 0 || weight > 200_000 {
			t.Errorf("the dashboard weighs %v bytes (HTML + CSS + JS, uncompressed), want under 200 KB", weight)
		}
		t.Logf("dashboard weight: %.0f bytes", weight)
		time.Sleep(200 * time.Millisecond) // let the last network events arrive
		if other := reqs.Elsewhere(f.url); len(other) > 0 {
			t.Errorf("the dashboard asked other origins: %v", other)
		}
	})
}

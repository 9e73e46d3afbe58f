package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/calltracking"
	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
	"github.com/throughline/throughline/internal/telephony"
)

// A shop page with its phone in the markup: after the tracker runs it shows
// a pool number in the page's own format, the tel: link dials it, and a call
// to it at that moment — reported by webhook — is matched to this browser's
// session.
func TestBrowserShowsATrackedNumberAndMatchesTheCall(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixtureWith(t, db, Config{Heartbeat: time.Second})
		ctx := context.Background()
		shop, tok, err := counter.Create(ctx, db, counter.NewCounter{Name: "Sofas", Domain: "shop.test"})
		if err != nil {
			t.Fatal(err)
		}
		phone, sel := "8 (800) 555-35-35", ".header-phone"
		if _, err := counter.Update(ctx, db, shop.ID, counter.Patch{DNIPhone: &phone, DNISelector: &sel}); err != nil {
			t.Fatal(err)
		}
		name, rule := "Paid", calltracking.Rule{Medium: "cpc"}
		pool, err := calltracking.CreatePool(ctx, db, shop.ID, calltracking.PoolInput{Name: &name, Rule: &rule})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"74951110001", "74951110002"} {
			if _, err := calltracking.SaveNumber(ctx, db, shop.ID, calltracking.NumberInput{Number: &n, PoolID: &pool.ID}); err != nil {
				t.Fatal(err)
			}
		}
		hook, err := calltracking.CreateHook(ctx, db, testBox, shop.ID, shop.Timezone, calltracking.HookInput{Provider: "generic"}, telephony.Providers)
		if err != nil {
			t.Fatal(err)
		}

		mux := http.NewServeMux()
		mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `<!doctype html>
<html><head><title>Sofas</title>
<script async src="%s/t.js" data-counter="%d"></script>
</head><body>
<header>Call us: <span class="header-phone">+7 800 555 3535</span></header>
<p>Delivery questions: <a id="tel" href="tel:88005553535">8 (800) 555-35-35</a></p>
<p>Other office: <span id="other">+7 (812) 000-00-00</span></p>
<div class="header-phone" id="hours">Open 09.00 - 18.00, 21.11.2025</div>
</body></html>`, f.url, shop.ID)
		})
		ts := httptest.NewServer(mux)
		defer ts.Close()
		_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
		b := newBrowser(t)

		ids(t, b, "http://www.shop.test:"+port+"/?utm_source=yandex&utm_medium=cpc&utm_campaign=sofas")
		type page struct {
			Header, Link, Href, Other string
			Phones                    []struct {
				Number          string `json:"number"`
				NumberFormatted string `json:"number_formatted"`
			}
			SID string
		}
		var p page
		eventually(t, "the page shows a tracked number", func() bool {
			p = eval[page](t, b, `({header: document.querySelector('.header-phone').textContent,
				link: document.getElementById('tel').textContent, href: document.getElementById('tel').getAttribute('href'),
				other: document.getElementById('other').textContent,
				phones: throughline.getResultData().phones, sid: throughline.getResultData().sid})`)
			return len(p.Phones) == 1
		})
		n := p.Phones[0].Number
		if n != "74951110001" && n != "74951110002" {
			t.Fatalf("shown number %q", n)
		}
		national := n[1:4] + " " + n[4:7] + " " + n[7:]
		if p.Header != "+7 "+national[:3]+" "+n[4:7]+" "+n[7:] || p.Link != fmt.Sprintf("8 (%s) %s-%s-%s", n[1:4], n[4:7], n[7:9], n[9:]) ||
			p.Href != "tel:+"+n || p.Other != "+7 (812) 000-00-00" {
			t.Errorf("page after insertion: %+v", p)
		}

		// The customer calls the number now; the PBX reports it.
		body := fmt.Sprintf(`{"call_id": "b-1", "caller": "79161234567", "tracked_number": %q, "started_at": %q, "duration": 30, "answered": true}`,
			n, time.Now().UTC().Format(time.RFC3339))
		if r := f.do(t, "POST", hook.Path, "", strings.NewReader(body), "Content-Type", "application/json"); r.status != 200 {
			t.Fatalf("webhook: %d %s", r.status, r.body)
		}
		r := f.do(t, "GET", fmt.Sprintf("/api/v1/counters/%d/calls", shop.ID), tok, nil)
		if !strings.Contains(string(r.body), `"type":"lease"`) || !strings.Contains(string(r.body), `"sid":"`+p.SID+`"`) ||
			!strings.Contains(string(r.body), `"campaign":"sofas"`) {
			t.Errorf("the call was not matched to the browser's session %s: %s", p.SID, r.body)
		}

		// Opening hours and dates in the selector's elements are not phones.
		if h := eval[string](t, b, `document.getElementById('hours').textContent`); h != "Open 09.00 - 18.00, 21.11.2025" {
			t.Errorf("non-phone text changed: %q", h)
		}

		// The lease ends (a tab asleep past the hold) and the number goes
		// out of service: the page's next heartbeat gets 410, it asks again
		// and shows the other number — written over the page's own text,
		// not over the old tracked number.
		var leaseID string
		if err := db.Reader().QueryRow(`SELECT id FROM number_leases WHERE sid = $1`, p.SID).Scan(&leaseID); err != nil {
			t.Fatal(err)
		}
		// (The call above already ended it: generic events are final.)
		if err := calltracking.Release(ctx, db, shop.ID, leaseID, p.SID, "test", time.Now()); err != nil && !errors.Is(err, calltracking.ErrGone) {
			t.Fatal(err)
		}
		off := false
		if _, err := calltracking.SaveNumber(ctx, db, shop.ID, calltracking.NumberInput{Number: &n, Active: &off}); err != nil {
			t.Fatal(err)
		}
		other := "74951110001"
		if n == other {
			other = "74951110002"
		}
		eventually(t, "the page shows the new number", func() bool {
			p = eval[page](t, b, `({header: document.querySelector('.header-phone').textContent,
				link: document.getElementById('tel').textContent, href: document.getElementById('tel').getAttribute('href'),
				other: document.getElementById('other').textContent,
				phones: throughline.getResultData().phones, sid: throughline.getResultData().sid})`)
			return len(p.Phones) == 1 && p.Phones[0].Number == other
		})
		if p.Link != fmt.Sprintf("8 (%s) %s-%s-%s", other[1:4], other[4:7], other[7:9], other[9:]) || p.Href != "tel:+"+other ||
			!strings.HasSuffix(p.Header, other[7:]) {
			t.Errorf("page after the new lease: %+v", p)
		}

		// sendLead from the page carries the session.
		if ok := eval[bool](t, b, `new Promise(function (resolve) { throughline.sendLead({type: 'form', name: 'Ann', phone: '+7 999 555-11-11'}, resolve) })`); !ok {
			t.Fatal("sendLead failed")
		}
		r = f.do(t, "GET", fmt.Sprintf("/api/v1/counters/%d/leads", shop.ID), tok, nil)
		if !strings.Contains(string(r.body), `"sid":"`+p.SID+`"`) || !strings.Contains(string(r.body), `"phone":"79995551111"`) {
			t.Errorf("lead: %s", r.body)
		}
	})
}

package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// chromiumPath finds the browser for the browser tests. CI names it in
// THROUGHLINE_TEST_BROWSER, so a missing browser fails there; a developer
// without Chromium skips these tests.
func chromiumPath(t *testing.T) string {
	if p := os.Getenv("THROUGHLINE_TEST_BROWSER"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("THROUGHLINE_TEST_BROWSER=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium: install Debian's chromium or set THROUGHLINE_TEST_BROWSER")
	return ""
}

// shopSite is a shop's web site with the tracker installed. The browser
// reaches it as www.shop.test (mapped to 127.0.0.1), a different site from
// the collector, as in production. Forms posted to /order are recorded.
type shopSite struct {
	url    string // http://www.shop.test:PORT
	orders chan url.Values
}

func newShopSite(t *testing.T, collectorURL string, counterID int64) *shopSite {
	t.Helper()
	s := &shopSite{orders: make(chan url.Values, 10)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /order", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		s.orders <- r.PostForm
		fmt.Fprint(w, "<!doctype html><title>Thank you</title>")
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html>
<html><head><title>Boots shop</title>
<script async src="%s/t.js" data-counter="%d"></script>
</head><body>
<h1>Boots</h1>
<form id="order" action="/order" method="post">
  <input name="phone" value="+7 999 555-11-11"><button>Order</button>
</form>
</body></html>`, collectorURL, counterID)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	s.url = "http://www.shop.test:" + port
	return s
}

// newBrowser starts a visitor's browser: headless Chromium with an ordinary
// desktop Chrome's User-Agent, as a headless one is counted as a robot.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	return newBrowserAs(t, browser)
}

// newBrowserAs starts headless Chromium sending userAgent; "" keeps its own.
func newBrowserAs(t *testing.T, userAgent string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("host-resolver-rules", "MAP *.shop.test 127.0.0.1, MAP shop.test 127.0.0.1"),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-gpu", true),
	)
	if userAgent != "" {
		opts = append(opts, chromedp.UserAgent(userAgent))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

type resultData struct {
	SID  string `json:"sid"`
	UUID string `json:"uuid"`
}

// awaitIDs waits for the tracker on the current page to know its ids, and
// returns throughline.getResultData().
const awaitIDs = `new Promise(function (resolve) {
  (function wait() {
    if (window.throughline && window.throughline.ready) throughline.ready(resolve);
    else setTimeout(wait, 20);
  })();
})`

// ids loads url (or reloads the page when url is "") and returns the
// tracker's ids once it knows them.
func ids(t *testing.T, b context.Context, url string) resultData {
	t.Helper()
	load := chromedp.Reload()
	if url != "" {
		load = chromedp.Navigate(url)
	}
	if err := chromedp.Do(b, load); err != nil {
		t.Fatal(err)
	}
	d, err := chromedp.Run(b, chromedp.Evaluate[resultData](awaitIDs, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func eval[T any](t *testing.T, b context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(b, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%.60s: %v", expr, err)
	}
	return v
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (f *fixture) queryInt(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := f.db.Reader().QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestBrowserTracksVisits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		shop, _, err := counter.Create(context.Background(), db, counter.NewCounter{Name: "Boots", Domain: "shop.test"})
		if err != nil {
			t.Fatal(err)
		}
		site := newShopSite(t, f.url, shop.ID)
		b := newBrowser(t)

		// First visit from a Google ad.
		landing := site.url + "/?utm_source=google&utm_medium=cpc&utm_campaign=boots&gclid=abc"
		first := ids(t, b, landing)
		if len(first.SID) != 36 || len(first.UUID) != 36 {
			t.Fatalf("getResultData() = %+v", first)
		}
		var storedUUID, traffic string
		if err := db.Reader().QueryRowContext(context.Background(),
			`SELECT uuid, traffic_type FROM sessions WHERE counter_id = $1 AND sid = $2`, shop.ID, first.SID).Scan(&storedUUID, &traffic); err != nil {
			t.Fatalf("the session getResultData() names is not stored: %v", err)
		}
		if storedUUID != first.UUID || traffic != "ad" {
			t.Errorf("stored session: uuid %s (page says %s), traffic %s", storedUUID, first.UUID, traffic)
		}
		if clientID := eval[string](t, b, `throughline.getClientID()`); clientID != first.UUID {
			t.Errorf("getClientID() = %q", clientID)
		}

		// The form carries the ids; so does a form added later; and they
		// reach the site's server when the form is posted.
		inForm := eval[resultData](t, b, `({sid: document.querySelector('#order input[name=throughline_sid]').value,
			uuid: document.querySelector('#order input[name=throughline_uuid]').value})`)
		if inForm != first {
			t.Errorf("hidden inputs = %+v, want %+v", inForm, first)
		}
		late := eval[string](t, b, `new Promise(function (resolve) {
			  var f = document.createElement('form');
			  f.innerHTML = '<input name="email">';
			  document.body.appendChild(f);
			  (function wait() {
			    var i = f.querySelector('input[name=throughline_sid]');
			    if (i && i.value) resolve(i.value); else setTimeout(wait, 20);
			  })();
			})`)
		if late != first.SID {
			t.Errorf("form added later: throughline_sid = %q", late)
		}
		if err := chromedp.Do(b, chromedp.Submit(chromedp.CSS(`#order button`))); err != nil {
			t.Fatal(err)
		}
		select {
		case form := <-site.orders:
			if form.Get("throughline_sid") != first.SID || form.Get("throughline_uuid") != first.UUID || form.Get("phone") == "" {
				t.Errorf("posted order = %v, want the ids %+v", form, first)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the order form was not posted")
		}

		// Back on the landing page and reloading it: the same session.
		if again := ids(t, b, landing); again != first {
			t.Errorf("back on the landing: %+v, want %+v", again, first)
		}
		if again := ids(t, b, ""); again != first {
			t.Errorf("reload: %+v, want %+v", again, first)
		}

		// A single-page app's navigation and a custom event are hits of the session.
		eval[chromedp.Void](t, b, `history.pushState({}, '', '/catalog?page=2'); throughline.event('callback_click', {button: 'header'})`)
		eventually(t, "the SPA pageview and the event are stored", func() bool {
			return f.queryInt(t, `SELECT count(*) FROM hits WHERE counter_id = $1 AND sid = $2 AND (url LIKE '%/catalog?page=2' OR name = 'callback_click')`, shop.ID, first.SID) == 2
		})

		// A visit from a new ad: a new session of the same visitor.
		second := ids(t, b, site.url+"/boots?utm_source=yandex&utm_medium=cpc&utm_campaign=winter&yclid=777")
		if second.UUID != first.UUID || second.SID == first.SID || len(second.SID) != 36 {
			t.Errorf("new UTM tags: %+v after %+v; want a new sid and the same uuid", second, first)
		}
		if n := f.queryInt(t, `SELECT count(*) FROM sessions WHERE counter_id = $1 AND uuid = $2`, shop.ID, first.UUID); n != 2 {
			t.Errorf("visitor has %d sessions, want 2", n)
		}
		if n := f.queryInt(t, `SELECT count(*) FROM hits WHERE counter_id = $1 AND sid = $2 AND type = 'pageview'`, shop.ID, first.SID); n < 4 {
			t.Errorf("first session has %d pageviews; want the landing, the thank-you page, the reloads and the SPA page", n)
		}
		if cookies := eval[string](t, b, `document.cookie`); !strings.Contains(cookies, "_tl_uuid="+first.UUID) || !strings.Contains(cookies, "_tl_sid="+second.SID) {
			t.Errorf("cookies = %q", cookies)
		}
	})
}

// A site owner who tries the tracker in a headless browser learns why no
// visit shows up: headless browsers are robots, counted but not stored, and
// t.js says so — once a page, in the console, naming the reason.
func TestBrowserHeadlessIsToldItIsARobot(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	f := newFixture(t, db)
	shop, _, err := counter.Create(context.Background(), db, counter.NewCounter{Name: "Boots", Domain: "shop.test"})
	if err != nil {
		t.Fatal(err)
	}
	site := newShopSite(t, f.url, shop.ID)
	b := newBrowserAs(t, "") // headless Chromium's own User-Agent: HeadlessChrome/…
	var mu sync.Mutex
	var warnings []string
	err = chromedp.Listen(b, func(ev any) {
		e, ok := ev.(*cdpruntime.EventConsoleAPICalled)
		if !ok || e.Type != cdpruntime.ConsoleAPICalledTypeWarning {
			return
		}
		var text []string
		for _, arg := range e.Args {
			var s string
			if json.Unmarshal(arg.Value, &s) == nil {
				text = append(text, s)
			}
		}
		mu.Lock()
		warnings = append(warnings, strings.Join(text, " "))
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	ids(t, b, site.url+"/")
	// Two more hits from the page: an event, and a pageview of a
	// single-page app.
	eval[any](t, b, `throughline.event('add_to_cart'); history.pushState({}, '', '/cart'); null`)
	eventually(t, "the three hits are counted as a robot's", func() bool {
		return f.queryInt(t, `SELECT coalesce(sum(hits), 0) FROM bot_hits WHERE counter_id = $1`, shop.ID) == 3
	})
	time.Sleep(300 * time.Millisecond) // for any later warning to reach us
	mu.Lock()
	defer mu.Unlock()
	if len(warnings) != 1 || !strings.Contains(warnings[0], "Headless Chrome") {
		t.Errorf("console warnings: %q; want exactly one, naming Headless Chrome", warnings)
	}
	if n := f.queryInt(t, `SELECT count(*) FROM sessions WHERE counter_id = $1`, shop.ID); n != 0 {
		t.Errorf("%d sessions stored for a headless browser", n)
	}
}

package web

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/throughline/throughline/internal/browsertest"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// shots is where the browser tests save their screenshots (their paths are
// logged with -v, and they stay for a reviewer to look at):
// THROUGHLINE_SCREENSHOTS, or a new directory under the system's temporary
// one.
func shots(t *testing.T) string {
	shotsDir.Do(func() {
		if d := os.Getenv("THROUGHLINE_SCREENSHOTS"); d != "" {
			shotsDir.path, shotsDir.err = d, os.MkdirAll(d, 0o755)
			return
		}
		shotsDir.path, shotsDir.err = os.MkdirTemp("", "throughline-screenshots-")
	})
	if shotsDir.err != nil {
		t.Fatal(shotsDir.err)
	}
	return shotsDir.path
}

var shotsDir struct {
	sync.Once
	path string
	err  error
}

// signInBrowser opens the sign-in page in Chromium and signs in as who,
// typing into the form as a person does.
func signInBrowser(t *testing.T, f *cabinet, who string) context.Context {
	t.Helper()
	b := browsertest.New(t, browsertest.Options{})
	if err := chromedp.Do(b,
		chromedp.Navigate(f.url+"/signin"),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), f.people[who].Email),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
		chromedp.Submit(chromedp.CSS(`input[name=password]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.counters`)),
	); err != nil {
		t.Fatalf("sign in as %s in the browser: %v", who, err)
	}
	return b
}

func TestBrowserSignInAndDashboard(t *testing.T) {
	browsertest.Path(t)
	f := newCabinet(t, storetest.Open(t, store.SQLite))
	b := signInBrowser(t, f, "viewer")
	reqs := browsertest.Watch(b)
	dash := fmt.Sprintf("%s/c/%d/?period=7d", f.url, f.demo.CounterID)
	if err := chromedp.Do(b, chromedp.Navigate(dash), chromedp.WaitVisible(chromedp.CSS(`.cards`))); err != nil {
		t.Fatal(err)
	}
	sessions, err := chromedp.Run(b, chromedp.Text(chromedp.CSS(`[data-metric=sessions] .value`)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(sessions) == "" || strings.TrimSpace(sessions) == "0" {
		t.Errorf("the dashboard shows %q sessions for the demo's week", sessions)
	}
	browsertest.Screenshot(t, b, shots(t), "dashboard")
	if other := reqs.Elsewhere(f.url); len(other) > 0 {
		t.Errorf("the dashboard asked other origins: %v", other)
	}
	// Sign out from the page; the dashboard then asks to sign in.
	if err := chromedp.Do(b, chromedp.Click(chromedp.CSS(`form[action="/signout"] button`)), chromedp.WaitVisible(chromedp.CSS(`a[href="/signin"]`))); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(b, chromedp.Navigate(dash), chromedp.WaitVisible(chromedp.CSS(`input[name=password]`))); err != nil {
		t.Fatalf("after sign-out the dashboard did not ask to sign in: %v", err)
	}
}

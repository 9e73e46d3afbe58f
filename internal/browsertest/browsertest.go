// Package browsertest starts the headless Chromium that the browser tests
// drive (chromedp), and records what a page asked the network for. It is
// used only by tests.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Env names the browser for the tests. CI sets it, so a missing browser
// fails there; a developer without Chromium skips the browser tests.
const Env = "THROUGHLINE_TEST_BROWSER"

// Path finds Chromium, or skips the test.
func Path(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(Env); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s=%s: %v", Env, p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium: install Debian's chromium or set " + Env)
	return ""
}

// Options tune the browser.
type Options struct {
	// UserAgent replaces headless Chromium's own (which names itself
	// "HeadlessChrome", a robot to the collector).
	UserAgent string
	// HostRules maps names to addresses ("MAP *.shop.test 127.0.0.1").
	HostRules string
	// Timeout bounds the whole browser session (90 s when zero).
	Timeout time.Duration
	// Language is the browser's Accept-Language ("en-US" when empty).
	Language string
}

// New starts a headless Chromium with a fresh profile, closed when the test
// ends, and returns its first tab's context.
func New(t testing.TB, opt Options) context.Context {
	t.Helper()
	if opt.Timeout == 0 {
		opt.Timeout = 90 * time.Second
	}
	if opt.Language == "" {
		opt.Language = "en-US"
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Path(t)),
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("lang", opt.Language),
		chromedp.Flag("accept-lang", opt.Language),
		chromedp.WindowSize(1366, 900),
	)
	if opt.UserAgent != "" {
		opts = append(opts, chromedp.UserAgent(opt.UserAgent))
	}
	if opt.HostRules != "" {
		opts = append(opts, chromedp.Flag("host-resolver-rules", opt.HostRules))
	}
	ctx, cancel := context.WithTimeout(context.Background(), opt.Timeout)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("chromium: enable network events: %v", err)
	}
	return bctx
}

// Requests records the URLs a tab requests.
type Requests struct {
	mu   sync.Mutex
	urls []string
}

// Watch starts recording the tab's requests (network events must be on:
// New turns them on).
func Watch(ctx context.Context) *Requests {
	r := &Requests{}
	events := chromedp.Events(ctx, network.RequestWillBeSent) // subscribed from here on
	go func() {
		for ev, err := range events {
			if err != nil {
				return // the tab's context ended
			}
			r.mu.Lock()
			r.urls = append(r.urls, ev.Request.URL)
			r.mu.Unlock()
		}
	}()
	return r
}

// Elsewhere returns the recorded requests that did not go to origin (data:
// URLs aside).
func (r *Requests) Elsewhere(origin string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, u := range r.urls {
		if !strings.HasPrefix(u, origin+"/") && u != origin && !strings.HasPrefix(u, "data:") {
			out = append(out, u)
		}
	}
	return out
}

// All returns every recorded request.
func (r *Requests) All() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.urls...)
}

// Screenshot saves the whole page as dir/name.png and logs the path (shown
// with -v), so a reviewer can look at what the test saw.
func Screenshot(t testing.TB, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 is a PNG
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot: %s", path)
}

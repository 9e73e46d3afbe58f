package accounts

import (
	"sync"
	"time"
)

// Throttle limits failed sign-ins per client address and per account: past
// a limit, sign-in from that address, or into that account, waits until the
// window ends. Accounts that do not exist are counted like real ones, so the
// answers do not tell them apart. It is kept in memory: behind several
// instances each counts its own share.
type Throttle struct {
	// Window is how long failures count (15 minutes when zero).
	Window time.Duration
	// AccountFailures and AddressFailures are how many failures a window
	// allows per account and per address (10 and 50 when zero).
	AccountFailures, AddressFailures int
	// Now is the clock (time.Now when nil; tests move it).
	Now func() time.Time

	mu        sync.Mutex
	accounts  map[string]*failures
	addresses map[string]*failures
	calls     int
}

type failures struct {
	start time.Time
	n     int
}

func (t *Throttle) defaults() (time.Duration, int, int, time.Time) {
	w, a, b := t.Window, t.AccountFailures, t.AddressFailures
	if w <= 0 {
		w = 15 * time.Minute
	}
	if a <= 0 {
		a = 10
	}
	if b <= 0 {
		b = 50
	}
	now := time.Now()
	if t.Now != nil {
		now = t.Now()
	}
	return w, a, b, now
}

// Wait returns how long sign-in from address into account must wait; zero
// means it may try now.
func (t *Throttle) Wait(address, account string) time.Duration {
	window, accLimit, addrLimit, now := t.defaults()
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	for _, c := range []struct {
		m     map[string]*failures
		key   string
		limit int
	}{{t.accounts, account, accLimit}, {t.addresses, address, addrLimit}} {
		f := c.m[c.key]
		if f == nil || now.Sub(f.start) >= window || f.n < c.limit {
			continue
		}
		wait = max(wait, f.start.Add(window).Sub(now))
	}
	return wait
}

// Failed counts a failed sign-in.
func (t *Throttle) Failed(address, account string) {
	window, _, _, now := t.defaults()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.accounts == nil {
		t.accounts, t.addresses = map[string]*failures{}, map[string]*failures{}
	}
	for _, c := range []struct {
		m   map[string]*failures
		key string
	}{{t.accounts, account}, {t.addresses, address}} {
		f := c.m[c.key]
		if f == nil || now.Sub(f.start) >= window {
			f = &failures{start: now}
			c.m[c.key] = f
		}
		f.n++
	}
	// Forget finished windows now and then, so the maps hold only the
	// last window's failures.
	if t.calls++; t.calls%1024 == 0 {
		for _, m := range []map[string]*failures{t.accounts, t.addresses} {
			for k, f := range m {
				if now.Sub(f.start) >= window {
					delete(m, k)
				}
			}
		}
	}
}

// Succeeded forgets an account's failures once its owner got in.
func (t *Throttle) Succeeded(account string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.accounts, account)
}

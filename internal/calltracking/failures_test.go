package calltracking_test

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/calltracking"
	"github.com/throughline/throughline/internal/secrets"
	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// A kept request holds neither the Mango key nor credential headers,
// however it was sent, and WithKey gives back what the provider sent — byte
// for byte when the key was encoded as usual, else the same key (the
// signature covers its value).
func TestKeptFailuresWithholdTheKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		box, err := secrets.New([]byte("0123456789abcdef0123456789abcdef"))
		if err != nil {
			t.Fatal(err)
		}
		const key = "dpp5wdkvmgh8+kfpc/wfpc 7u5cr0a2m8zc="
		h, err := calltracking.CreateHook(ctx, db, box, f.c.ID, "UTC", calltracking.HookInput{Provider: "mango", APIKey: key, APISalt: "salt"}, []string{"mango"})
		if err != nil {
			t.Fatal(err)
		}
		if h, err = calltracking.GetHook(ctx, db, f.c.ID, h.ID); err != nil {
			t.Fatal(err)
		}
		if err := calltracking.SaveFailure(ctx, db, h, &calltracking.Failure{Header: http.Header{}}); err == nil {
			t.Error("a failure kept with the hook's key still sealed (not withheld)")
		}
		if err := calltracking.OpenHook(ctx, db, box, h); err != nil || h.APIKey != key {
			t.Fatalf("open: %v, key %q", err, h.APIKey)
		}

		form := url.Values{"vpbx_api_key": {key}, "sign": {"00ff"}, "json": {`{"entry_id":"E1"}`}}.Encode()
		// The name encoded too, the key encoded otherwise (%20, lower-case
		// hex), and the pairs in another order.
		oddKey := strings.NewReplacer("+", "%20", "%2B", "%2b", "%2F", "%2f", "%3D", "%3d").Replace(url.QueryEscape(key))
		oddForm := "json=%7B%7D&vpbx%5Fapi%5Fkey=" + oddKey + "&sign=00ff"
		var mp bytes.Buffer
		w := multipart.NewWriter(&mp)
		w.WriteField("vpbx_api_key", key)
		w.WriteField("json", `{"entry_id":"E1"}`)
		w.Close()
		base := "https://tl.example" + h.Path + "/events/call"
		for name, c := range map[string]struct {
			method, query, ctype, body string
		}{
			"form":      {"POST", "", "application/x-www-form-urlencoded", form},
			"odd form":  {"POST", "", "", oddForm},
			"query":     {"GET", form, "", ""},
			"multipart": {"POST", "", w.FormDataContentType(), mp.String()},
			"json":      {"POST", "", "application/json", `{"vpbx_api_key": "` + key + `"}`},
		} {
			t.Run(name, func(t *testing.T) {
				u := base
				if c.query != "" {
					u += "?" + c.query
				}
				header := http.Header{"Authorization": {"Basic dTpw"}, "Cookie": {"a=b"}, "X-Other": {"kept"}}
				if c.ctype != "" {
					header.Set("Content-Type", c.ctype)
				}
				in := &calltracking.Failure{Provider: "mango", ReceivedAt: time.Now().UTC(), Method: c.method, Subpath: "/events/call",
					Query: c.query, URL: u, Header: header, Body: c.body, Error: "is required", Field: "json.entry_id"}
				if err := calltracking.SaveFailure(ctx, db, h, in); err != nil {
					t.Fatal(err)
				}
				kept, err := calltracking.GetFailure(ctx, db, f.c.ID, in.ID)
				if err != nil {
					t.Fatal(err)
				}
				all := kept.Body + " " + kept.URL + " " + kept.Query + " " + strings.Join(kept.Header.Values("Authorization"), "") + strings.Join(kept.Header.Values("Cookie"), "")
				for _, v := range []string{key, url.QueryEscape(key), url.PathEscape(key), "dTpw", "a=b"} {
					if strings.Contains(all, v) {
						t.Errorf("the kept request holds %q: %s", v, all)
					}
				}
				if kept.Header.Get("X-Other") != "kept" || !strings.Contains(all, "WITHHELD-vpbx_api_key") {
					t.Errorf("kept: %+v", kept)
				}
				back := kept.WithKey(key)
				if name == "odd form" {
					if v, err := url.ParseQuery(back.Body); err != nil || v.Get("vpbx_api_key") != key || v.Get("sign") != "00ff" || v.Get("json") != "{}" {
						t.Errorf("WithKey: %q (%v)", back.Body, err)
					}
					return
				}
				if back.Body != in.Body || back.URL != in.URL || back.Query != in.Query {
					t.Errorf("WithKey:\n body %q\n want %q\n url %q\n want %q", back.Body, in.Body, back.URL, in.URL)
				}
			})
		}
	})
}

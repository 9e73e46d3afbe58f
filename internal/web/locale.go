package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/number"
)

// The cabinet speaks Russian and English. Every string a page shows comes
// from one catalog per language, kept as files by area (locale/ru/*.json,
// locale/en/*.json, merged at start; a key in two files is an error, and a
// test fails when a key is in one language and not the other). A message is
// a string, or for counted things an object of plural forms: {"one", "few",
// "many", "other"} in Russian, {"one", "other"} in English, with %s for the
// number.
//
//go:embed locale
var localeFS embed.FS

// langs are the languages, the fallback first.
var langs = []string{"en", "ru"}

var langMatcher = language.NewMatcher([]language.Tag{language.English, language.Russian})

type catalog map[string]json.RawMessage

// catalogs are parsed once at start; a malformed file fails New.
func loadCatalogs() (map[string]catalog, error) {
	out := map[string]catalog{}
	for _, l := range langs {
		files, err := fs.Glob(localeFS, "locale/"+l+"/*.json")
		if err != nil || len(files) == 0 {
			return nil, fmt.Errorf("web: catalog %s: no files (%v)", l, err)
		}
		all := catalog{}
		for _, name := range files {
			b, err := localeFS.ReadFile(name)
			if err != nil {
				return nil, fmt.Errorf("web: catalog %s: %w", name, err)
			}
			var c catalog
			if err := json.Unmarshal(b, &c); err != nil {
				return nil, fmt.Errorf("web: catalog %s: %w", name, err)
			}
			for k, v := range c {
				if len(v) == 0 || (v[0] != '"' && v[0] != '{') {
					return nil, fmt.Errorf("web: catalog %s: %q is neither a string nor plural forms", name, k)
				}
				if _, dup := all[k]; dup {
					return nil, fmt.Errorf("web: catalog %s: %q is in another file of %s too", name, k, l)
				}
				all[k] = v
			}
		}
		out[l] = all
	}
	return out, nil
}

// Locale formats a page for one language: messages, numbers, money, dates.
type Locale struct {
	Lang    string
	cat     catalog
	printer *message.Printer
	loc     *time.Location // the counter's time zone (UTC outside a counter)
	missing func(key string)
}

func (c *Cabinet) locale(lang string, loc *time.Location) *Locale {
	if loc == nil {
		loc = time.UTC
	}
	tag := language.English
	if lang == "ru" {
		tag = language.Russian
	}
	return &Locale{Lang: lang, cat: c.catalogs[lang], printer: message.NewPrinter(tag), loc: loc, missing: c.missingKey}
}

// pickLanguage chooses the page's language: the person's setting, then the
// language cookie (set by the switch on the sign-in page), then the
// browser's Accept-Language, then English.
func pickLanguage(r *http.Request, personal string) string {
	if personal == "ru" || personal == "en" {
		return personal
	}
	if ck, err := r.Cookie(langCookie); err == nil && (ck.Value == "ru" || ck.Value == "en") {
		return ck.Value
	}
	tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if err != nil || len(tags) == 0 {
		return "en"
	}
	_, i, conf := langMatcher.Match(tags...)
	if conf == language.No {
		return "en"
	}
	return langs[i]
}

const langCookie = "tl_lang"

func (l *Locale) raw(key string) json.RawMessage {
	v, ok := l.cat[key]
	if !ok {
		l.missing(key)
	}
	return v
}

// has reports whether the catalog has key.
func (l *Locale) has(key string) bool { _, ok := l.cat[key]; return ok }

// T returns the message key, formatted with args like fmt.Sprintf. A key
// missing from the catalog shows as itself (and fails the tests).
func (l *Locale) T(key string, args ...any) string {
	v := l.raw(key)
	var s string
	if json.Unmarshal(v, &s) != nil {
		return key
	}
	if len(args) > 0 {
		return l.printer.Sprintf(s, args...)
	}
	return s
}

// N returns the plural form of key for n, with n (formatted) in place of
// %s: "1 заказ", "3 заказа", "11 заказов".
func (l *Locale) N(key string, n any) string {
	v := l.raw(key)
	var forms map[string]string
	if json.Unmarshal(v, &forms) != nil {
		return key
	}
	var f float64
	switch x := n.(type) {
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case float64:
		f = x
	}
	form := forms[pluralForm(l.Lang, f)]
	if form == "" {
		form = forms["other"]
	}
	return strings.Replace(form, "%s", l.Num(n), 1)
}

// pluralForm is CLDR's cardinal rule for the language: Russian one (1, 21,
// 31…), few (2–4, 22–24…), many (0, 5–20, 25–30…), other (fractions);
// English one and other.
func pluralForm(lang string, n float64) string {
	if n != math.Trunc(n) {
		return "other"
	}
	i := int64(math.Abs(n))
	if lang != "ru" {
		if i == 1 {
			return "one"
		}
		return "other"
	}
	switch mod10, mod100 := i%10, i%100; {
	case mod10 == 1 && mod100 != 11:
		return "one"
	case mod10 >= 2 && mod10 <= 4 && (mod100 < 12 || mod100 > 14):
		return "few"
	}
	return "many"
}

// Num formats a count or a measure: 1 234 567 / 1,234,567; fractions (a
// model's share of orders) with up to two decimals.
func (l *Locale) Num(n any) string {
	switch x := n.(type) {
	case int:
		return l.printer.Sprint(number.Decimal(x))
	case int64:
		return l.printer.Sprint(number.Decimal(x))
	case float64:
		return l.printer.Sprint(number.Decimal(x, number.MaxFractionDigits(2)))
	case json.Number:
		f, _ := x.Float64()
		return l.Num(f)
	}
	return fmt.Sprint(n)
}

// Dec formats v with exactly places decimals.
func (l *Locale) Dec(v float64, places int) string {
	return l.printer.Sprint(number.Decimal(v, number.MinFractionDigits(places), number.MaxFractionDigits(places)))
}

// currencySymbols are the signs shown for the currencies shops here use;
// others show their ISO code.
var currencySymbols = map[string]string{"RUB": "₽", "USD": "$", "EUR": "€", "KZT": "₸", "BYN": "Br", "UAH": "₴", "GBP": "£", "CNY": "¥"}

// Money formats an amount in major units in a currency: "1 234 567 ₽" in
// Russian, "₽1,234,567" in English. Amounts of a thousand and more drop the
// kopecks (a report reads whole roubles); smaller ones keep two decimals.
func (l *Locale) Money(v any, currency string) string {
	var f float64
	switch x := v.(type) {
	case json.Number:
		f, _ = x.Float64()
	case *json.Number:
		if x == nil {
			return "—"
		}
		f, _ = x.Float64()
	case float64:
		f = x
	case int64:
		f = float64(x)
	}
	places := 2
	if math.Abs(f) >= 1000 || f == math.Trunc(f) {
		places = 0
	}
	return l.withCurrency(l.Dec(f, places), currency)
}

// withCurrency places a currency's sign by a formatted amount: after it in
// Russian, before it in English; an unknown currency by its code.
func (l *Locale) withCurrency(n, currency string) string {
	sym, ok := currencySymbols[currency]
	switch {
	case !ok:
		return n + "\u00a0" + currency
	case l.Lang == "ru":
		return n + "\u00a0" + sym
	case strings.HasPrefix(n, "-"):
		return "-" + sym + n[1:]
	}
	return sym + n
}

// Minor formats an amount in minor units (kopecks) exactly, with decimals.
func (l *Locale) Minor(v int64, currency string) string {
	return l.withCurrency(l.Dec(float64(v)/100, 2), currency)
}

// Pct formats a ratio as a percentage: 0.1234 → 12,3 % / 12.3%; nil is a
// dash (no denominator).
func (l *Locale) Pct(v *float64) string {
	if v == nil {
		return "—"
	}
	return l.printer.Sprint(number.Percent(*v, number.MaxFractionDigits(1)))
}

// Ratio formats ROI/ROMI as a percentage (1.5 → 150 %).
func (l *Locale) Ratio(v *float64) string { return l.Pct(v) }

var monthsRu = []string{"янв.", "февр.", "мар.", "апр.", "мая", "июн.", "июл.", "авг.", "сент.", "окт.", "нояб.", "дек."}

// Date formats a day: 7 дек. 2026 / Dec 7, 2026. A time is shown in the
// counter's time zone; a civil date (a report's day) as it is.
func (l *Locale) Date(v any) string {
	t, ok := l.civil(v)
	if !ok {
		return fmt.Sprint(v)
	}
	if l.Lang == "ru" {
		return strconv.Itoa(t.Day()) + "\u00a0" + monthsRu[t.Month()-1] + "\u00a0" + strconv.Itoa(t.Year())
	}
	return t.Format("Jan 2, 2006")
}

// Day is Date without the year, for chart axes: 7 дек. / Dec 7.
func (l *Locale) Day(v any) string {
	t, ok := l.civil(v)
	if !ok {
		return fmt.Sprint(v)
	}
	if l.Lang == "ru" {
		return strconv.Itoa(t.Day()) + "\u00a0" + monthsRu[t.Month()-1]
	}
	return t.Format("Jan 2")
}

// Time formats an instant in the counter's zone: 7 дек. 2026, 12:03 /
// Dec 7, 2026, 12:03.
func (l *Locale) Time(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	t = t.In(l.loc)
	return l.Date(t) + ", " + t.Format("15:04")
}

// Clock formats an instant's time of day in the counter's zone, with
// seconds: 12:03:15.
func (l *Locale) Clock(t time.Time) string { return t.In(l.loc).Format("15:04:05") }

// civil reads a day given as a time (shown in the counter's zone) or as
// YYYY-MM-DD text (a civil date, shown as it is).
func (l *Locale) civil(v any) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x.In(l.loc), true
	case *time.Time:
		if x == nil {
			return time.Time{}, false
		}
		return x.In(l.loc), true
	case string:
		t, err := time.Parse(time.DateOnly, x)
		return t, err == nil
	}
	return time.Time{}, false
}

// Ago says how long ago t was, roughly: "12 s ago", "3 min ago", "2 h ago",
// "5 days ago" (and the Russian forms).
func (l *Locale) Ago(t time.Time, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return l.N("ago.seconds", int64(max(d/time.Second, 0)))
	case d < time.Hour:
		return l.N("ago.minutes", int64(d/time.Minute))
	case d < 48*time.Hour:
		return l.N("ago.hours", int64(d/time.Hour))
	}
	return l.N("ago.days", int64(d/(24*time.Hour)))
}

// HTML marks a catalog message as safe HTML: only for messages written by
// us with markup in them (never for anything a user typed).
func (l *Locale) HTML(key string, args ...any) template.HTML {
	esc := make([]any, len(args))
	for i, a := range args {
		esc[i] = template.HTMLEscapeString(fmt.Sprint(a))
	}
	return template.HTML(l.T(key, esc...))
}

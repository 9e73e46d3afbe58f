package tracker

import (
	"net/url"
	"testing"
)

func TestClassify(t *testing.T) {
	const site = "shop.ru"
	cases := []struct {
		name, landing, referrer string
		want                    Source
	}{
		// Referrer only: real referrer strings as browsers send them (origin-only under
		// the default strict-origin-when-cross-origin policy).
		{"typed", "https://shop.ru/", "", Source{Direct, "(direct)", "(none)"}},
		{"yandex search", "https://shop.ru/", "https://yandex.ru/", Source{Organic, "yandex", "organic"}},
		{"yandex search kz", "https://shop.ru/", "https://yandex.kz/", Source{Organic, "yandex", "organic"}},
		{"ya.ru", "https://shop.ru/", "https://ya.ru/", Source{Organic, "yandex", "organic"}},
		{"google com", "https://shop.ru/", "https://www.google.com/", Source{Organic, "google", "organic"}},
		{"google co.uk", "https://shop.ru/", "https://www.google.co.uk/", Source{Organic, "google", "organic"}},
		{"bing", "https://shop.ru/", "https://www.bing.com/", Source{Organic, "bing", "organic"}},
		{"mail.ru search", "https://shop.ru/", "https://go.mail.ru/search?q=x", Source{Organic, "mail.ru", "organic"}},
		{"duckduckgo", "https://shop.ru/", "https://duckduckgo.com/", Source{Organic, "duckduckgo", "organic"}},
		{"vk mobile", "https://shop.ru/", "https://m.vk.com/", Source{Social, "vk", "social"}},
		{"vk away", "https://shop.ru/", "https://away.vk.com/", Source{Social, "vk", "social"}},
		{"ok", "https://shop.ru/", "https://ok.ru/", Source{Social, "ok", "social"}},
		{"telegram", "https://shop.ru/", "https://t.me/", Source{Social, "telegram", "social"}},
		{"telegram web", "https://shop.ru/", "https://web.telegram.org/", Source{Social, "telegram", "social"}},
		{"facebook link shim", "https://shop.ru/", "https://l.facebook.com/", Source{Social, "facebook", "social"}},
		{"instagram", "https://shop.ru/", "https://l.instagram.com/", Source{Social, "instagram", "social"}},
		{"youtube", "https://shop.ru/", "https://www.youtube.com/", Source{Social, "youtube", "social"}},
		{"dzen", "https://shop.ru/", "https://dzen.ru/", Source{Social, "dzen", "social"}},
		{"yandex mail beats yandex search", "https://shop.ru/", "https://mail.yandex.ru/", Source{Email, "yandex_mail", "email"}},
		{"mail.ru webmail", "https://shop.ru/", "https://e.mail.ru/", Source{Email, "mail.ru", "email"}},
		{"gmail", "https://shop.ru/", "https://mail.google.com/", Source{Email, "gmail", "email"}},
		{"yandex market is not search", "https://shop.ru/", "https://market.yandex.ru/", Source{Referral, "market.yandex.ru", "referral"}},
		{"google maps is not search", "https://shop.ru/", "https://maps.google.com/", Source{Referral, "maps.google.com", "referral"}},
		{"lookalike is not google", "https://shop.ru/", "https://google.evil.com/", Source{Referral, "google.evil.com", "referral"}},
		{"a blog", "https://shop.ru/", "https://www.blog.example.com/post/1", Source{Referral, "blog.example.com", "referral"}},
		{"own page", "https://shop.ru/cart", "https://shop.ru/catalog", Source{Internal, "shop.ru", "internal"}},
		{"own subdomain", "https://shop.ru/", "https://m.shop.ru/", Source{Internal, "m.shop.ru", "internal"}},
		{"garbage referrer", "https://shop.ru/", "not a url", Source{Direct, "(direct)", "(none)"}},

		// UTM tags as Yandex Direct, Google Ads, VK Ads and mailers write them.
		{"yandex direct", "https://shop.ru/?utm_source=yandex&utm_medium=cpc&utm_campaign=brand&utm_term=купить+диван&yclid=123456789", "https://yandex.ru/", Source{Ad, "yandex", "cpc"}},
		{"google ads tagged", "https://shop.ru/?utm_source=google&utm_medium=cpc&gclid=Cj0KCQ", "https://www.google.com/", Source{Ad, "google", "cpc"}},
		{"vk ads", "https://shop.ru/?utm_source=vk&utm_medium=paid_social&utm_campaign=spring", "https://vk.com/", Source{Ad, "vk", "paid_social"}},
		{"newsletter", "https://shop.ru/?utm_source=unisender&utm_medium=email&utm_campaign=nov", "", Source{Email, "unisender", "email"}},
		{"medium case-insensitive", "https://shop.ru/?utm_source=yandex&utm_medium=CPC", "", Source{Ad, "yandex", "CPC"}},
		{"tagged social post", "https://shop.ru/?utm_source=vk&utm_medium=post", "", Source{Social, "vk", "post"}},
		{"tagged by host", "https://shop.ru/?utm_source=t.me", "", Source{Social, "t.me", ""}},
		{"unknown medium is paid", "https://shop.ru/?utm_source=blogger_ivan&utm_medium=integration", "https://youtube.com/", Source{Ad, "blogger_ivan", "integration"}},
		{"organic tag", "https://shop.ru/?utm_source=google&utm_medium=organic", "", Source{Organic, "google", "organic"}},

		// Click ids without utm tags: Google auto-tagging, Yandex yclid.
		{"gclid only", "https://shop.ru/?gclid=EAIaIQ", "https://www.google.com/", Source{Ad, "google", "cpc"}},
		{"gbraid only", "https://shop.ru/?gbraid=0AAAAA", "", Source{Ad, "google", "cpc"}},
		{"yclid only", "https://shop.ru/?yclid=987", "https://yandex.ru/", Source{Ad, "yandex", "cpc"}},
		{"fbclid is social", "https://shop.ru/?fbclid=IwAR0", "https://l.facebook.com/", Source{Social, "facebook", "social"}},
		{"utm without medium takes the click's", "https://shop.ru/?utm_campaign=x&gclid=1", "", Source{Ad, "google", "cpc"}},
	}
	for _, c := range cases {
		u, err := url.Parse(c.landing)
		if err != nil {
			t.Fatal(err)
		}
		got := Classify(ParseCampaign(u), c.referrer, u.Hostname(), site)
		if got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestCampaignKeySeparatesClicks(t *testing.T) {
	parse := func(s string) Campaign {
		u, _ := url.Parse(s)
		return ParseCampaign(u)
	}
	a := parse("https://shop.ru/?utm_source=yandex&utm_medium=cpc&yclid=1")
	if a.Key() != parse("https://shop.ru/other?yclid=1&utm_medium=cpc&utm_source=yandex").Key() {
		t.Error("the same click in another parameter order must be the same campaign")
	}
	if a.Key() == parse("https://shop.ru/?utm_source=yandex&utm_medium=cpc&yclid=2").Key() {
		t.Error("a second ad click (new yclid) must be a different campaign")
	}
	if parse("https://shop.ru/?utm_term=a").Key() == parse("https://shop.ru/?utm_content=a").Key() {
		t.Error("the same value in different tags must differ")
	}
	if parse("https://shop.ru/catalog?page=2").IsSet() {
		t.Error("a URL without tags carries no campaign")
	}
}

func TestSourcesTableParses(t *testing.T) {
	tab, err := parseSources(sourcesCSV)
	if err != nil {
		t.Fatal(err)
	}
	for typ := range map[TrafficType]bool{Ad: true, Organic: true, Social: true, Email: true} {
		found := false
		for _, r := range tab.hosts {
			found = found || r.typ == typ
		}
		for _, m := range tab.mediums {
			found = found || m == typ
		}
		if !found {
			t.Errorf("no table entry yields %s", typ)
		}
	}
	if _, err := parseSources("table,type,source,medium,values\nbogus,ad,x,y,z\n"); err == nil {
		t.Error("an unknown table name must be refused")
	}
}

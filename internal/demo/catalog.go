package demo

// The demo shop: a furniture store, «Уютный дом», its pages, products,
// ad campaigns, phones and CRM statuses. Everything the generator draws
// from is here, so the story the demo tells can be read in one place.

import "github.com/throughline/throughline/internal/crm"

const (
	shopName = "Уютный дом"
	siteURL  = "https://" + Domain
)

// page is one page of the site.
type page struct {
	path, title string
}

var (
	pageHome     = page{"/", shopName + " — диваны и кресла от производителя"}
	pageSofas    = page{"/catalog/divany", "Диваны — " + shopName}
	pageChairs   = page{"/catalog/kresla", "Кресла — " + shopName}
	pageDecor    = page{"/catalog/dekor", "Подушки и пледы — " + shopName}
	pageSale     = page{"/sale", "Распродажа — " + shopName}
	pageDelivery = page{"/delivery", "Доставка и сборка — " + shopName}
	pageContacts = page{"/contacts", "Контакты и шоурум — " + shopName}
	pageCart     = page{"/cart", "Корзина — " + shopName}
	pageCheckout = page{"/checkout", "Оформление заказа — " + shopName}
	pageThanks   = page{"/checkout/success", "Спасибо за заказ — " + shopName}
)

// infoPages are what visitors browse besides products.
var infoPages = []page{pageHome, pageSofas, pageChairs, pageDecor, pageSale, pageDelivery, pageContacts}

// product is one item of the catalogue; price in roubles.
type product struct {
	slug, title, category string
	price                 int64
}

var products = []product{
	{"divan-oslo", "Диван «Осло»", "divany", 54990},
	{"divan-bergen", "Угловой диван «Берген»", "divany", 89990},
	{"divan-kompakt", "Диван-кровать «Компакт»", "divany", 32990},
	{"divan-loft", "Диван «Лофт»", "divany", 119990},
	{"divan-milan", "Диван «Милан»", "divany", 64990},
	{"kreslo-grusha", "Кресло-мешок «Груша»", "kresla", 8990},
	{"kreslo-relaks", "Кресло «Релакс»", "kresla", 24990},
	{"kreslo-vecher", "Кресло-качалка «Тихий вечер»", "kresla", 34990},
	{"podushka-velur", "Подушка декоративная, велюр", "dekor", 1490},
	{"pled-sherst", "Плед шерстяной", "dekor", 3990},
}

func (p product) page() page {
	return page{"/product/" + p.slug, p.title + " — " + shopName}
}

// adCampaign is a paid campaign: its utm tags, the click id its network
// appends, where it lands, what a click costs and how its visitors behave.
type adCampaign struct {
	source, medium, name string
	clickParam           string   // yclid, vkclid
	landing              page     // where the ads lead; a product of category when zero
	category             string   // what its visitors mostly buy
	terms                []string // keywords (utm_term); none for network and social ads
	contents             []string // ad ids (utm_content)
	cpc                  [2]int64 // a click's price range, kopecks
	ctr                  float64  // clicks per impression
	// conv is how likely a visit is to end in a call, a request or an
	// order, against the site's average visit.
	conv float64
	// bounce is the share of visits that leave after the landing page.
	bounce float64
	// interest is how ready to buy the visitors it brings first stay when
	// they come back, at most 1 (see visitor.interest).
	interest float64
}

// The shop advertises in Yandex Direct and VK Ads (Google Ads serves no ads
// in Russia) at Moscow furniture prices: a search click on «купить диван»
// costs 200–400 ₽, on a chair 100–200 ₽, a display or VK click 50–120 ₽.
// Its visitors from ads are colder than those who come back by themselves,
// and the campaigns differ the way real ones do, so that the report tells
// a marketer's story (with a margin of about 45% of revenue, ads bring
// about 40% of it and cost 7–10% of it):
//   - brand search is cheap and its visitors came to buy: it earns several
//     times its cost (ROMI 3–10);
//   - product search, the product-feed campaign and retargeting earn one
//     to three times their cost (ROMI 0.5–3), chairs the least;
//   - broad display (РСЯ) buys cheap visits that bounce and rarely return:
//     it loses money;
//   - VK hovers around break-even: its lookalike audience mostly loses,
//     its retargeting mostly pays.
//
// Campaign figures vary from seed to seed (a campaign brings a few dozen
// orders a month, a sofa costs 33–120 thousand roubles); TestStory checks
// the story on the test's seed.
var (
	yandexBrand = &adCampaign{source: "yandex", medium: "cpc", name: "brand_poisk", clickParam: "yclid", landing: pageHome,
		terms:    []string{"уютный дом мебель", "уютный дом диваны", "уютный дом официальный сайт"},
		contents: []string{"ad_11873401"}, cpc: [2]int64{5500, 12000}, ctr: 0.19, conv: 0.8, bounce: 0.25, interest: 1}
	yandexSofas = &adCampaign{source: "yandex", medium: "cpc", name: "divany_poisk", clickParam: "yclid", landing: pageSofas, category: "divany",
		terms:    []string{"купить диван", "диван кровать", "угловой диван недорого", "диван от производителя", "диван в гостиную"},
		contents: []string{"ad_11873201", "ad_11873202", "ad_11873207"}, cpc: [2]int64{20000, 41000}, ctr: 0.061, conv: 0.5, bounce: 0.36, interest: 1}
	yandexChairs = &adCampaign{source: "yandex", medium: "cpc", name: "kresla_poisk", clickParam: "yclid", landing: pageChairs, category: "kresla",
		terms:    []string{"купить кресло", "кресло мешок", "кресло для отдыха"},
		contents: []string{"ad_11873310", "ad_11873311"}, cpc: [2]int64{10000, 19000}, ctr: 0.054, conv: 0.5, bounce: 0.38, interest: 1}
	yandexProducts = &adCampaign{source: "yandex", medium: "cpc", name: "tovarnaya_divany", clickParam: "yclid", category: "divany",
		contents: []string{"feed_divany_1", "feed_divany_2"}, cpc: [2]int64{11000, 21000}, ctr: 0.032, conv: 0.3, bounce: 0.4, interest: 0.9}
	yandexNetwork = &adCampaign{source: "yandex", medium: "cpc", name: "rsya_divany", clickParam: "yclid", landing: pageSofas, category: "divany",
		contents: []string{"banner_240x400", "smart_banner"}, cpc: [2]int64{4500, 8000}, ctr: 0.0045, conv: 0.015, bounce: 0.62, interest: 0.05}
	yandexRetarget = &adCampaign{source: "yandex", medium: "cpc", name: "retargeting", clickParam: "yclid", landing: pageSale,
		contents: []string{"smart_banner_cart", "smart_banner_viewed"}, cpc: [2]int64{9000, 16000}, ctr: 0.009, conv: 0.38, bounce: 0.3, interest: 1}
	vkLookalike = &adCampaign{source: "vk", medium: "cpc", name: "vk_lookalike", clickParam: "vkclid", landing: pageSofas, category: "divany",
		contents: []string{"creative_sofa_video", "creative_sofa_carousel"}, cpc: [2]int64{6500, 12000}, ctr: 0.0075, conv: 0.055, bounce: 0.5, interest: 0.3}
	vkRetarget = &adCampaign{source: "vk", medium: "cpc", name: "vk_retarget", clickParam: "vkclid", landing: pageSale,
		contents: []string{"creative_sale"}, cpc: [2]int64{7500, 12000}, ctr: 0.011, conv: 0.1, bounce: 0.35, interest: 1}
)

// channel is one way a visit reaches the site, with its share of first
// visits and of returning ones.
type channel struct {
	kind      string      // ad, organic, social, referral, email, direct
	ad        *adCampaign // kind ad
	referrer  string      // organic, social, referral: the referring page's site
	first     float64
	returning float64
}

var channels = []channel{
	{kind: "ad", ad: yandexSofas, first: 19, returning: 8},
	{kind: "ad", ad: yandexChairs, first: 7, returning: 2},
	{kind: "ad", ad: yandexNetwork, first: 11, returning: 0.5},
	{kind: "ad", ad: yandexRetarget, first: 0, returning: 15},
	{kind: "ad", ad: yandexProducts, first: 9, returning: 3},
	{kind: "ad", ad: yandexBrand, first: 3, returning: 6},
	{kind: "ad", ad: vkLookalike, first: 6, returning: 0.5},
	{kind: "ad", ad: vkRetarget, first: 0, returning: 7},
	{kind: "organic", referrer: "https://yandex.ru/", first: 11, returning: 9},
	{kind: "organic", referrer: "https://www.google.com/", first: 4, returning: 3},
	{kind: "social", referrer: "https://vk.com/", first: 3, returning: 2},
	{kind: "social", referrer: "https://t.me/", first: 2, returning: 1},
	{kind: "referral", referrer: "https://otzovik.com/reviews/mebelniy_magazin_uyutniy_dom/", first: 2.5, returning: 1},
	{kind: "referral", referrer: "https://www.ivi-mebel-obzor.ru/luchshie-divany-2026/", first: 2, returning: 0.5},
	{kind: "referral", referrer: "https://market-mebeli.ru/shops/uyutniy-dom", first: 1.5, returning: 0.5},
	{kind: "email", first: 1.5, returning: 9},
	{kind: "direct", first: 9, returning: 24},
}

// Hours of the day (local time) by how many visits start in them: quiet
// nights, a working-day plateau, and the evening peak when people choose
// furniture at home.
var visitHours = []float64{0.6, 0.35, 0.2, 0.15, 0.12, 0.15, 0.3, 0.6, 1.0, 1.4, 1.7, 1.8,
	1.8, 1.7, 1.6, 1.6, 1.6, 1.7, 1.9, 2.2, 2.4, 2.3, 1.8, 1.1}

// Offline calls (radio, flyers) come in while the office answers.
var officeHours = []float64{0, 0, 0, 0, 0, 0, 0, 0, 0.3, 1, 1.2, 1.3, 1.3, 1.2, 1.2, 1.2, 1.2, 1.1, 1, 0.9, 0.6, 0.2, 0, 0}

// Weekdays, Sunday first (time.Weekday), by how busy the site is.
var weekdays = []float64{0.98, 1.10, 1.08, 1.05, 1.0, 0.92, 0.85}

// Call tracking: the site's own phone, a pool for every visitor, and two
// static numbers printed offline.
const (
	sitePhone     = "8 (800) 555-35-35"
	poolName      = "Все посетители сайта"
	poolFallback  = "+7 495 120-00-00"
	poolSize      = 10
	holdMinutes   = 15  // counter.DefaultLeaseHoldMinutes
	cooldownSecs  = 300 // counter.DefaultLeaseCooldownSeconds
	uniqueWindowD = 30  // counter.DefaultUniqueCallDays
)

// poolNumber is the i-th number of the pool (from 1), as the shop wrote it.
func poolNumber(i int) string { return "+7 495 120-00-" + twoDigits(i) }

func twoDigits(i int) string { return string([]byte{byte('0' + i/10), byte('0' + i%10)}) }

// staticNumber is a number printed on an offline ad.
type staticNumber struct {
	number, source, medium, campaign string
	share                            float64
}

var staticNumbers = []staticNumber{
	{"+7 800 100-20-30", "radio", "offline", "europa_plus_spring", 0.65},
	{"+7 495 120-99-99", "flyer", "offline", "metro_flyers", 0.35},
}

// The CRM's order statuses (RetailCRM-style codes) and what they mean.
// "waiting-supply" is left out of the mapping on purpose: the report shows
// what an unmapped status looks like.
var statusMapping = []crm.Status{
	{Code: "new", Type: crm.InProgress, Humanized: "Новый"},
	{Code: "assembling", Type: crm.InProgress, Humanized: "Комплектуется"},
	{Code: "delivering", Type: crm.InProgress, Humanized: "Доставляется"},
	{Code: "complete", Type: crm.Paid, Humanized: "Выполнен"},
	{Code: "prepayed", Type: crm.Paid, Humanized: "Предоплата поступила"},
	{Code: "cancel-other", Type: crm.Cancelled, Humanized: "Отменён"},
	{Code: "no-call", Type: crm.Cancelled, Humanized: "Недозвон"},
	{Code: "spam", Type: crm.Spam, Humanized: "Спам"},
	{Code: "duplicate", Type: crm.Other, Humanized: "Дубль"},
}

const unmappedStatus = "waiting-supply"

// People: first names (Cyrillic, Latin), surnames (male, female, Latin).
var (
	maleNames   = [][2]string{{"Александр", "aleksandr"}, {"Дмитрий", "dmitry"}, {"Максим", "maksim"}, {"Сергей", "sergey"}, {"Андрей", "andrey"}, {"Алексей", "aleksey"}, {"Иван", "ivan"}, {"Михаил", "mikhail"}, {"Никита", "nikita"}, {"Павел", "pavel"}}
	femaleNames = [][2]string{{"Анна", "anna"}, {"Мария", "maria"}, {"Елена", "elena"}, {"Ольга", "olga"}, {"Наталья", "natalia"}, {"Татьяна", "tatiana"}, {"Екатерина", "ekaterina"}, {"Ирина", "irina"}, {"Светлана", "svetlana"}, {"Юлия", "yulia"}}
	surnames    = [][3]string{{"Петров", "Петрова", "petrov"}, {"Иванов", "Иванова", "ivanov"}, {"Смирнов", "Смирнова", "smirnov"}, {"Кузнецов", "Кузнецова", "kuznetsov"}, {"Попов", "Попова", "popov"}, {"Волков", "Волкова", "volkov"}, {"Соколов", "Соколова", "sokolov"}, {"Лебедев", "Лебедева", "lebedev"}, {"Козлов", "Козлова", "kozlov"}, {"Новиков", "Новикова", "novikov"}, {"Морозов", "Морозова", "morozov"}, {"Орлов", "Орлова", "orlov"}}
	mailDomains = []string{"yandex.ru", "yandex.ru", "mail.ru", "gmail.com", "bk.ru", "inbox.ru", "list.ru"}
	// Russian mobile operators' codes.
	mobileCodes = []string{"903", "905", "910", "915", "916", "917", "919", "925", "926", "929", "965", "977", "985", "999"}
)

// Software by device: browser and OS as the collector's User-Agent parser names them.
var (
	mobileClients  = [][2]string{{"Chrome", "Android"}, {"Chrome", "Android"}, {"Safari", "iOS"}, {"Safari", "iOS"}, {"YaBrowser", "Android"}, {"Samsung Browser", "Android"}}
	desktopClients = [][2]string{{"Chrome", "Windows"}, {"Chrome", "Windows"}, {"YaBrowser", "Windows"}, {"Edge", "Windows"}, {"Firefox", "Windows"}, {"Safari", "macOS"}, {"Chrome", "Linux"}}
	tabletClients  = [][2]string{{"Safari", "iOS"}, {"Chrome", "Android"}}
	// /24 networks of Russian broadband and mobile providers (addresses are
	// stored anonymised, last octet zero).
	networks = []string{"95.24", "95.31", "178.66", "5.18", "188.162", "85.140", "176.59", "46.242", "93.80", "217.118"}
)

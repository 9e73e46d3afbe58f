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
// appends, where it lands, and what a click costs.
type adCampaign struct {
	source, medium, name string
	clickParam           string   // yclid, gclid, vkclid
	landing              page     // where the ads lead
	category             string   // what its visitors mostly buy
	terms                []string // keywords (utm_term); none for network and social ads
	contents             []string // ad ids (utm_content)
	cpc                  [2]int64 // a click's price range, kopecks
	ctr                  float64  // clicks per impression
	conv                 float64  // how well its visitors convert, against the average
}

var (
	yandexSofas = &adCampaign{"yandex", "cpc", "divany_poisk", "yclid", pageSofas, "divany",
		[]string{"купить диван", "диван кровать", "угловой диван недорого", "диван от производителя", "диван в гостиную"},
		[]string{"ad_11873201", "ad_11873202", "ad_11873207"}, [2]int64{15000, 32000}, 0.061, 1.1}
	yandexChairs = &adCampaign{"yandex", "cpc", "kresla_poisk", "yclid", pageChairs, "kresla",
		[]string{"купить кресло", "кресло мешок", "кресло для отдыха"},
		[]string{"ad_11873310", "ad_11873311"}, [2]int64{9000, 18000}, 0.054, 1}
	yandexNetwork = &adCampaign{"yandex", "cpc", "rsya_divany", "yclid", pageSofas, "divany",
		nil, []string{"banner_240x400", "smart_banner"}, [2]int64{4000, 8000}, 0.0045, 0.45}
	yandexRetarget = &adCampaign{"yandex", "cpc", "retargeting", "yclid", pageSale, "",
		nil, []string{"smart_banner_cart", "smart_banner_viewed"}, [2]int64{6000, 12000}, 0.009, 1.3}
	googleSofas = &adCampaign{"google", "cpc", "google_divany", "gclid", pageSofas, "divany",
		[]string{"диван купить москва", "диван еврокнижка", "угловой диван"},
		[]string{"rsa_1", "rsa_2"}, [2]int64{12000, 26000}, 0.048, 1}
	googleBrand = &adCampaign{"google", "cpc", "google_brand", "gclid", pageHome, "",
		[]string{"уютный дом мебель", "уютный дом диваны"},
		[]string{"brand_1"}, [2]int64{2000, 4000}, 0.21, 1.6}
	vkLookalike = &adCampaign{"vk", "cpc", "vk_lookalike", "vkclid", pageSofas, "divany",
		nil, []string{"creative_sofa_video", "creative_sofa_carousel"}, [2]int64{5000, 11000}, 0.0075, 0.3}
	vkRetarget = &adCampaign{"vk", "cpc", "vk_retarget", "vkclid", pageSale, "",
		nil, []string{"creative_sale"}, [2]int64{5000, 9000}, 0.011, 1}
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
	{kind: "ad", ad: yandexSofas, first: 12, returning: 6},
	{kind: "ad", ad: yandexChairs, first: 5, returning: 2},
	{kind: "ad", ad: yandexNetwork, first: 7, returning: 2},
	{kind: "ad", ad: yandexRetarget, first: 0, returning: 11},
	{kind: "ad", ad: googleSofas, first: 6, returning: 2},
	{kind: "ad", ad: googleBrand, first: 2, returning: 5},
	{kind: "ad", ad: vkLookalike, first: 5, returning: 1},
	{kind: "ad", ad: vkRetarget, first: 0, returning: 6},
	{kind: "organic", referrer: "https://yandex.ru/", first: 17, returning: 12},
	{kind: "organic", referrer: "https://www.google.com/", first: 7, returning: 5},
	{kind: "social", referrer: "https://vk.com/", first: 3, returning: 2},
	{kind: "social", referrer: "https://t.me/", first: 2, returning: 1},
	{kind: "referral", referrer: "https://otzovik.com/reviews/mebelniy_magazin_uyutniy_dom/", first: 2.5, returning: 1},
	{kind: "referral", referrer: "https://www.ivi-mebel-obzor.ru/luchshie-divany-2026/", first: 2, returning: 0.5},
	{kind: "referral", referrer: "https://market-mebeli.ru/shops/uyutniy-dom", first: 1.5, returning: 0.5},
	{kind: "email", first: 1.5, returning: 12},
	{kind: "direct", first: 15, returning: 30},
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

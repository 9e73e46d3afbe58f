package tracker

import (
	"cmp"
	"strings"
	"sync"

	"github.com/mileusna/useragent"
)

// client is what a User-Agent says about the visitor's software.
type client struct {
	Device  string // desktop, mobile, tablet
	Browser string
	OS      string
	Bot     bool
	Robot   string // for a bot, what says so: "no User-Agent", the robot's or HTTP library's name
}

// nonBrowsers are User-Agent prefixes of HTTP libraries and tools: they are
// not people, though the parser does not call them bots.
var nonBrowsers = []string{
	"curl/", "wget/", "python-requests/", "python-urllib/", "python-httpx/", "aiohttp/",
	"go-http-client/", "java/", "okhttp/", "apache-httpclient/", "libwww-perl/",
	"php/", "guzzlehttp/", "axios/", "node-fetch/", "undici", "postmanruntime/", "insomnia/", "httpie/",
}

// uaCache remembers parsed User-Agents: a site sees few distinct ones, and
// parsing costs microseconds on the collector's hot path.
type uaCache struct {
	mu sync.Mutex
	m  map[string]client
}

const uaCacheSize = 10000

func (c *uaCache) parse(ua string) client {
	c.mu.Lock()
	cl, ok := c.m[ua]
	c.mu.Unlock()
	if ok {
		return cl
	}
	cl = parseUA(ua)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= uaCacheSize {
		c.m = make(map[string]client, 256) // start over rather than track recency
	}
	c.m[ua] = cl
	c.mu.Unlock()
	return cl
}

func parseUA(ua string) client {
	// The names below are stored, and a header may hold bytes that are not
	// UTF-8 (net/http refuses NUL and other controls in headers).
	ua = strings.ToValidUTF8(ua, "\uFFFD")
	if strings.TrimSpace(ua) == "" {
		return client{Bot: true, Device: "bot", Robot: "no User-Agent"}
	}
	lower := strings.ToLower(ua)
	for _, p := range nonBrowsers {
		if strings.HasPrefix(lower, p) {
			name := clip(ua, 100)
			return client{Bot: true, Device: "bot", Browser: name, Robot: "HTTP library " + name}
		}
	}
	u := useragent.Parse(ua)
	cl := client{Browser: clip(u.Name, 100), OS: clip(u.OS, 100), Bot: u.Bot, Device: "desktop"}
	switch {
	case u.Bot:
		cl.Device = "bot"
		cl.Robot = cmp.Or(cl.Browser, "a robot's User-Agent")
	case u.Tablet:
		cl.Device = "tablet"
	case u.Mobile:
		cl.Device = "mobile"
	}
	return cl
}

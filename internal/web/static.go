package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// The cabinet's stylesheet and script, served from the binary. Their URLs
// carry a hash of their content (/static/app.3f2a9c1b.css), so browsers
// cache them forever and a new build's files are new URLs.
//
//go:embed static
var staticFS embed.FS

type asset struct {
	body        []byte
	contentType string
}

var (
	assets    = map[string]asset{}  // by hashed name
	assetURLs = map[string]string{} // plain name → /static/hashed name
)

func init() {
	entries, err := fs.ReadDir(staticFS, "static")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		b, err := staticFS.ReadFile("static/" + e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		ext := path.Ext(e.Name())
		hashed := strings.TrimSuffix(e.Name(), ext) + "." + hex.EncodeToString(sum[:5]) + ext
		assets[hashed] = asset{body: b, contentType: mime.TypeByExtension(ext)}
		assetURLs[e.Name()] = "/static/" + hashed
	}
}

// assetURL is the hashed URL of a static file, for templates.
func assetURL(name string) string {
	if u, ok := assetURLs[name]; ok {
		return u
	}
	panic("web: no static file " + name) // caught when the template is first executed in tests
}

// serveStatic serves a static file by its hashed name.
func serveStatic(w http.ResponseWriter, r *http.Request) {
	a, ok := assets[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Content-Length", strconv.Itoa(len(a.body)))
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodHead {
		w.Write(a.body)
	}
}

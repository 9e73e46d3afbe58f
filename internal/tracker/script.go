package tracker

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

//go:embed t.js
var scriptJS []byte

// The tracker script, compressed once at start, with an ETag from its
// content so browsers revalidate cheaply and pick up a new version at once.
var (
	scriptGzip = gzipBytes(scriptJS)
	scriptETag = func() string {
		sum := sha256.Sum256(scriptJS)
		return `"` + hex.EncodeToString(sum[:8]) + `"`
	}()
	scriptModTime = time.Now()
)

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// ServeScript answers GET /t.js. Sites embed it on every page, so it is
// cached for an hour and then revalidated by ETag (a 304 without a body).
func ServeScript(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("ETag", scriptETag)
	h.Set("Vary", "Accept-Encoding")
	h.Set("X-Content-Type-Options", "nosniff")
	body := scriptJS
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = scriptGzip
	}
	// ServeContent handles If-None-Match (304), HEAD and ranges.
	http.ServeContent(w, r, "t.js", scriptModTime, bytes.NewReader(body))
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

package server

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
)

//go:embed pages/index.html
var pagesFS embed.FS

var indexPage = template.Must(template.ParseFS(pagesFS, "pages/index.html"))

// index is the landing page: it says the server runs and what to do next.
// It shows only a count of counters, never their names, since it needs no login.
func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	var n int
	if err := s.db.Reader().QueryRowContext(r.Context(), `SELECT COUNT(*) FROM counters`).Scan(&n); err != nil {
		s.fail(w, r, err)
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	var buf bytes.Buffer
	err := indexPage.Execute(&buf, map[string]any{
		"Version": s.cfg.Version, "Engine": s.db.Dialect(), "Counters": n, "Base": scheme + "://" + r.Host,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

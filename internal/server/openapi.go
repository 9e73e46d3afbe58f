package server

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"fmt"
	"net/http"
	"time"
)

// openAPIDoc describes the HTTP API in OpenAPI 3.1. It is written by hand,
// next to the handlers it describes; TestOpenAPIRoutes fails when a route
// is registered that it does not document, or it documents one that is not.
//
//go:embed openapi.json
var openAPIDoc []byte

var openAPIETag = fmt.Sprintf(`"%x"`, sha256.Sum256(openAPIDoc))

// openAPI answers GET /api/v1/openapi.json. It needs no token and may be
// read from any origin, so that API tools (a Swagger UI, a client
// generator) can load it from wherever they run.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("ETag", openAPIETag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(openAPIDoc))
}

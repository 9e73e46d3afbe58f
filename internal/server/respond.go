package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Error is an API error as the client sees it:
// {"error": {"code": "...", "message": "...", "field": "..."}}.
// Code is stable and machine-readable; Message is for people; Field names
// the offending input when there is one.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func badRequest(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "bad_request", Field: field, Message: fmt.Sprintf(format, args...)}
}

var (
	errNotFound     = &Error{Status: http.StatusNotFound, Code: "not_found", Message: "not found"}
	errUnauthorized = &Error{Status: http.StatusUnauthorized, Code: "unauthorized",
		Message: "a valid API token is required: send it as 'Authorization: Bearer <token>'"}
	errInternal = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; see the server log"}
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client may be gone; nothing to do about it
}

// writePage answers one page of a list: {"<key>": items, "next_cursor": "…"},
// the cursor null on the last page.
func writePage(w http.ResponseWriter, key string, items any, next string) {
	resp := map[string]any{key: items, "next_cursor": nil}
	if next != "" {
		resp["next_cursor"] = next
	}
	writeJSON(w, http.StatusOK, resp)
}

func writeError(w http.ResponseWriter, e *Error) {
	writeJSON(w, e.Status, map[string]*Error{"error": e})
}

// decodeJSON reads one JSON object from the (size-limited) body into v,
// refusing unknown fields and trailing data, and turns every failure into an
// *Error that names the problem and, where possible, the field.
func decodeJSON(r *http.Request, v any) *Error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: fmt.Sprintf("Content-Type %q is not application/json", ct)}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if err != nil {
			if e := jsonError(err); e.Status == http.StatusRequestEntityTooLarge {
				return e
			}
		}
		return badRequest("", "the body must hold a single JSON object")
	}
	return nil
}

func jsonError(err error) *Error {
	if e, ok := bodyTimeout(err); ok {
		return e
	}
	var maxErr *http.MaxBytesError
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &maxErr):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
			Message: fmt.Sprintf("the body is larger than %d bytes", maxErr.Limit)}
	case errors.Is(err, io.EOF):
		return badRequest("", "the body is empty; a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "the JSON body ends too early")
	case errors.As(err, &syntaxErr):
		return badRequest("", "malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	case errors.As(err, &typeErr):
		return badRequest(typeErr.Field, "%s must be %s, not %s", typeErr.Field, typeErr.Type, typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(field, "unknown field %q", field)
	}
	return badRequest("", "invalid JSON: %v", err)
}

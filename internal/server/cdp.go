package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/throughline/throughline/internal/counter"
	"github.com/throughline/throughline/internal/crm"
)

// Yandex Metrica's CRM upload API ("CDP API") under /cdp/api/v1/counter/{id}/,
// so that an uploader written for Metrica works against Throughline by
// changing only the host. It speaks Metrica's dialect throughout: its auth
// schemes, its error body, its response shapes (shared/spec/metrica-cdp.md).

const cdpPrefix = "/cdp/api/v1/counter/{counterId}/"

// maxSchemaBody caps the JSON bodies of schema calls; maxProductsBody the
// product list's, which may hold 160,000 items and is read one at a time.
const (
	maxSchemaBody   = 1 << 20
	maxProductsBody = 32 << 20
)

func (s *Server) cdpRoutes() {
	api, upload := s.cfg.BodyTimeouts.API, s.cfg.BodyTimeouts.Upload
	for _, p := range []string{"data/contacts", "data/contacts/csv", "data/contacts/json",
		"data/orders", "data/orders/csv", "data/orders/json", "data/simple_orders", "data/simple_orders/csv"} {
		s.cdp("POST "+cdpPrefix+p, s.cfg.Imports.MaxBytes, upload, s.cdpUpload)
	}
	s.cdp("GET "+cdpPrefix+"last_uploadings", maxSchemaBody, api, s.cdpLastUploadings)
	s.cdp("GET "+cdpPrefix+"uploading/{uploading}", maxSchemaBody, api, s.cdpUploading)
	s.cdp("GET "+cdpPrefix+"uploadings/{uploading}", maxSchemaBody, api, s.cdpUploading)
	s.cdp("GET "+cdpPrefix+"schema/order_statuses", maxSchemaBody, api, s.cdpGetStatuses)
	s.cdp("POST "+cdpPrefix+"schema/order_statuses", maxSchemaBody, api, s.cdpPostStatuses)
	s.cdp("GET "+cdpPrefix+"schema/attributes", maxSchemaBody, api, s.cdpGetAttributes)
	s.cdp("POST "+cdpPrefix+"schema/attributes", maxSchemaBody, api, s.cdpPostAttributes)
	s.cdp("POST "+cdpPrefix+"schema/products", maxProductsBody, upload, s.cdpPostProducts)
	s.cdp("GET "+cdpPrefix+"schema/types", maxSchemaBody, api, s.cdpTypes)
	s.cdp("GET "+cdpPrefix+"schema/predefined_types", maxSchemaBody, api, s.cdpTypes)
	// Everything else there (offline conversions, calls, costs) is not
	// served yet: answer in Metrica's shape so uploaders log something useful.
	s.handle("/cdp/", s.cdpNotFound)
	s.handle("/management/", s.cdpNotFound)
}

// cdpError writes Metrica's error body:
// {"errors": [{"error_type", "message", "location"}], "code", "message"}.
func cdpError(w http.ResponseWriter, status int, typ, message, location string, more ...crm.RowError) {
	type item struct {
		Type     string `json:"error_type"`
		Message  string `json:"message"`
		Location string `json:"location,omitempty"`
	}
	items := []item{{typ, message, location}}
	for _, e := range more {
		loc := fmt.Sprintf("line %d", e.Line)
		if e.Column != "" {
			loc += ", column " + e.Column
		}
		items = append(items, item{typ, e.Message, loc})
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `OAuth realm="throughline"`)
	}
	writeJSON(w, status, map[string]any{"errors": items, "code": status, "message": message})
}

// cdp registers a Metrica-style route: the token comes as "Authorization:
// OAuth <token>" (what Metrica's uploaders send), "Bearer <token>", or
// ?oauth_token=. No token is 401; a token that is not valid is 403
// invalid_token; a counter the token does not act for — existing or not —
// is 403 access_denied, as Metrica answers.
func (s *Server) cdp(pattern string, limit int64, within time.Duration, h func(w http.ResponseWriter, r *http.Request, c counter.Counter)) {
	s.guards[pattern] = "cdp"
	s.handleLimited(pattern, limit, within, func(w http.ResponseWriter, r *http.Request) {
		tok := r.URL.Query().Get("oauth_token")
		if scheme, t, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " "); ok &&
			(strings.EqualFold(scheme, "OAuth") || strings.EqualFold(scheme, "Bearer")) {
			tok = strings.TrimSpace(t)
		}
		if tok == "" {
			cdpError(w, http.StatusUnauthorized, "unauthorized", "Missing oauth_token: send 'Authorization: OAuth <token>'", "Authorization")
			return
		}
		tokenCounter, err := counter.Authenticate(r.Context(), s.db, tok)
		if errors.Is(err, counter.ErrUnauthorized) {
			cdpError(w, http.StatusForbidden, "invalid_token", "Invalid oauth_token", "Authorization")
			return
		}
		if err != nil {
			s.cdpFail(w, r, err)
			return
		}
		id, perr := strconv.ParseInt(r.PathValue("counterId"), 10, 64)
		if perr != nil || id != tokenCounter {
			cdpError(w, http.StatusForbidden, "access_denied", "Access is denied", "counterId")
			return
		}
		c, err := s.counters.Get(r.Context(), id)
		if err != nil {
			s.cdpFail(w, r, err)
			return
		}
		h(w, r, c)
	}, false)
}

// cdpFail answers an unexpected error: 503 backend_error, logged.
func (s *Server) cdpFail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	s.log.Error("CRM upload API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	cdpError(w, http.StatusServiceUnavailable, "backend_error", "Internal error; try again later", "")
}

func (s *Server) cdpNotFound(w http.ResponseWriter, r *http.Request) {
	cdpError(w, http.StatusNotFound, "not_found", "Throughline does not serve "+r.Method+" "+r.URL.Path, r.URL.Path)
}

// uploading is Metrica's UploadingMetaExternal, plus Throughline's own
// record of the import (counts, rejected rows) under "import".
type uploading struct {
	ID            string      `json:"uploading_id"`
	Datetime      string      `json:"datetime"` // in the counter's time zone
	Validation    string      `json:"api_validation_status"`
	ElementsCount int         `json:"elements_count"`
	EntityType    string      `json:"entity_type"`
	Format        string      `json:"uploading_format"`
	Source        string      `json:"uploading_source"`
	Import        *crm.Result `json:"import"`
}

func toUploading(r *crm.Result, loc *time.Location) uploading {
	u := uploading{ID: r.ID, Datetime: r.StartedAt.In(loc).Format(time.DateTime), Validation: "PASSED",
		ElementsCount: r.Read, EntityType: "SYSTEM", Format: r.Format, Source: "API", Import: r}
	if r.Status != crm.StatusPassed {
		u.Validation = "FAILED"
	}
	return u
}

// cdpUpload takes contacts, orders or simple orders, as CSV (a multipart
// part "file", or the raw body) or JSON.
func (s *Server) cdpUpload(w http.ResponseWriter, r *http.Request, c counter.Counter) {
	// The route says what is uploaded ("POST /cdp/…/{counterId}/data/orders/json"),
	// not the raw path, whose counter id may be written "01".
	rest := strings.TrimPrefix(r.Pattern, "POST "+cdpPrefix+"data/")
	entity, form, _ := strings.Cut(rest, "/")
	var intake crm.Intake
	attrEntity := crm.EntityOrder
	switch entity {
	case "contacts":
		intake, attrEntity = crm.ContactsUp, crm.EntityContact
	case "orders":
		intake = crm.OrdersUpload
	default:
		intake = crm.SimpleOrders
	}
	q := r.URL.Query()
	if q.Get("merge_mode") == "" {
		cdpError(w, http.StatusBadRequest, "missing_parameter", "merge_mode is required: SAVE, UPDATE or APPEND", "merge_mode")
		return
	}
	mode, ok := crm.ParseMergeMode(q.Get("merge_mode"))
	if !ok {
		cdpError(w, http.StatusBadRequest, "invalid_parameter", fmt.Sprintf("merge_mode %q is not SAVE, UPDATE or APPEND", q.Get("merge_mode")), "merge_mode")
		return
	}
	var delim rune
	switch strings.ToUpper(q.Get("delimiter_type")) {
	case "":
	case "COMMA":
		delim = ','
	case "SEMICOLON":
		delim = ';'
	case "TAB":
		delim = '\t'
	default:
		cdpError(w, http.StatusBadRequest, "invalid_parameter", fmt.Sprintf("delimiter_type %q is not COMMA, SEMICOLON or TAB", q.Get("delimiter_type")), "delimiter_type")
		return
	}
	mapping, err := crm.ParseColumnsMapping(q.Get("columns_mapping"))
	if err != nil {
		cdpError(w, http.StatusBadRequest, "invalid_parameter", err.Error(), "columns_mapping")
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	format := "CSV"
	switch {
	case form == "json":
		format = "JSON"
	case form == "csv", intake == crm.SimpleOrders:
	case mt == "application/json":
		format = "JSON"
	case mt == "multipart/form-data", mt == "text/csv", mt == "text/plain", mt == "application/octet-stream", mt == "application/vnd.ms-excel":
	default:
		cdpError(w, http.StatusBadRequest, "invalid_parameter",
			fmt.Sprintf("Content-Type %q: send CSV as multipart/form-data (part \"file\") or text/csv, or JSON as application/json", r.Header.Get("Content-Type")), "Content-Type")
		return
	}
	attrs, err := crm.Attributes(r.Context(), s.db, c.ID, attrEntity)
	if err != nil {
		s.cdpFail(w, r, err)
		return
	}
	origin := "request body"
	open := func() (crm.RowReader, error) {
		body := io.Reader(r.Body)
		if format == "CSV" && mt == "multipart/form-data" {
			part, name, err := filePart(r)
			if err != nil {
				return nil, err
			}
			body, origin = part, name
		}
		f := crm.MetricaFormat{Intake: intake, Location: c.Location(), Attributes: attrs, Mapping: mapping, Delimiter: delim}
		if format == "JSON" {
			return crm.NewMetricaJSONReader(body, f)
		}
		return crm.NewMetricaCSVReader(body, f)
	}
	res, err := crm.Import(r.Context(), s.db, c.ID, crm.Options{Intake: intake, Format: format, Source: "API", Origin: origin,
		Mode: mode, TempDir: s.cfg.Imports.TempDir}, open)
	if err == nil {
		writeJSON(w, http.StatusOK, map[string]any{"uploading": toUploading(res, c.Location())})
		return
	}
	var fileErr *crm.FileError
	var rejected *crm.RejectedError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		cdpError(w, http.StatusBadRequest, "invalid_uploading",
			fmt.Sprintf("the upload is larger than the limit of %d bytes (--max-import-size)", tooLarge.Limit), "file")
	case errors.As(err, &fileErr) && format == "JSON" && strings.Contains(fileErr.Message, "JSON"):
		cdpError(w, http.StatusBadRequest, "invalid_json", fileErr.Message, fileErr.Column)
	case errors.As(err, &fileErr):
		cdpError(w, http.StatusBadRequest, "invalid_uploading", fileErr.Message, fileErr.Column)
	case errors.As(err, &rejected):
		first := rejected.First[0]
		loc := fmt.Sprintf("line %d", first.Line)
		if first.Column != "" {
			loc += ", column " + first.Column
		}
		cdpError(w, http.StatusBadRequest, "invalid_uploading",
			fmt.Sprintf("%d rows rejected, nothing was loaded (uploading %s); first: %s", rejected.Rejected, res.ID, first.Message), loc, rejected.First[1:]...)
	default:
		s.cdpFail(w, r, err)
	}
}

// filePart finds the CSV in a multipart body: the part named "file", or the
// first part that carries a file (some uploaders name it after the file).
func filePart(r *http.Request) (io.Reader, string, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, "", &crm.FileError{Column: "file", Message: "the multipart body cannot be read: " + err.Error()}
	}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, "", &crm.FileError{Column: "file", Message: `the multipart body has no part "file" with the CSV`}
		}
		if err != nil {
			return nil, "", &crm.FileError{Column: "file", Message: "the multipart body cannot be read: " + err.Error()}
		}
		if p.FormName() == "file" || p.FileName() != "" {
			name := p.FileName()
			if name == "" {
				name = "file"
			}
			return p, name, nil
		}
	}
}

func (s *Server) cdpLastUploadings(w http.ResponseWriter, r *http.Request, c counter.Counter) {
	q := r.URL.Query()
	limit := 10
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			cdpError(w, http.StatusBadRequest, "invalid_parameter", "limit must be from 1 to 1000", "limit")
			return
		}
		limit = n
	}
	var before time.Time
	if v := q.Get("datetime_offset"); v != "" {
		t, err := time.ParseInLocation(time.DateTime, v, c.Location())
		if err != nil {
			if t, err = time.Parse(time.RFC3339, v); err != nil {
				cdpError(w, http.StatusBadRequest, "invalid_parameter", "datetime_offset must be yyyy-MM-dd HH:mm:ss (the counter's time zone) or RFC 3339", "datetime_offset")
				return
			}
		}
		before = t.UTC()
	}
	if v := q.Get("source"); v != "" && !strings.EqualFold(v, "API") {
		cdpError(w, http.StatusBadRequest, "invalid_parameter", "source must be API", "source")
		return
	}
	runs, err := crm.ListImports(r.Context(), s.db, c.ID, crm.ImportQuery{Source: "API", Before: before, Limit: limit})
	if err != nil {
		s.cdpFail(w, r, err)
		return
	}
	out := make([]uploading, len(runs))
	for i, run := range runs {
		out[i] = toUploading(run, c.Location())
	}
	writeJSON(w, http.StatusOK, map[string]any{"uploadings": out})
}

func (s *Server) cdpUploading(w http.ResponseWriter, r *http.Request, c counter.Counter) {
	run, err := crm.GetImport(r.Context(), s.db, c.ID, r.PathValue("uploading"))
	if errors.Is(err, crm.ErrNotFound) {
		cdpError(w, http.StatusNotFound, "not_found", "No uploading "+r.PathValue("uploading"), "uploading_id")
		return
	}
	if err != nil {
		s.cdpFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"uploading": toUploading(run, c.Location())})
}

// decodeCDP reads a schema call's JSON body.
func decodeCDP(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			cdpError(w, http.StatusBadRequest, "invalid_json", fmt.Sprintf("the body is larger than %d bytes", tooLarge.Limit), "body")
		} else {
			cdpError(w, http.StatusBadRequest, "invalid_json", "malformed JSON: "+err.Error(), "body")
		}
		return false
	}
	return true
}

// cdpSchemaFail answers a validation error of a schema call.
func (s *Server) cdpSchemaFail(w http.ResponseWriter, r *http.Request, err error) {
	var fileErr *crm.FileError
	if errors.As(err, &fileErr) {
		cdpError(w, http.StatusBadRequest, "invalid_parameter", fileErr.Message, fileErr.Column)
		return
	}
	s.cdpFail(w, r, err)
}

func (s *Server) cdpGetStatuses(w http.ResponseWriter, r *http.Request, c counter.Counter) {
	st, err := crm.Statuses(r.Context(), s.db, c.ID)
	if err != nil {
		s.cdpFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"order_statuses": st})
}

// stringList is goal_action_ids: a list, or (as Metrica's own sample sends
// it) one string.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*l = nil
		if one != "" {
			*l = []string{one}
		}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("goal_action_ids must be a list of goal ids")
	}
	*l = many
	return nil
}

// cdpPostStatuses maps statuses to types, by id; ids not sent stay as they are.
func (s *Server) cdpPostStatuses(w http.ResponseWriter, r *http.Request, c counter.Counter) {
	var req struct {
		OrderStatuses []struct {
			ID            string     `json:"id"`
			Type          string     `json:"type"`
			Humanized     string     `json:"humanized"`
			GoalActionIDs stringList `json:"goal_action_ids"`
		} `json:"order_statuses"`
	}
	if !decodeCDP(w, r, &req) {
		return
	}
	if req.OrderStatuses == nil {
		cdpError(w, http.StatusBadRequest, "missing_parameter", "order_statuses is required", "order_statuses")
		return
	}
	list := make([]crm.Status, len(req.OrderStatuses))
	for i, st := range req.OrderStatuses {
		list[i] = crm.Status{Code: st.ID, Type: crm.StatusType(st.Type), Humanized: st.Humanized, GoalActionIDs: st.GoalActionIDs, Source: "USER"}
	}
	if err := crm.SaveStatuses(r.Context(), s.db, c.ID, list, false); err != nil {
		s.cdpSchemaFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
}

func entityParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	v := r.URL.Query().Get("entity_type")
	if v == "" {
		cdpError(w, http.StatusBadRequest, "missing_parameter", "entity_type is required: CONTACT or ORDER", "entity_type")
		return "", false
	}
	e, ok := crm.ParseEntityType(v)
	if !ok || e == crm.EntityProduct {
		cdpError(w, http.StatusBadRequest, "invalid_parameter", fmt.Sprintf("entity_type %q is not CONTACT or ORDER", v), "entity_type")
		return "", false
	}
	return e, true
}

func (s *Server) cdpGetAttributes(w http.ResponseWriter, r *http.Request, c counter.Counter) {
	entity, ok := entityParam(w, r)
	if !ok {
		return
	}
	custom, err := crm.Attributes(r.Context(), s.db, c.ID, entity)
	if err != nil {
		s.cdpFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"system_attributes": crm.SystemAttributes(entity), "custom_attributes": custom})
}

func (s *Server) cdpPostAttributes(w http.ResponseWriter, r *http.Request, c counter.Counter) {
	entity, ok := entityParam(w, r)
	if !ok {
		return
	}
	var req struct {
		Attributes []crm.Attribute `json:"attributes"`
	}
	if !decodeCDP(w, r, &req) {
		return
	}
	if err := crm.SaveAttributes(r.Context(), s.db, c.ID, entity, req.Attributes); err != nil {
		s.cdpSchemaFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
}

// cdpPostProducts reads {"attributes": […], "items": […]} item by item, so
// the list's size, not its JSON, bounds the memory it takes.
func (s *Server) cdpPostProducts(w http.ResponseWriter, r *http.Request, c counter.Counter) {
	attrs, items, err := decodeProducts(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		var fileErr *crm.FileError
		switch {
		case errors.As(err, &tooLarge):
			cdpError(w, http.StatusBadRequest, "invalid_json", fmt.Sprintf("the body is larger than %d bytes", tooLarge.Limit), "body")
		case errors.As(err, &fileErr):
			cdpError(w, http.StatusBadRequest, "invalid_parameter", fileErr.Message, fileErr.Column)
		default:
			cdpError(w, http.StatusBadRequest, "invalid_json", "malformed JSON: "+err.Error(), "body")
		}
		return
	}
	if err := crm.SaveProducts(r.Context(), s.db, c.ID, attrs, items); err != nil {
		s.cdpSchemaFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
}

func decodeProducts(body io.Reader) ([]crm.Attribute, []crm.Product, error) {
	dec := json.NewDecoder(body)
	if tok, err := dec.Token(); err != nil {
		return nil, nil, err
	} else if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, errors.New(`the body must be an object {"attributes": […], "items": […]}`)
	}
	var attrs []crm.Attribute
	var items []crm.Product
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		key, _ := tok.(string)
		switch key {
		case "attributes":
			if err := dec.Decode(&attrs); err != nil {
				return nil, nil, err
			}
			if len(attrs) > crm.MaxProducts {
				return nil, nil, &crm.FileError{Column: "attributes", Message: fmt.Sprintf("more than %d attributes", crm.MaxProducts)}
			}
		case "items":
			if tok, err := dec.Token(); err != nil {
				return nil, nil, err
			} else if d, ok := tok.(json.Delim); !ok || d != '[' {
				return nil, nil, &crm.FileError{Column: "items", Message: "must be a list"}
			}
			for dec.More() {
				if len(items) == crm.MaxProducts {
					return nil, nil, &crm.FileError{Column: "items", Message: fmt.Sprintf("more than %d items", crm.MaxProducts)}
				}
				var p crm.Product
				if err := dec.Decode(&p); err != nil {
					return nil, nil, err
				}
				items = append(items, p)
			}
			if _, err := dec.Token(); err != nil {
				return nil, nil, err
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, nil, err
			}
		}
	}
	return attrs, items, nil
}

func (s *Server) cdpTypes(w http.ResponseWriter, r *http.Request, c counter.Counter) {
	type typ struct {
		Name      string `json:"name"`
		Group     string `json:"group"`
		Humanized string `json:"humanized"`
	}
	var out []typ
	for _, a := range crm.AttributeTypes() {
		out = append(out, typ{a.Name, a.TypeGroup, a.TypeHumanized})
	}
	if strings.HasSuffix(r.URL.Path, "/schema/types") {
		out = append(out, typ{"product", "SYSTEM_LIST", "Товар"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"types": out})
}

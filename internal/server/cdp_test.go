package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/url"
	"strings"
	"testing"

	"github.com/throughline/throughline/internal/store"
	"github.com/throughline/throughline/internal/store/storetest"
)

// metricaErr is Metrica's error body.
type metricaErr struct {
	Errors []struct {
		Type     string `json:"error_type"`
		Message  string `json:"message"`
		Location string `json:"location"`
	} `json:"errors"`
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (r response) metrica(t *testing.T) metricaErr {
	t.Helper()
	var e metricaErr
	if err := json.Unmarshal(r.body, &e); err != nil || len(e.Errors) == 0 || e.Code != r.status || e.Message == "" {
		t.Fatalf("status %d: not Metrica's error body: %s", r.status, r.body)
	}
	return e
}

type uploadingResp struct {
	Uploading struct {
		ID            string `json:"uploading_id"`
		Datetime      string `json:"datetime"`
		Validation    string `json:"api_validation_status"`
		ElementsCount int    `json:"elements_count"`
		EntityType    string `json:"entity_type"`
		Format        string `json:"uploading_format"`
		Source        string `json:"uploading_source"`
		Import        struct {
			Inserted, Updated, Unchanged, Rejected int
		} `json:"import"`
	} `json:"uploading"`
}

// multipartCSV builds the body Metrica's documentation shows: part "file",
// filename data.csv, text/csv.
func multipartCSV(t *testing.T, field, csvText string) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name=%q; filename="data.csv"`, field)}
	h["Content-Type"] = []string{"text/csv"}
	p, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(p, csvText)
	mw.Close()
	return mw.FormDataContentType(), &buf
}

// cdp sends a request to the Metrica-compatible API with an OAuth token.
func (f *fixture) cdp(t *testing.T, method, path, token, contentType string, body io.Reader) response {
	t.Helper()
	h := []string{}
	if token != "" {
		h = append(h, "Authorization", "OAuth "+token)
	}
	if contentType != "" {
		h = append(h, "Content-Type", contentType)
	}
	return f.do(t, method, path, "", body, h...)
}

const simpleOrdersSample = "id,create_date_time,client_uniq_id,client_ids,emails,phones,order_status,revenue,cost,goals,currency\n" +
	"s_ord1,10.01.2024 11:56,s_user1,,\"mail@example.com,mail2@example.com\",,PAID,200,150,\"oplata_cash:200,filial_1\",\n" +
	"s_ord2,20.01.2024 11:59,,12345,mail3@example.com,,,200,150,,EUR\n" +
	",12.02.2024,,34456,,79876543210,SPAM,,,plohoy_lead,\n"

func TestCDPAuth(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		path := "/cdp/api/v1/counter/" + id(f.a) + "/schema/order_statuses"
		cases := []struct {
			name   string
			path   string
			header []string
			status int
			typ    string
		}{
			{"no token", path, nil, 401, "unauthorized"},
			{"bad token", path, []string{"Authorization", "OAuth tl_1_x_y"}, 403, "invalid_token"},
			{"other counter's token", path, []string{"Authorization", "OAuth " + f.tokB}, 403, "access_denied"},
			{"counter that does not exist", "/cdp/api/v1/counter/999999/schema/order_statuses", []string{"Authorization", "OAuth " + f.tokA}, 403, "access_denied"},
			{"OAuth", path, []string{"Authorization", "OAuth " + f.tokA}, 200, ""},
			{"Bearer", path, []string{"Authorization", "Bearer " + f.tokA}, 200, ""},
			{"query", path + "?oauth_token=" + url.QueryEscape(f.tokA), nil, 200, ""},
		}
		for _, c := range cases {
			r := f.do(t, "GET", c.path, "", nil, c.header...)
			if r.status != c.status {
				t.Errorf("%s: status %d, want %d: %s", c.name, r.status, c.status, r.body)
				continue
			}
			if c.typ != "" {
				if e := r.metrica(t); e.Errors[0].Type != c.typ {
					t.Errorf("%s: error_type %q, want %q", c.name, e.Errors[0].Type, c.typ)
				}
			}
		}
	})
}

func TestCDPSimpleOrdersUpload(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		base := "/cdp/api/v1/counter/" + id(f.a)
		ct, body := multipartCSV(t, "file", simpleOrdersSample)
		r := f.cdp(t, "POST", base+"/data/simple_orders?merge_mode=SAVE&delimiter_type=COMMA", f.tokA, ct, body)
		if r.status != 200 {
			t.Fatalf("upload: %d %s", r.status, r.body)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q", ct)
		}
		var up uploadingResp
		if err := json.Unmarshal(r.body, &up); err != nil {
			t.Fatal(err)
		}
		u := up.Uploading
		if u.ID == "" || u.Validation != "PASSED" || u.ElementsCount != 3 || u.EntityType != "SYSTEM" || u.Format != "CSV" ||
			u.Source != "API" || len(u.Datetime) != len("2024-01-01 00:00:00") || u.Import.Inserted != 3 {
			t.Errorf("uploading = %+v", u)
		}
		// The same request to the /csv path, as UPDATE: every row unchanged.
		ct, body = multipartCSV(t, "data.csv", simpleOrdersSample) // a part named after the file, as one PHP uploader sends
		r = f.cdp(t, "POST", base+"/data/simple_orders/csv?merge_mode=update", f.tokA, ct, body)
		if r.status != 200 || !strings.Contains(string(r.body), `"unchanged":3`) {
			t.Fatalf("re-upload: %d %s", r.status, r.body)
		}

		r = f.cdp(t, "GET", base+"/last_uploadings?limit=1", f.tokA, "", nil)
		var list struct {
			Uploadings []struct {
				ID string `json:"uploading_id"`
			}
		}
		if json.Unmarshal(r.body, &list); r.status != 200 || len(list.Uploadings) != 1 || list.Uploadings[0].ID == u.ID {
			t.Fatalf("last_uploadings?limit=1: %d %s", r.status, r.body)
		}
		if r = f.cdp(t, "GET", base+"/uploading/"+u.ID, f.tokA, "", nil); r.status != 200 || !strings.Contains(string(r.body), u.ID) {
			t.Errorf("uploading/{id}: %d %s", r.status, r.body)
		}
		if r = f.cdp(t, "GET", "/cdp/api/v1/counter/"+id(f.b)+"/uploading/"+u.ID, f.tokB, "", nil); r.status != 404 || r.metrica(t).Errors[0].Type != "not_found" {
			t.Errorf("another counter's uploading: %d %s", r.status, r.body)
		}

		// The orders are there for Throughline's own API.
		r = f.do(t, "GET", "/api/v1/counters/"+id(f.a)+"/orders/s_ord1", f.tokA, nil)
		if r.status != 200 || !strings.Contains(string(r.body), `"status_type":"PAID"`) || !strings.Contains(string(r.body), `"margin":50.00`) {
			t.Errorf("order s_ord1: %d %s", r.status, r.body)
		}
		if r = f.do(t, "GET", "/api/v1/counters/"+id(f.b)+"/orders/s_ord1", f.tokB, nil); r.status != 404 {
			t.Errorf("counter B sees A's order: %d %s", r.status, r.body)
		}
	})
}

func TestCDPContactsAndOrders(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		base := "/cdp/api/v1/counter/" + id(f.a)
		// Declare the custom attribute first, as Metrica requires.
		r := f.cdp(t, "POST", base+"/schema/attributes?entity_type=contact&entity_subtype=x", f.tokA, "application/json",
			strings.NewReader(`{"attributes": [{"name": "age", "type_name": "numeric", "multivalued": false, "humanized": "Возраст"}]}`))
		if r.status != 200 || string(bytes.TrimSpace(r.body)) != `{"success":true}` {
			t.Fatalf("schema/attributes: %d %s", r.status, r.body)
		}
		// Metrica's documented request: a mapping, the CSV as the raw body here.
		mapping := url.QueryEscape(`"uniq_id":"ID","name":"Name","emails":"Email","age":"Age"`)
		r = f.cdp(t, "POST", base+"/data/contacts/csv?merge_mode=SAVE&delimiter_type=COMMA&columns_mapping="+mapping, f.tokA, "text/csv",
			strings.NewReader("ID,Name,Email,Age\n11,John J.,example@example.com,40\n42,Michael L.,somebody@example.com,24\n"))
		if r.status != 200 {
			t.Fatalf("contacts CSV: %d %s", r.status, r.body)
		}
		r = f.cdp(t, "POST", base+"/data/orders?merge_mode=APPEND", f.tokA, "application/json; charset=utf-8",
			strings.NewReader(`{"orders": [{"id": "704", "client_uniq_id": "11", "client_type": "CONTACT", "order_status": "new",
				"create_date_time": "2024-09-21 09:48:23", "revenue": 5000, "cost": 4000, "products": {"pear": 10}}]}`))
		if r.status != 200 {
			t.Fatalf("orders JSON on the legacy path: %d %s", r.status, r.body)
		}
		r = f.do(t, "GET", "/api/v1/counters/"+id(f.a)+"/contacts/11", f.tokA, nil)
		var c struct {
			Name       string
			Emails     []string
			Attributes map[string][]string
			Orders     []string
		}
		if json.Unmarshal(r.body, &c); r.status != 200 || c.Name != "John J." || c.Emails[0] != "example@example.com" ||
			c.Attributes["age"][0] != "40" || len(c.Orders) != 1 || c.Orders[0] != "704" {
			t.Errorf("contact 11: %d %s", r.status, r.body)
		}

		// Map "new" (goal_action_ids as the bare string Metrica's sample sends).
		r = f.cdp(t, "POST", base+"/schema/order_statuses", f.tokA, "application/json",
			strings.NewReader(`{"order_statuses": [{"id": "new", "humanized": "Новый", "type": "in_progress", "goal_action_ids": "new_order"}]}`))
		if r.status != 200 {
			t.Fatalf("map statuses: %d %s", r.status, r.body)
		}
		r = f.cdp(t, "GET", base+"/schema/order_statuses", f.tokA, "", nil)
		if r.status != 200 || !strings.Contains(string(r.body), `"type":"IN_PROGRESS"`) || !strings.Contains(string(r.body), `"goal_action_ids":["new_order"]`) {
			t.Errorf("statuses: %d %s", r.status, r.body)
		}
		if r = f.do(t, "GET", "/api/v1/counters/"+id(f.a)+"/orders/704", f.tokA, nil); !strings.Contains(string(r.body), `"status_type":"IN_PROGRESS"`) {
			t.Errorf("order 704 after mapping: %s", r.body)
		}
		r = f.cdp(t, "GET", base+"/schema/attributes?entity_type=CONTACT", f.tokA, "", nil)
		if r.status != 200 || !strings.Contains(string(r.body), `"custom_attributes":[{"name":"age"`) || !strings.Contains(string(r.body), `"name":"uniq_id"`) {
			t.Errorf("attributes: %d %s", r.status, r.body)
		}
		r = f.cdp(t, "POST", base+"/schema/products", f.tokA, "application/json",
			strings.NewReader(`{"attributes": [], "items": [{"name": "pear", "humanized": "Груша"}]}`))
		if r.status != 200 {
			t.Errorf("products: %d %s", r.status, r.body)
		}
		if r = f.cdp(t, "GET", base+"/schema/types", f.tokA, "", nil); r.status != 200 || !strings.Contains(string(r.body), `"name":"numeric"`) {
			t.Errorf("types: %d %s", r.status, r.body)
		}
	})
}

func TestCDPBadUploads(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixtureWith(t, db, Config{Imports: ImportsConfig{MaxBytes: 4096}})
		base := "/cdp/api/v1/counter/" + id(f.a)
		ordersCSV := "id,client_uniq_id,client_type,order_status,create_date_time,revenue\n"
		cases := []struct {
			name, path, ct, body string
			typ, location        string
		}{
			{"no merge_mode", "/data/orders/csv", "text/csv", ordersCSV, "missing_parameter", "merge_mode"},
			{"bad merge_mode", "/data/orders/csv?merge_mode=REPLACE", "text/csv", ordersCSV, "invalid_parameter", "merge_mode"},
			{"bad delimiter", "/data/orders/csv?merge_mode=SAVE&delimiter_type=PIPE", "text/csv", ordersCSV, "invalid_parameter", "delimiter_type"},
			{"bad mapping", "/data/orders/csv?merge_mode=SAVE&columns_mapping=id=ID", "text/csv", ordersCSV, "invalid_parameter", "columns_mapping"},
			{"bare path, unknown type", "/data/orders?merge_mode=SAVE", "application/xml", "<x/>", "invalid_parameter", "Content-Type"},
			{"missing column", "/data/orders/csv?merge_mode=SAVE", "text/csv", "id,client_uniq_id\n1,C\n", "invalid_uploading", "client_type"},
			{"bad rows", "/data/orders/csv?merge_mode=SAVE", "text/csv", ordersCSV +
				"1,C,CONTACT,PAID,2024-01-01 10:00,10\n2,C,CONTACT,PAID,2024-02-30 10:00,10\n3,C,CONTACT,PAID,2024-01-01 10:00,-5\n",
				"invalid_uploading", "line 3, column create_date_time"},
			{"malformed JSON", "/data/orders/json?merge_mode=SAVE", "application/json", `{"orders": [{"id": "1",}]}`, "invalid_json", ""},
			{"too large", "/data/orders/csv?merge_mode=SAVE", "text/csv", ordersCSV + strings.Repeat("1,C,CONTACT,PAID,2024-01-01 10:00,10\n", 200), "invalid_uploading", "file"},
			{"multipart without the file", "/data/simple_orders?merge_mode=SAVE", "multipart/form-data; boundary=xyz", "--xyz\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nv\r\n--xyz--\r\n", "invalid_uploading", "file"},
		}
		for _, c := range cases {
			r := f.cdp(t, "POST", base+c.path, f.tokA, c.ct, strings.NewReader(c.body))
			if r.status != 400 {
				t.Errorf("%s: status %d: %s", c.name, r.status, r.body)
				continue
			}
			e := r.metrica(t)
			if e.Errors[0].Type != c.typ || e.Errors[0].Location != c.location {
				t.Errorf("%s: %+v, want %s at %q", c.name, e.Errors[0], c.typ, c.location)
			}
		}
		// The rejected upload lists every bad row and loaded nothing.
		r := f.cdp(t, "POST", base+"/data/orders/csv?merge_mode=SAVE", f.tokA, "text/csv", strings.NewReader(ordersCSV+
			"1,C,CONTACT,PAID,2024-01-01 10:00,10\n2,C,CONTACT,PAID,2024-02-30 10:00,10\n3,C,CONTACT,PAID,2024-01-01 10:00,-5\n"))
		if e := r.metrica(t); len(e.Errors) != 2 || e.Errors[1].Location != "line 4, column revenue" {
			t.Errorf("rejected rows: %+v", e)
		}
		if r := f.do(t, "GET", "/api/v1/counters/"+id(f.a)+"/orders/1", f.tokA, nil); r.status != 404 {
			t.Errorf("a rejected upload loaded row 1: %d", r.status)
		}
		// It is in the uploads list as FAILED.
		r = f.cdp(t, "GET", base+"/last_uploadings", f.tokA, "", nil)
		if !strings.Contains(string(r.body), `"api_validation_status":"FAILED"`) {
			t.Errorf("last_uploadings: %s", r.body)
		}
		// The route, not the raw path, says what is uploaded: a counter id
		// written "01" does not turn contacts into simple orders.
		r = f.cdp(t, "POST", "/cdp/api/v1/counter/0"+id(f.a)+"/data/contacts/csv?merge_mode=SAVE", f.tokA, "text/csv", strings.NewReader("uniq_id,name\nz1,Zoe\n"))
		if r.status != 200 {
			t.Errorf("contacts via a zero-padded counter id: %d %s", r.status, r.body)
		}
		if r := f.cdp(t, "POST", "/management/v1/counter/"+id(f.a)+"/offline_conversions/upload", f.tokA, "text/csv", strings.NewReader("x")); r.status != 404 || r.metrica(t).Errors[0].Type != "not_found" {
			t.Errorf("unserved Metrica path: %d %s", r.status, r.body)
		}
	})
}

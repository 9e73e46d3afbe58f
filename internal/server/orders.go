package server

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/throughline/throughline/internal/attribution"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/matching"
)

// listOrders answers GET /api/v1/counters/{id}/orders?from=&to=&status_type=&matched=&model=&limit=&cursor=&format=.
// JSON pages through the orders; format=csv streams every matching order.
func (s *Server) listOrders(w http.ResponseWriter, r *http.Request, id int64) {
	q, from, to, ok := s.queryRange(w, r, id)
	if !ok {
		return
	}
	format := strings.ToLower(q.Get("format"))
	if format != "" && format != "json" && format != "csv" {
		writeError(w, badRequest("format", "format must be json or csv"))
		return
	}
	limit, apiErr := pageSize(q.Get("limit"))
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	st := strings.ToUpper(q.Get("status_type"))
	if _, ok := crm.ParseStatusType(st); !ok && st != "" && st != "UNMAPPED" {
		writeError(w, badRequest("status_type", "status_type must be PAID, IN_PROGRESS, CANCELLED, SPAM, OTHER or UNMAPPED"))
		return
	}
	matched, ok := boolParam(w, q, "matched")
	if !ok {
		return
	}
	model, err := attribution.ParseModel(q.Get("model"))
	if err != nil {
		writeError(w, badRequest("model", "model must be one of %s", strings.Join(attribution.Models, ", ")))
		return
	}
	query := crm.OrderQuery{From: from, To: to, StatusType: st, Matched: matched, Limit: limit, Cursor: q.Get("cursor")}
	if format == "csv" {
		s.ordersCSV(w, r, id, query, model)
		return
	}
	orders := []orderView{}
	next, err := crm.ListOrders(r.Context(), s.db, id, query, func(o *crm.Order) error {
		orders = append(orders, orderView{OrderView: o.View()})
		return nil
	})
	if errors.Is(err, crm.ErrBadCursor) {
		writeError(w, badRequest("cursor", "%v", err))
		return
	}
	if err == nil {
		err = s.attribute(r.Context(), id, orders, model)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writePage(w, "orders", orders, next)
}

// orderView is an order with its match: the rung, and the source the model
// credits ("export to any system via the tracker API", as K50 put it).
type orderView struct {
	crm.OrderView
	Match *matching.Attribution `json:"match"` // null: not matched yet
}

// attribute fills the orders' matches.
func (s *Server) attribute(ctx context.Context, counterID int64, orders []orderView, model string) error {
	ids := make([]string, len(orders))
	for i, o := range orders {
		ids[i] = o.ID
	}
	byID, err := matching.Attributions(ctx, s.db, counterID, ids, model)
	if err != nil {
		return err
	}
	for i := range orders {
		orders[i].Match = byID[orders[i].ID]
	}
	return nil
}

// orderCSVHeader are the columns of the orders export: the order, then its
// match and attributed source.
var orderCSVHeader = []string{"id", "created_at", "updated_at", "finished_at", "status", "status_type", "revenue", "cost", "margin",
	"items", "currency", "type", "contact_id", "sid", "client_ids", "caller_phone", "phones", "emails", "comment", "intake", "changed_at",
	"match_rung", "model", "traffic_type", "source", "medium", "campaign", "content", "term", "weight"}

func (s *Server) ordersCSV(w http.ResponseWriter, r *http.Request, id int64, q crm.OrderQuery, model string) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="orders.csv"`)
	cw := csv.NewWriter(w)
	cw.Write(orderCSVHeader)
	wrote := false
	str := func(n *json.Number) string {
		if n == nil {
			return ""
		}
		return n.String()
	}
	tm := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.Format(time.RFC3339)
	}
	// The export is every matching order, a page of 500 at a time: each
	// page's matches are read after the page's rows are closed, so an
	// export holds one reader connection at a time, never two.
	q.Limit, q.Cursor = 500, ""
	var batch []orderView
	flush := func() error {
		if err := s.attribute(r.Context(), id, batch, model); err != nil {
			return err
		}
		for _, o := range batch {
			v := o.OrderView
			st, items := "", ""
			if v.StatusType != nil {
				st = string(*v.StatusType)
			}
			if v.Items != nil {
				items = strconv.FormatInt(*v.Items, 10)
			}
			match := make([]string, 9)
			if m := o.Match; m != nil {
				t := m.Traffic
				match = []string{m.Rung, m.Model, t.Type, t.Source, t.Medium, t.Campaign, t.Content, t.Term, strconv.FormatFloat(m.Weight, 'f', -1, 64)}
			}
			for i := range match[:len(match)-1] {
				match[i] = cell(match[i])
			}
			wrote = true
			if err := cw.Write(append([]string{cell(v.ID), v.CreatedAt.Format(time.RFC3339), tm(v.UpdatedAt), tm(v.FinishedAt), cell(v.Status), st,
				str(v.Revenue), str(v.Cost), str(v.Margin), items, cell(v.Currency), cell(v.Type), cell(v.ContactID), cell(v.SID),
				cell(strings.Join(v.ClientIDs, ",")), v.CallerPhone, strings.Join(v.Phones, ","), cell(strings.Join(v.Emails, ",")),
				cell(v.Comment), string(v.Intake), v.ChangedAt.Format(time.RFC3339)}, match...)); err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	var err error
	for {
		var next string
		next, err = crm.ListOrders(r.Context(), s.db, id, q, func(o *crm.Order) error {
			batch = append(batch, orderView{OrderView: o.View()})
			return nil
		})
		if err == nil {
			err = flush()
		}
		if err != nil || next == "" {
			break
		}
		q.Cursor = next
	}
	if err != nil && !wrote {
		w.Header().Del("Content-Disposition")
		if errors.Is(err, crm.ErrBadCursor) {
			writeError(w, badRequest("cursor", "%v", err))
			return
		}
		s.fail(w, r, err)
		return
	}
	cw.Flush()
	if err != nil {
		s.log.Error("orders export cut short", "counter", id, "err", err)
	}
}

// cell keeps a text cell from being read as a formula by a spreadsheet
// (CSV injection): UTM tags and CRM fields are anyone's text, and a campaign
// named =HYPERLINK(…) must reach the shop's Excel as text. Number columns
// are not passed through it (a negative margin stays a number).
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (s *Server) getOrder(w http.ResponseWriter, r *http.Request, id int64) {
	o, err := crm.GetOrder(r.Context(), s.db, id, r.PathValue("order"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, o.View())
}

func (s *Server) getContact(w http.ResponseWriter, r *http.Request, id int64) {
	c, err := crm.GetContact(r.Context(), s.db, id, r.PathValue("contact"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// getOrderStatuses answers with the mapping and the status codes orders
// carry that it does not map.
func (s *Server) getOrderStatuses(w http.ResponseWriter, r *http.Request, id int64) {
	st, err := crm.Statuses(r.Context(), s.db, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	un, err := crm.UnmappedStatuses(r.Context(), s.db, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"order_statuses": st, "unmapped": un})
}

// putOrderStatuses replaces the counter's mapping with the list given.
func (s *Server) putOrderStatuses(w http.ResponseWriter, r *http.Request, id int64) {
	var req struct {
		OrderStatuses []crm.Status `json:"order_statuses"`
	}
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.OrderStatuses == nil {
		writeError(w, badRequest("order_statuses", "order_statuses is required: a list of {id, type, humanized}"))
		return
	}
	if err := crm.SaveStatuses(r.Context(), s.db, id, req.OrderStatuses, true); err != nil {
		s.fail(w, r, err)
		return
	}
	s.getOrderStatuses(w, r, id)
}

// importLog answers GET /api/v1/counters/{id}/import-log: every import of the
// counter (uploads, CLI, tasks), newest first.
func (s *Server) importLog(w http.ResponseWriter, r *http.Request, id int64) {
	limit, apiErr := pageSize(r.URL.Query().Get("limit"))
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	runs, err := crm.ListImports(r.Context(), s.db, id, crm.ImportQuery{Limit: limit})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"imports": runs})
}

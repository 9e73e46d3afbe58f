package matching

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/throughline/throughline/internal/attribution"
	"github.com/throughline/throughline/internal/store"
)

// ErrNotMatched: the order exists but has not been matched yet (it waits in
// the queue), or does not exist.
var ErrNotMatched = errors.New("matching: order not matched")

// Path is an order's match: the rung, the evidence, and the touch path with
// each model's weights.
type Path struct {
	OrderID   string     `json:"order_id"`
	Rung      string     `json:"rung"`
	Evidence  []Evidence `json:"evidence"`
	Touches   []Touch    `json:"touches"`
	CreatedAt time.Time  `json:"order_created_at"`
	MatchedAt time.Time  `json:"matched_at"`
	Queued    bool       `json:"queued"` // it will be matched again soon (late data arrived)
}

// OrderPath reads an order's match, or ErrNotMatched.
func OrderPath(ctx context.Context, db *store.DB, counterID int64, orderID string) (*Path, error) {
	p := &Path{OrderID: orderID}
	var evidence string
	err := db.Reader().QueryRowContext(ctx, `SELECT rung, evidence, order_created_at, matched_at FROM order_matches
		WHERE counter_id = $1 AND order_id = $2`, counterID, orderID).Scan(&p.Rung, &evidence, &p.CreatedAt, &p.MatchedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotMatched
	}
	if err != nil {
		return nil, fmt.Errorf("matching: path of %s: %w", orderID, err)
	}
	if err := json.Unmarshal([]byte(evidence), &p.Evidence); err != nil {
		return nil, fmt.Errorf("matching: evidence of %s: %w", orderID, err)
	}
	cols := ""
	for _, m := range attribution.Models {
		cols += ", w_" + m
	}
	rows, err := db.Reader().QueryContext(ctx, `SELECT seq, kind, ref, at, traffic_type, source, medium, campaign, content, term`+cols+`
		FROM order_touches WHERE counter_id = $1 AND order_id = $2 ORDER BY seq`, counterID, orderID)
	if err != nil {
		return nil, fmt.Errorf("matching: path of %s: %w", orderID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var t Touch
		w := make([]float64, len(attribution.Models))
		dest := []any{&t.Seq, &t.Kind, &t.Ref, &t.At, &t.Traffic.Type, &t.Traffic.Source, &t.Traffic.Medium,
			&t.Traffic.Campaign, &t.Traffic.Content, &t.Traffic.Term}
		for i := range w {
			dest = append(dest, &w[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("matching: path of %s: %w", orderID, err)
		}
		t.Weights = map[string]float64{}
		for i, m := range attribution.Models {
			t.Weights[m] = w[i]
		}
		p.Touches = append(p.Touches, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("matching: path of %s: %w", orderID, err)
	}
	var one int
	err = db.Reader().QueryRowContext(ctx, `SELECT 1 FROM match_queue WHERE counter_id = $1 AND order_id = $2`, counterID, orderID).Scan(&one)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("matching: is %s queued: %w", orderID, err)
	}
	p.Queued = err == nil
	return p, nil
}

// Attribution is how an order was matched and the touch a model credits
// most: the order's attributed source.
type Attribution struct {
	Rung    string    `json:"rung"`
	Model   string    `json:"model"`
	Kind    string    `json:"touch_kind"` // session, call, lead, none (not found)
	Ref     string    `json:"touch_ref"`
	At      time.Time `json:"touch_at"`
	Traffic Traffic   `json:"traffic"`
	Weight  float64   `json:"weight"` // the touch's share under the model
}

// Attributions returns, for those of the orders that are matched, the rung
// and the touch model credits most (the latest of equals), by order id.
func Attributions(ctx context.Context, db *store.DB, counterID int64, orderIDs []string, model string) (map[string]*Attribution, error) {
	model, err := attribution.ParseModel(model)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Attribution, len(orderIDs))
	d := db.Dialect()
	for start := 0; start < len(orderIDs); start += 500 {
		ids := orderIDs[start:min(start+500, len(orderIDs))]
		where, args := `m.counter_id = $1 AND m.order_id = ANY($2)`, []any{counterID, ids}
		if d != store.Postgres {
			args = []any{counterID}
			for _, id := range ids {
				args = append(args, id)
			}
			where = `m.counter_id = ? AND m.order_id IN (` + d.Params(2, len(ids)) + `)`
		}
		rows, err := db.Reader().QueryContext(ctx, `SELECT m.order_id, m.rung, t.seq, t.kind, t.ref, t.at,
			       t.traffic_type, t.source, t.medium, t.campaign, t.content, t.term, t.w_`+model+`
			FROM order_matches m JOIN order_touches t ON t.counter_id = m.counter_id AND t.order_id = m.order_id
			WHERE `+where+` ORDER BY m.order_id, t.seq`, args...)
		if err != nil {
			return nil, fmt.Errorf("matching: attributions: %w", err)
		}
		for rows.Next() {
			var id, rung string
			var t Touch
			var w float64
			if err := rows.Scan(&id, &rung, &t.Seq, &t.Kind, &t.Ref, &t.At, &t.Traffic.Type, &t.Traffic.Source, &t.Traffic.Medium,
				&t.Traffic.Campaign, &t.Traffic.Content, &t.Traffic.Term, &w); err != nil {
				rows.Close()
				return nil, fmt.Errorf("matching: attributions: %w", err)
			}
			a := out[id]
			if a == nil {
				a = &Attribution{Rung: rung, Model: model, Weight: -1}
				out[id] = a
			}
			if w >= a.Weight { // touches come oldest first: the latest of equals wins
				a.Kind, a.Ref, a.At, a.Traffic, a.Weight = t.Kind, t.Ref, t.At, t.Traffic, w
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("matching: attributions: %w", err)
		}
	}
	return out, nil
}

package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/throughline/throughline/internal/attribution"
	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/matching"
	"github.com/throughline/throughline/internal/store"
)

// Payload is the JSON body of a delivery.
type Payload struct {
	Event      string    `json:"event"` // matched (first match, or another rung), status (the status type changed)
	DeliveryID int64     `json:"delivery_id"`
	CounterID  int64     `json:"counter_id"`
	SentAt     time.Time `json:"sent_at"`
	// Attributed is the touch the default attribution model credits: the
	// order's source in reports. Null only for an order without touches.
	Attributed *Attributed `json:"attributed"`
	// Order is the order as GET …/orders/{orderId} shows it.
	Order crm.OrderView `json:"order"`
	// Match is how the order was matched, as GET …/orders/{orderId}/path
	// shows it: the rung, the evidence, the touches with every model's weights.
	Match *matching.Path `json:"match"`
}

// Attributed is the credited touch's traffic source.
type Attributed struct {
	Model       string `json:"model"` // attribution.Default: last_non_direct
	TrafficType string `json:"traffic_type"`
	Source      string `json:"source"`
	Medium      string `json:"medium"`
	Campaign    string `json:"campaign"`
	Content     string `json:"content"`
	Term        string `json:"term"`
}

// goneError means the delivery's order (or its match) no longer exists:
// there is nothing to send, now or later.
type goneError struct{ msg string }

func (e *goneError) Error() string { return e.msg }

// buildPayload reads the order and its match as they are now and encodes
// the body of delivery d sent at now.
func buildPayload(ctx context.Context, db *store.DB, d *Delivery, now time.Time) ([]byte, error) {
	o, err := crm.GetOrder(ctx, db, d.CounterID, d.OrderID)
	if errors.Is(err, crm.ErrNotFound) {
		return nil, &goneError{fmt.Sprintf("order %q no longer exists; nothing to send", d.OrderID)}
	}
	if err != nil {
		return nil, fmt.Errorf("webhooks: payload of delivery %d: %w", d.ID, err)
	}
	path, err := matching.OrderPath(ctx, db, d.CounterID, d.OrderID)
	if errors.Is(err, matching.ErrNotMatched) {
		return nil, &goneError{fmt.Sprintf("order %q is no longer matched; nothing to send", d.OrderID)}
	}
	if err != nil {
		return nil, fmt.Errorf("webhooks: payload of delivery %d: %w", d.ID, err)
	}
	if path.Touches == nil {
		path.Touches = []matching.Touch{}
	}
	if path.Evidence == nil {
		path.Evidence = []matching.Evidence{}
	}
	p := Payload{Event: d.Event, DeliveryID: d.ID, CounterID: d.CounterID, SentAt: now, Attributed: credited(path.Touches),
		Order: o.View(), Match: path}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // the receiver reads JSON, not HTML: keep <, >, & readable
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("webhooks: payload of delivery %d: %w", d.ID, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}

// credited is the touch with the largest weight under the default model
// (the later one on a tie, as the last-touch models read a path).
func credited(ts []matching.Touch) *Attributed {
	var best *matching.Touch
	for i := range ts {
		if best == nil || ts[i].Weights[attribution.Default] >= best.Weights[attribution.Default] {
			best = &ts[i]
		}
	}
	if best == nil {
		return nil
	}
	t := best.Traffic
	return &Attributed{Model: attribution.Default, TrafficType: t.Type, Source: t.Source, Medium: t.Medium,
		Campaign: t.Campaign, Content: t.Content, Term: t.Term}
}

package imports

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/throughline/throughline/internal/crm"
	"github.com/throughline/throughline/internal/retailcrm"
)

// A fallback a | b moves on when a is empty or not of the parameter's kind
// (a phone, an e-mail, an amount, a date), so that the fallbacks spec §11.1
// lists are used: "нет" in phone gives way to the customer's phone, a
// missing summ to totalSumm. When no alternative is usable an amount or a
// date that is not one still rejects the order, saying which.
func TestRetailFallbacksSkipUnusableValues(t *testing.T) {
	decode := func(t *testing.T, raw string) *retailcrm.Order {
		t.Helper()
		var o retailcrm.Order
		if err := json.Unmarshal([]byte(raw), &o); err != nil {
			t.Fatal(err)
		}
		return &o
	}
	mapping := func(over map[string]string) *retailMapping {
		m := DefaultRetailMapping()
		for k, v := range over {
			m[k] = v
		}
		rm, err := compileMapping(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		return rm
	}
	o := decode(t, `{"id": 7, "createdAt": "2025-02-01 12:00:00", "status": "new",
		"phone": "нет", "additionalPhone": " ", "email": "n/a", "totalSumm": 1395.16, "purchaseSumm": 60,
		"items": [{"quantity": 2}, {"quantity": 1.5}],
		"customer": {"id": 1, "email": "Anna@Example.ru", "phones": [{"number": "8 (999) 555-11-11"}]},
		"customFields": {"when": "вчера", "rev": "бесплатно", "cnt": "много"}}`)
	rm := mapping(map[string]string{"revenue": "summ | totalSumm", "margin": "customFields.rev - purchaseSumm | totalSumm - purchaseSumm",
		"items_count": "customFields.cnt | items.quantity", "order_date": "customFields.when | createdAt"})
	out, _, err := rm.order(1, o, nil, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if out.CallerPhone != "79995551111" || strings.Join(out.Emails, ",") != "anna@example.ru" {
		t.Errorf("phone %q, e-mails %v: the fallbacks after an unusable value were not read", out.CallerPhone, out.Emails)
	}
	if out.Has&crm.FRevenue == 0 || out.Revenue != 139516 {
		t.Errorf("revenue %d (set %v): summ is missing, totalSumm is 1395.16", out.Revenue, out.Has&crm.FRevenue != 0)
	}
	if out.Margin != 133516 {
		t.Errorf("margin %d, want 1335.16 from the second alternative", out.Margin)
	}
	if out.Has&crm.FItems == 0 || out.Items != 4 {
		t.Errorf("items %d: the custom field is no count, items.quantity is 3.5", out.Items)
	}
	if !out.CreatedAt.Equal(time.Date(2025, 2, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("created %v: the custom field is no date, createdAt is", out.CreatedAt)
	}

	// summ present (0 is an amount) is taken.
	if out, _, err := rm.order(1, decode(t, `{"id": 8, "createdAt": "2025-02-01 12:00:00", "summ": 0, "totalSumm": 5}`), nil, time.UTC); err != nil || out.Revenue != 0 || out.Has&crm.FRevenue == 0 {
		t.Errorf("summ 0: %v %+v", err, out)
	}
	// Nothing usable: the amount and the date that are not one are named.
	_, _, err = mapping(map[string]string{"revenue": "customFields.rev | customFields.none"}).order(1, o, nil, time.UTC)
	if err == nil || !strings.Contains(err.Error(), `customFields.rev "бесплатно"`) {
		t.Errorf("no usable revenue: %v", err)
	}
	_, _, err = mapping(map[string]string{"order_date": "customFields.none | customFields.when"}).order(1, o, nil, time.UTC)
	if err == nil || !strings.Contains(err.Error(), `"вчера" is not a date`) {
		t.Errorf("no usable date: %v", err)
	}
}

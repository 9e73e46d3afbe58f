package fakecrm

import (
	"sort"
	"strconv"
	"time"
)

// Generate describes orders made by GenerateOrders.
type Generate struct {
	Start        time.Time     // createdAt of the first order; default 2025-01-01 00:00 in the account's zone
	Step         time.Duration // between createdAt of consecutive orders; default 1 minute
	SessionField string        // order custom field with a tracker session id; default "tl_session_id"
	VisitorField string        // order custom field with a tracker visitor id; default "tl_visitor_id"
}

// GenerateOrders adds n orders quickly (100,000 in well under a second)
// and returns the first and last id. They vary as real ones do: every
// store and status, fractional money, two items, a customer snapshot with
// phones, payments as an object, an array or empty, customFields with
// session and visitor ids on two orders of three and [] on the rest. No
// history is written for them.
func (s *Server) GenerateOrders(n int, g Generate) (first, last int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g.Start.IsZero() {
		g.Start = time.Date(2025, 1, 1, 0, 0, 0, 0, s.loc)
	}
	if g.Step <= 0 {
		g.Step = time.Minute
	}
	if g.SessionField == "" {
		g.SessionField = "tl_session_id"
	}
	if g.VisitorField == "" {
		g.VisitorField = "tl_visitor_id"
	}
	sites := make([]string, 0, len(s.sites))
	for code := range s.sites {
		sites = append(sites, code)
	}
	if len(sites) == 0 {
		sites = []string{"shop"}
	}
	sort.Strings(sites)
	statuses := s.sortedStatuses()
	first = s.nextOrder
	s.orders = append(make([]*order, 0, len(s.orders)+n), s.orders...)
	var buf []byte
	for i := range n {
		id := s.nextOrder
		created := g.Start.Add(time.Duration(i) * g.Step).In(s.loc)
		updated := created.Add(time.Duration(i%90) * time.Minute)
		o := &order{
			id: id, externalID: "ext-" + strconv.FormatInt(id, 10), number: strconv.FormatInt(id, 10) + "A",
			site: sites[i%len(sites)], status: statuses[i%len(statuses)].Code,
			email:      "buyer" + strconv.Itoa(i%5000) + "@example.ru",
			customerID: int64(100000 + i%5000),
			createdAt:  created.Truncate(time.Second), statusUpdatedAt: updated.Truncate(time.Second),
		}
		phone := "+7916" + pad7(i%5000)
		b := buf[:0]
		b = append(b, `{"slug":`...)
		b = strconv.AppendInt(b, id, 10)
		b = append(b, `,"id":`...)
		b = strconv.AppendInt(b, id, 10)
		b = append(b, `,"number":"`...)
		b = append(b, o.number...)
		b = append(b, `","externalId":"`...)
		b = append(b, o.externalID...)
		b = append(b, `","orderType":"eshop-individual","orderMethod":"phone","countryIso":"RU","createdAt":"`...)
		b = created.AppendFormat(b, layout)
		b = append(b, `","statusUpdatedAt":"`...)
		b = updated.AppendFormat(b, layout)
		summ := 1000 + i%9000
		b = append(b, `","summ":`...)
		b = strconv.AppendInt(b, int64(summ), 10)
		b = append(b, `,"totalSumm":`...)
		b = strconv.AppendInt(b, int64(summ+300), 10)
		b = append(b, '.')
		b = strconv.AppendInt(b, int64(10+i%90), 10)
		b = append(b, `,"prepaySum":0,"purchaseSumm":`...)
		b = strconv.AppendInt(b, int64(summ/2), 10)
		b = append(b, `,"currency":"RUB","lastName":"Иванов","firstName":"Андрей","phone":"`...)
		b = append(b, phone...)
		b = append(b, `","additionalPhone":"","email":"`...)
		b = append(b, o.email...)
		b = append(b, `","call":false,"expired":false,"managerId":`...)
		b = strconv.AppendInt(b, int64(20+i%5), 10)
		b = append(b, `,"customerComment":"","managerComment":"","customer":{"type":"customer","id":`...)
		b = strconv.AppendInt(b, o.customerID, 10)
		b = append(b, `,"createdAt":"2024-12-15 11:07:32","firstName":"Андрей","lastName":"Иванов","email":"`...)
		b = append(b, o.email...)
		b = append(b, `","phones":[{"number":"`...)
		b = append(b, phone...)
		b = append(b, `"}],"tags":[{"name":"vip","color":"#3e89b6","attached":false}],"customFields":[]},"site":"`...)
		b = append(b, o.site...)
		b = append(b, `","status":"`...)
		b = append(b, o.status...)
		b = append(b, `","source":{"source":"yandex","medium":"cpc","campaign":"c`...)
		b = strconv.AppendInt(b, int64(i%40), 10)
		b = append(b, `"},"delivery":{"code":"courier","cost":300,"netCost":150},"items":[{"id":`...)
		b = strconv.AppendInt(b, id*10, 10)
		b = append(b, `,"initialPrice":500,"purchasePrice":250,"quantity":1,"status":"new","offer":{"id":61121,"name":"Диван"},"properties":[]},{"id":`...)
		b = strconv.AppendInt(b, id*10+1, 10)
		b = append(b, `,"initialPrice":250,"purchasePrice":100,"quantity":1.5,"status":"new","offer":{"id":61122,"name":"Подушка"},"properties":{}}],"payments":`...)
		switch i % 3 {
		case 0:
			b = append(b, `{"`...)
			b = strconv.AppendInt(b, id*10, 10)
			b = append(b, `":{"id":`...)
			b = strconv.AppendInt(b, id*10, 10)
			b = append(b, `,"type":"bank-card","status":"paid","amount":`...)
			b = strconv.AppendInt(b, int64(summ+300), 10)
			b = append(b, `}}`...)
		case 1:
			b = append(b, `[{"id":`...)
			b = strconv.AppendInt(b, id*10, 10)
			b = append(b, `,"type":"cash","status":"not-paid","amount":"`...)
			b = strconv.AppendInt(b, int64(summ), 10)
			b = append(b, `"}]`...)
		default:
			b = append(b, `{}`...)
		}
		b = append(b, `,"customFields":`...)
		if i%3 == 2 {
			b = append(b, `[]`...)
		} else {
			sid, uid := "s"+strconv.FormatInt(id, 10), "u"+strconv.Itoa(i%20000)
			o.custom = map[string]string{g.SessionField: sid, g.VisitorField: uid}
			b = append(b, `{"`...)
			b = append(b, g.SessionField...)
			b = append(b, `":"`...)
			b = append(b, sid...)
			b = append(b, `","`...)
			b = append(b, g.VisitorField...)
			b = append(b, `":"`...)
			b = append(b, uid...)
			b = append(b, `"}`...)
		}
		b = append(b, '}')
		o.raw = append([]byte(nil), b...)
		buf = b
		s.orderByID[id] = o
		s.orders = append(s.orders, o) // ids only grow
		s.nextOrder++
	}
	return first, s.nextOrder - 1
}

func pad7(n int) string {
	s := strconv.Itoa(n)
	for len(s) < 7 {
		s = "0" + s
	}
	return s
}

package tracker

import (
	"testing"
	"time"
)

var benchBody = []byte(`{"counter":7,"uuid":"00000000-0000-4000-8000-000000012345","type":"pageview","url":"https://shop.ru/catalog/boots?utm_source=yandex&utm_medium=cpc&utm_campaign=winter&yclid=123456","referrer":"https://yandex.ru/","title":"Boots shop"}`)

// BenchmarkParseJSON and BenchmarkValidate measure the collector's work on a
// hit before it is queued (the HTTP handler's share).
func BenchmarkParseJSON(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseJSON(benchBody); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	b.ReportAllocs()
	p, err := ParseJSON(benchBody)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := p.Validate(testCounter, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/throughline/throughline/internal/store"
)

// metrics are the server's Prometheus collectors. Each Server has its own
// registry, so several servers (as in tests) never collide.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(db *store.DB, version string) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "throughline_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "throughline_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route", "method"}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "throughline_build_info",
		Help: "Always 1; labels say which build and database engine are running.",
	}, []string{"version", "engine"})
	build.WithLabelValues(version, string(db.Dialect())).Set(1)

	m.reg.MustRegister(m.requests, m.duration, build,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if db.Dialect() == store.SQLite {
		m.reg.MustRegister(
			collectors.NewDBStatsCollector(db.Writer(), "sqlite_write"),
			collectors.NewDBStatsCollector(db.Reader(), "sqlite_read"))
	} else {
		m.reg.MustRegister(collectors.NewDBStatsCollector(db.Writer(), "postgres"))
	}
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry lets other parts of the server (the collector, importers) add
// their own collectors to /metrics.
func (s *Server) Registry() prometheus.Registerer { return s.metrics.reg }

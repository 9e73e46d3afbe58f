package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // served only on --debug-addr
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/throughline/throughline/internal/buildinfo"
	"github.com/throughline/throughline/internal/server"
	"github.com/throughline/throughline/internal/tracker"
)

func runServe(ctx context.Context, cio cmdIO, args []string) error {
	var d dataFlags
	var addr, shutdownTimeout, proxies, rateText, burstText, batchText, delayText, writersText string
	var ff feedFlags
	var publicURL, debugAddr string
	var withDemo bool
	f := newFlagSet("serve", "serve [flags]", cio.stdout)
	f.BoolVar(&withDemo, "demo", false, "first create (or recreate) the demo counter with a synthetic month of data, and log its token")
	f.stringVar(&publicURL, "public-url", "THROUGHLINE_PUBLIC_URL", "", "the URL providers reach this server at (https://tl.shop.ru); needed behind a reverse proxy for Twilio's signatures")
	f.stringVar(&addr, "addr", "THROUGHLINE_ADDR", "127.0.0.1:8080", "address to listen on (host:port; port 0 picks a free one)")
	f.stringVar(&shutdownTimeout, "shutdown-timeout", "THROUGHLINE_SHUTDOWN_TIMEOUT", "30s", "how long to let in-flight requests finish on SIGINT/SIGTERM")
	f.stringVar(&proxies, "trusted-proxies", "THROUGHLINE_TRUSTED_PROXIES", "", "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For is believed")
	f.stringVar(&rateText, "collect-rate", "THROUGHLINE_COLLECT_RATE", "100", "hits per second accepted from one client address (0: no limit)")
	f.stringVar(&burstText, "collect-burst", "THROUGHLINE_COLLECT_BURST", "500", "hits one client address may send in a burst above --collect-rate")
	f.stringVar(&batchText, "commit-max-batch", "THROUGHLINE_COMMIT_MAX_BATCH", "1000", "most hits committed in one transaction")
	f.stringVar(&writersText, "commit-writers", "THROUGHLINE_COMMIT_WRITERS", "2", "how many group-commit transactions of hits may be in flight at once, each for its share of the visitors")
	f.stringVar(&delayText, "commit-max-delay", "THROUGHLINE_COMMIT_MAX_DELAY", "0s", "how long a batch of hits may wait for more before it commits (0: commit as soon as the writer is free)")
	f.stringVar(&debugAddr, "debug-addr", "THROUGHLINE_DEBUG_ADDR", "", "address for Go's profiler (/debug/pprof/) on a listener of its own; keep it private (default: off)")
	ff.register(f)
	d.register(f)
	if _, err := f.parse(args, cio.getenv, false); err != nil {
		return err
	}
	maxImport, err := ff.bytes("serve")
	if err != nil {
		return err
	}
	if publicURL != "" {
		if u, err := url.Parse(publicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return &usageError{"serve", fmt.Sprintf("--public-url %q: want the server's base URL, such as https://tl.shop.ru", publicURL)}
		}
	}
	grace, err := time.ParseDuration(shutdownTimeout)
	if err != nil || grace <= 0 {
		return &usageError{"serve", fmt.Sprintf("--shutdown-timeout %q: want a duration such as 30s", shutdownTimeout)}
	}
	trusted, err := parsePrefixes(proxies)
	if err != nil {
		return &usageError{"serve", "--trusted-proxies: " + err.Error()}
	}
	rate, err := strconv.ParseFloat(rateText, 64)
	if err != nil || rate < 0 {
		return &usageError{"serve", fmt.Sprintf("--collect-rate %q: want a number of hits per second, 0 for no limit", rateText)}
	}
	burst, err := strconv.Atoi(burstText)
	if err != nil || burst < 0 {
		return &usageError{"serve", fmt.Sprintf("--collect-burst %q: want a whole number", burstText)}
	}
	maxBatch, err := strconv.Atoi(batchText)
	if err != nil || maxBatch < 1 {
		return &usageError{"serve", fmt.Sprintf("--commit-max-batch %q: want a whole number ≥ 1", batchText)}
	}
	writers, err := strconv.Atoi(writersText)
	if err != nil || writers < 1 || writers > 64 {
		return &usageError{"serve", fmt.Sprintf("--commit-writers %q: want a whole number from 1 to 64", writersText)}
	}
	maxDelay, err := time.ParseDuration(delayText)
	if err != nil || maxDelay < 0 {
		return &usageError{"serve", fmt.Sprintf("--commit-max-delay %q: want a duration such as 2ms", delayText)}
	}
	log, err := d.logger("serve", cio.stderr)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// Bind first: a wrong or busy address fails before any database work.
	// Connections that arrive meanwhile wait in the listen backlog.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer ln.Close()
	db, res, err := d.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	log.Info("database ready", "engine", db.Dialect(), "at", db.Target(), "schema_from", res.From, "schema", res.To)
	if withDemo {
		if err := serveDemo(ctx, db, log, ln.Addr().String()); err != nil {
			return err
		}
	}

	// Uploads and feeds are spooled to disk while they are checked; keep
	// the spool beside the data rather than in a small /tmp.
	spool := filepath.Join(d.dataDir, "tmp")
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", spool, err)
	}
	box, err := d.secrets()
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	handler := server.New(db, server.Config{
		Secrets: box,
		Version: buildinfo.Version(), Logger: log,
		Collector:   tracker.Config{MaxBatch: maxBatch, MaxDelay: maxDelay, Writers: writers},
		CollectRate: rate, CollectBurst: burst, TrustedProxies: trusted,
		Imports:   server.ImportsConfig{AllowPrivateFeeds: ff.allowPrivate, MaxBytes: maxImport, TempDir: spool},
		PublicURL: strings.TrimRight(publicURL, "/"),
	})
	srv := server.NewHTTPServer(handler, log)
	if debugAddr != "" {
		dln, err := net.Listen("tcp", debugAddr)
		if err != nil {
			return fmt.Errorf("listen on %s (--debug-addr): %w", debugAddr, err)
		}
		defer dln.Close()
		// net/http/pprof registers on http.DefaultServeMux, which nothing
		// else serves: the profiler is reachable only on this listener.
		go http.Serve(dln, http.DefaultServeMux)
		log.Info("profiler listening", "addr", dln.Addr().String(), "url", "http://"+dln.Addr().String()+"/debug/pprof/")
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(server.LimitConns(ln)) }()
	log.Info("listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String()+"/", "version", buildinfo.Version())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	stop() // a second signal now kills the process the default way
	log.Info("shutting down: finishing in-flight requests", "timeout", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("in-flight requests did not finish in time; closing them", "err", err)
		srv.Close()
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("server stopped with an error", "err", err)
	}
	// Requests are done; stop the import scheduler and commit the hits
	// still queued before closing the database.
	if err := handler.Close(sctx); err != nil {
		log.Error("collector did not flush in time", "err", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	log.Info("stopped")
	return nil
}

// parsePrefixes reads a comma-separated list of addresses and CIDRs.
func parsePrefixes(text string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(text, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or CIDR", part)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/throughline/throughline/internal/buildinfo"
	"github.com/throughline/throughline/internal/server"
)

func runServe(ctx context.Context, cio cmdIO, args []string) error {
	var d dataFlags
	var addr, shutdownTimeout string
	f := newFlagSet("serve", "serve [flags]", cio.stdout)
	f.stringVar(&addr, "addr", "THROUGHLINE_ADDR", "127.0.0.1:8080", "address to listen on (host:port; port 0 picks a free one)")
	f.stringVar(&shutdownTimeout, "shutdown-timeout", "THROUGHLINE_SHUTDOWN_TIMEOUT", "30s", "how long to let in-flight requests finish on SIGINT/SIGTERM")
	d.register(f)
	if _, err := f.parse(args, cio.getenv, false); err != nil {
		return err
	}
	grace, err := time.ParseDuration(shutdownTimeout)
	if err != nil || grace <= 0 {
		return &usageError{"serve", fmt.Sprintf("--shutdown-timeout %q: want a duration such as 30s", shutdownTimeout)}
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

	srv := &http.Server{
		Handler:           server.New(db, server.Config{Version: buildinfo.Version(), Logger: log}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
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
	if err := db.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	log.Info("stopped")
	return nil
}

package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"go.opentelemetry.io/otel"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/export"
	"github.com/vantage-fleet/vantage/pkg/spool"
	"github.com/vantage-fleet/vantage/pkg/telemetry"
)

// otlpWiring is the agent's OTLP side: one durable exporter per
// [[export]] of type "otlp", all sharing one spool file in data_dir, and
// the self-telemetry counters they feed.
type otlpWiring struct {
	// Exporters receive every Result (add them to the run loop's exporters).
	Exporters []export.Exporter
	// Metrics serves the counters in Prometheus text format: mount it at
	// GET /metrics on agent.listen.
	Metrics http.Handler
	// Telemetry holds the counters; other parts may add theirs.
	Telemetry *telemetry.Registry

	db   *spool.DB
	otlp []*export.OTLP
}

// newOTLPWiring builds the OTLP exports of cfg. With no OTLP export it
// opens no spool and returns empty Exporters (Metrics still works). The
// caller must Close it after the scheduler has stopped putting Results.
func newOTLPWiring(cfg *config.Config, log *slog.Logger) (*otlpWiring, error) {
	if log == nil {
		log = slog.Default()
	}
	// The SDK reports failed best-effort exports (traces, metrics) through
	// its global handler, which prints with the log package by default.
	// Results failing is logged once per outage by the export itself.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Debug("opentelemetry export", "err", err)
	}))
	w := &otlpWiring{Telemetry: telemetry.NewRegistry()}
	w.Metrics = w.Telemetry.Handler()
	for i := range cfg.Export {
		e := &cfg.Export[i]
		if e.Type != "otlp" {
			continue
		}
		if w.db == nil {
			db, err := spool.Open(cfg.Agent.DataDir)
			if err != nil {
				return nil, err
			}
			w.db = db
		}
		x, err := export.NewOTLP(e, export.OTLPOptions{Agent: cfg.Agent.Name, Region: cfg.Agent.Region,
			Spool: w.db, Telemetry: w.Telemetry, Log: log})
		if err != nil {
			_ = w.Close(context.Background())
			return nil, err
		}
		w.otlp = append(w.otlp, x)
		w.Exporters = append(w.Exporters, x)
	}
	return w, nil
}

// Close stops every OTLP export (a last send attempt within ctx; the rest
// stays spooled for the next start) and closes the spool.
func (w *otlpWiring) Close(ctx context.Context) error {
	var errs []error
	for _, x := range w.otlp {
		errs = append(errs, x.Close(ctx))
	}
	w.otlp = nil
	if w.db != nil {
		errs = append(errs, w.db.Close())
		w.db = nil
	}
	return errors.Join(errs...)
}

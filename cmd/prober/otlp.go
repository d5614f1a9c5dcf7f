package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"

	"go.opentelemetry.io/otel"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/export"
	"github.com/vantage-fleet/vantage/pkg/spool"
	"github.com/vantage-fleet/vantage/pkg/telemetry"
)

// otlpExports builds the [[export]] entries of type "otlp" of one agent:
// they share one spool file in data_dir (one queue each) and one registry
// of self-telemetry counters. The spool closes with the last export.
type otlpExports struct {
	cfg *config.Config
	log *slog.Logger
	reg *telemetry.Registry

	mu   sync.Mutex
	db   *spool.DB
	open int
}

func newOTLPExports(cfg *config.Config, log *slog.Logger) *otlpExports {
	if log == nil {
		log = slog.Default()
	}
	// The SDK reports failed best-effort exports (traces, metrics) through
	// its global handler, which prints with the log package by default.
	// Results failing is logged once per outage by the export itself.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Debug("opentelemetry export", "err", err)
	}))
	return &otlpExports{cfg: cfg, log: log, reg: telemetry.NewRegistry()}
}

// add builds the durable OTLP exporter of e.
func (o *otlpExports) add(e *config.Export) (export.Exporter, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.db == nil {
		db, err := spool.Open(o.cfg.Agent.DataDir)
		if err != nil {
			return nil, err
		}
		o.db = db
	}
	x, err := export.NewOTLP(e, export.OTLPOptions{Agent: o.cfg.Agent.Name, Region: o.cfg.Agent.Region,
		Spool: o.db, Telemetry: o.reg, Log: o.log})
	if err != nil {
		if o.open == 0 {
			_ = o.db.Close()
			o.db = nil
		}
		return nil, err
	}
	o.open++
	return &otlpExporter{OTLP: x, owner: o}, nil
}

func (o *otlpExports) release() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.open--
	if o.open == 0 && o.db != nil {
		err := o.db.Close()
		o.db = nil
		return err
	}
	return nil
}

// otlpExporter is one OTLP export; closing the last one closes the spool.
type otlpExporter struct {
	*export.OTLP
	owner *otlpExports
	once  sync.Once
}

// Close stops the export (a last send attempt within ctx; the rest stays
// spooled for the next start) and releases the shared spool.
func (x *otlpExporter) Close(ctx context.Context) error {
	err := errors.New("export: already closed")
	x.once.Do(func() { err = errors.Join(x.OTLP.Close(ctx), x.owner.release()) })
	return err
}

// Metrics serves the OTLP exports' counters in Prometheus text format.
func (x *otlpExporter) Metrics() http.Handler { return x.owner.reg.Handler() }

// metricsHandler returns the agent's GET /metrics: the counters of its
// OTLP exports (results spooled, exported, rejected, evicted), or an empty
// page when it has none.
func metricsHandler(xs []export.Exporter) http.Handler {
	for _, x := range xs {
		if m, ok := x.(interface{ Metrics() http.Handler }); ok {
			return m.Metrics()
		}
	}
	return telemetry.NewRegistry().Handler()
}

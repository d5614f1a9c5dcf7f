package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
)

// built is a config turned into runnable journeys: what one generation of
// the agent runs (a reload builds a new one).
type built struct {
	cfg      *config.Config
	runner   *probes.Runner
	journeys map[string]probes.Journey
}

// buildJourneys builds every enabled journey of cfg with its kind's
// constructor. Any failure rejects the whole config, so that a reload
// never leaves the agent half on the old config and half on the new.
func buildJourneys(cfg *config.Config, reg probes.Registry, log *slog.Logger) (*built, error) {
	red := report.NewRedactor(cfg.SecretValues()...)
	b := &built{
		cfg:      cfg,
		runner:   &probes.Runner{Agent: cfg.Agent.Name, Region: cfg.Agent.Region, Redact: red, Log: log},
		journeys: map[string]probes.Journey{},
	}
	for i := range cfg.Journey {
		jc := &cfg.Journey[i]
		if jc.Disabled {
			continue
		}
		ctor, ok := reg[jc.Kind]
		if !ok {
			b.close(log)
			return nil, fmt.Errorf("journey %s: kind %q is not built into this prober", jc.Name, jc.Kind)
		}
		dir := filepath.Join(cfg.Agent.DataDir, "journeys", jc.Name)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			b.close(log)
			return nil, fmt.Errorf("journey %s: data directory: %w", jc.Name, err)
		}
		j, err := ctor(jc, probes.Env{Agent: cfg.Agent, Log: log.With("journey", jc.Name), Redact: red, DataDir: dir})
		if err != nil {
			b.close(log)
			return nil, fmt.Errorf("journey %s: %s", jc.Name, red.String(err.Error()))
		}
		b.journeys[jc.Name] = j
	}
	return b, nil
}

// journey returns the config of the named journey.
func (b *built) journey(name string) *config.Journey {
	for i := range b.cfg.Journey {
		if b.cfg.Journey[i].Name == name {
			return &b.cfg.Journey[i]
		}
	}
	return nil
}

// close releases journeys that hold resources.
func (b *built) close(log *slog.Logger) {
	for name, j := range b.journeys {
		if c, ok := j.(probes.Closer); ok {
			if err := c.Close(); err != nil {
				log.Warn("closing journey", "journey", name, "error", b.runner.Redact.String(err.Error()))
			}
		}
	}
}

package main

import (
	"context"
	"fmt"
	"io"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/export"
)

// buildExporters builds one Exporter per [[export]] of cfg; without any,
// Results go to stdout as JSON lines. A new export type is one more case
// here, with its constructor in its own file.
func buildExporters(cfg *config.Config, stdout io.Writer) ([]export.Exporter, error) {
	if len(cfg.Export) == 0 {
		j, err := export.NewJSONL("-", stdout)
		if err != nil {
			return nil, err
		}
		return []export.Exporter{j}, nil
	}
	var out []export.Exporter
	var otlp *otlpExports // built on the first OTLP export (cmd/prober/otlp.go)
	for i, e := range cfg.Export {
		var (
			x   export.Exporter
			err error
		)
		switch e.Type {
		case "jsonl":
			x, err = export.NewJSONL(e.Path, stdout)
		case "otlp":
			if otlp == nil {
				otlp = newOTLPExports(cfg, nil)
			}
			x, err = otlp.add(&cfg.Export[i])
		default:
			err = fmt.Errorf("export type %q is not built into this prober", e.Type)
		}
		if err != nil {
			closeExporters(context.Background(), out)
			return nil, fmt.Errorf("export %s: %w", e.Name, err)
		}
		out = append(out, x)
	}
	return out, nil
}

// closeExporters flushes and closes every exporter, returning the first error.
func closeExporters(ctx context.Context, xs []export.Exporter) error {
	var first error
	for _, x := range xs {
		if err := x.Close(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

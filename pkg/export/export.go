// Package export owns where an agent's Results go after a run: the
// Exporter interface and its implementations (jsonl for local use, OTLP
// through the durable spool). Journeys never see an exporter.
package export

import (
	"context"

	"github.com/vantage-fleet/vantage/pkg/report"
)

// Exporter receives every Result of this agent. Put must return quickly
// (it runs on the scheduler's path) and, once it returns nil, the Result
// must not be lost: durable exporters write it to their spool before
// returning. Close flushes what it can within ctx and releases resources.
type Exporter interface {
	Put(ctx context.Context, r report.Result) error
	Close(ctx context.Context) error
}

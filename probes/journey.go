// Package probes owns what every journey kind shares: the Journey interface,
// the step Recorder, the one place that classifies errors into
// report.ErrorType, and the Runner that turns one run into one
// report.Result. A kind lives in its own sub-package and never imports
// another kind or anything under cmd/.
package probes

import (
	"context"
	"log/slog"
	"time"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/report"
)

// Journey is one kind's implementation of one configured journey. Run
// performs the journey under ctx (whose deadline is the journey's timeout),
// records its steps through run.Rec, and returns nil on success or an error
// that carries its class (see Errorf, Classify). Run must not outlive ctx and
// must clean up what it created, even when it fails.
type Journey interface {
	Run(ctx context.Context, run *Run) error
}

// Closer is implemented by journeys that hold resources between runs
// (connection pools, caches, background sweepers).
type Closer interface {
	Close() error
}

// Run describes one execution of a journey.
type Run struct {
	// ID is the Result ID of this run (report.ResultID).
	ID      string
	Journey string
	Region  string
	Agent   string
	Slot    time.Time
	Trigger report.Trigger
	// Rec records the run's steps.
	Rec *Recorder
	// Log is the journey's logger; it must never be given a secret.
	Log *slog.Logger
}

// Env is what a kind's constructor gets besides its journey config.
type Env struct {
	Agent  config.Agent
	Log    *slog.Logger
	Redact *report.Redactor
	// DataDir is a directory the journey may keep state in (caches, clones);
	// it is created by the runner and private to this journey.
	DataDir string
}

// Constructor builds a Journey from its validated config.
type Constructor func(j *config.Journey, env Env) (Journey, error)

// Registry maps a kind name ("http", "git", …) to its constructor. It is
// built once, in probes/kinds, and passed around; there is no global map.
type Registry map[string]Constructor

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
	"github.com/vantage-fleet/vantage/probes/kinds"
)

// cmdOnce runs one journey now: exit 0 on pass, 1 on fail, 2 on
// probe_error or bad usage.
func cmdOnce(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("once", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file")
	name := fs.String("journey", "", "journey to run")
	asJSON := fs.Bool("json", false, "print the Result as one JSON object")
	if err := fs.Parse(args); err != nil || *path == "" || *name == "" {
		fmt.Fprintln(stderr, "prober once: -config FILE and -journey NAME are required")
		return 2
	}
	log := newLogger(stderr)
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	jc := (&built{cfg: cfg}).journey(*name)
	if jc == nil {
		fmt.Fprintf(stderr, "prober once: no journey %q in %s\n", *name, *path)
		return 2
	}
	// Build only the journey asked for, so that another journey's problem
	// does not stop this one.
	one := *cfg
	one.Journey = []config.Journey{*jc}
	one.Journey[0].Disabled = false
	b, err := buildJourneys(&one, kinds.Registry(), log)
	if err != nil {
		fmt.Fprintln(stderr, "prober once:", err)
		return 2
	}
	defer b.close(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := b.runner.Execute(ctx, b.journeys[*name], probes.Spec{
		Journey: &one.Journey[0], Slot: time.Now().UTC().Truncate(time.Second), Trigger: report.TriggerManual})
	if *asJSON {
		out, err := json.Marshal(res)
		if err != nil {
			fmt.Fprintln(stderr, "prober once:", err)
			return 2
		}
		fmt.Fprintln(stdout, string(out))
	} else {
		printTimeline(stdout, res)
	}
	switch res.Status {
	case report.StatusPass:
		return 0
	case report.StatusFail:
		return 1
	default:
		return 2
	}
}

// printTimeline writes a Result for a person: one line for the run, one per
// step with its timing and attributes.
func printTimeline(w io.Writer, r report.Result) {
	fmt.Fprintf(w, "%s  journey %s (%s)  region %s  agent %s  %s\n", strings.ToUpper(string(r.Status)),
		r.Journey, r.Kind, r.Region, r.Agent, fmtMillis(r.Duration))
	if r.Status != report.StatusPass {
		fmt.Fprintf(w, "  error: %s: %s\n", r.ErrorType, r.Error)
	}
	for _, s := range r.Steps {
		offset := s.Start.Sub(r.Start)
		mark := "ok  "
		if s.Status != report.StatusPass {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s +%-9s %-20s %9s  %s\n", mark, fmtMillis(offset), s.Name, fmtMillis(s.Duration), fmtAttrs(s.Attrs))
		if s.Error != "" {
			fmt.Fprintf(w, "       %s: %s\n", s.ErrorType, s.Error)
		}
	}
	fmt.Fprintf(w, "  trace %s  id %s\n", r.TraceID, r.ID)
}

func fmtMillis(d time.Duration) string { return fmt.Sprintf("%.1fms", report.Millis(d)) }

func fmtAttrs(attrs []attribute.KeyValue) string {
	parts := make([]string, 0, len(attrs))
	for _, kv := range attrs {
		v := kv.Value.Emit()
		if kv.Value.Type() == attribute.FLOAT64 {
			v = fmt.Sprintf("%.2f", kv.Value.AsFloat64())
		}
		parts = append(parts, shortKey(string(kv.Key))+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// shortKey names an attribute for a person: its last segment, or a short
// word where that would be unclear.
func shortKey(k string) string {
	switch k {
	case "url.full":
		return "url"
	case "server.address":
		return "server"
	case "http.response.body.size":
		return "bytes"
	case "http.response.status_code":
		return "status"
	case "http.request.method":
		return "method"
	}
	if i := strings.LastIndexByte(k, '.'); i >= 0 {
		return k[i+1:]
	}
	return k
}

// newLogger is the agent's logger: JSON lines on stderr.
func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, nil))
}

// Package reporttest provides Results that set every field and an exact
// comparison, for round-trip tests of the Result's encodings.
package reporttest

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/vantage-fleet/vantage/pkg/report"
)

// Full returns a Result that sets every field, with step attributes of
// every attribute type (in their canonical, key-sorted order).
func Full() report.Result {
	slot := time.Date(2026, 11, 26, 10, 0, 30, 0, time.UTC)
	start := slot.Add(1234567 * time.Nanosecond)
	r := report.Result{
		Journey: "clone-and-push", Kind: "git", Region: "eu-west", Agent: "eu-1",
		Slot: slot, Trigger: report.TriggerConfirm, Interval: time.Minute,
		Components: []string{"git-http", "storage"}, Runbook: "https://runbooks.example/git",
		Start: start, Duration: 1500 * time.Millisecond, Status: report.StatusFail,
		ErrorType: report.ErrPushRejected, Error: "push rejected: pre-receive hook declined",
		TraceID: "0af7651916cd43dd8448eb211c80319c",
		Attrs: []attribute.KeyValue{
			attribute.String("url.full", "https://git.example/acme/probe.git"),
			attribute.String("server.address", "git.example"),
			attribute.String("vcs.repository.name", "probe"),
			attribute.Int64("vantage.custom.count", 3),
		},
		Steps: []report.Step{
			{Name: "clone", Start: start, Duration: 700 * time.Millisecond, Status: report.StatusPass,
				Attrs: sortedAttrs(
					attribute.Bool("b", true),
					attribute.Int64("i", -42),
					attribute.Float64("f", 3.25),
					attribute.String("s", "héllo"),
					attribute.BoolSlice("bs", []bool{true, false}),
					attribute.Int64Slice("is", []int64{1, 2, 3}),
					attribute.Float64Slice("fs", []float64{0.5, -1}),
					attribute.StringSlice("ss", []string{"a", ""}),
					attribute.KeyValue{Key: "bytes", Value: attribute.ByteSliceValue([]byte{0, 1, 255})},
					attribute.KeyValue{Key: "mixed", Value: attribute.SliceValue(attribute.IntValue(1), attribute.StringValue("x"))},
					attribute.KeyValue{Key: "map", Value: attribute.MapValue(attribute.String("k", "v"), attribute.Int("n", 7))},
				)},
			{Name: "push", Start: start.Add(700 * time.Millisecond), Duration: 800 * time.Millisecond,
				Status: report.StatusFail, ErrorType: report.ErrPushRejected, Error: "pre-receive hook declined"},
		},
	}
	r.ID = report.ResultID(r.Journey, r.Region, r.Agent, r.Slot, r.Trigger)
	return r
}

func sortedAttrs(kvs ...attribute.KeyValue) []attribute.KeyValue {
	slices.SortStableFunc(kvs, func(a, b attribute.KeyValue) int { return strings.Compare(string(a.Key), string(b.Key)) })
	return kvs
}

// Same fails t unless got equals want in every field; attribute values
// are compared by type and content, times as instants.
func Same(t *testing.T, got, want report.Result) {
	t.Helper()
	g, w := got, want
	g.Steps, w.Steps, g.Attrs, w.Attrs = nil, nil, nil, nil
	for _, p := range []*report.Result{&g, &w} {
		p.Slot, p.Start = p.Slot.UTC(), p.Start.UTC()
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("result fields differ:\n got %+v\nwant %+v", g, w)
	}
	sameAttrs(t, "result", got.Attrs, want.Attrs)
	if len(got.Steps) != len(want.Steps) {
		t.Fatalf("got %d steps, want %d", len(got.Steps), len(want.Steps))
	}
	for i := range want.Steps {
		gs, ws := got.Steps[i], want.Steps[i]
		sameAttrs(t, "step "+ws.Name, gs.Attrs, ws.Attrs)
		gs.Attrs, ws.Attrs = nil, nil
		gs.Start, ws.Start = gs.Start.UTC(), ws.Start.UTC()
		if !reflect.DeepEqual(gs, ws) {
			t.Fatalf("step %d differs:\n got %+v\nwant %+v", i, gs, ws)
		}
	}
}

func sameAttrs(t *testing.T, what string, got, want []attribute.KeyValue) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d attrs %v, want %d %v", what, len(got), got, len(want), want)
	}
	for i := range want {
		if got[i].Key != want[i].Key || got[i].Value.Type() != want[i].Value.Type() ||
			!reflect.DeepEqual(got[i].Value.AsInterface(), want[i].Value.AsInterface()) {
			t.Fatalf("%s: attr %d: got %s=%s (%s), want %s=%s (%s)", what, i,
				got[i].Key, got[i].Value.Emit(), got[i].Value.Type(), want[i].Key, want[i].Value.Emit(), want[i].Value.Type())
		}
	}
}

// Minimal returns a Result with only the required fields.
func Minimal() report.Result {
	r := report.Result{Journey: "j", Region: "r", Agent: "a", Slot: time.Unix(60, 0).UTC(),
		Trigger: report.TriggerSchedule, Status: report.StatusPass}
	r.ID = report.ResultID(r.Journey, r.Region, r.Agent, r.Slot, r.Trigger)
	return r
}

package report

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
)

// FullResult returns a Result that sets every field, with step attributes of
// every attribute type; tests in other packages build the same shape.
func fullResult() Result {
	slot := time.Date(2026, 11, 26, 10, 0, 30, 0, time.UTC)
	start := slot.Add(1234567 * time.Nanosecond)
	r := Result{
		Journey: "clone-and-push", Kind: "git", Region: "eu-west", Agent: "eu-1",
		Slot: slot, Trigger: TriggerConfirm, Interval: time.Minute,
		Components: []string{"git-http", "storage"}, Runbook: "https://runbooks.example/git",
		Start: start, Duration: 1500 * time.Millisecond, Status: StatusFail,
		ErrorType: ErrPushRejected, Error: "push rejected: pre-receive hook declined",
		TraceID: "0af7651916cd43dd8448eb211c80319c",
		Attrs: []attribute.KeyValue{
			attribute.String("url.full", "https://git.example/acme/probe.git"),
			attribute.String("server.address", "git.example"),
			attribute.String("vcs.repository.name", "probe"),
			attribute.Int64("vantage.custom.count", 3),
		},
		Steps: []Step{
			{Name: "clone", Start: start, Duration: 700 * time.Millisecond, Status: StatusPass,
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
				Status: StatusFail, ErrorType: ErrPushRejected, Error: "pre-receive hook declined"},
		},
	}
	r.ID = ResultID(r.Journey, r.Region, r.Agent, r.Slot, r.Trigger)
	return r
}

func sortedAttrs(kvs ...attribute.KeyValue) []attribute.KeyValue {
	slices.SortStableFunc(kvs, func(a, b attribute.KeyValue) int { return strings.Compare(string(a.Key), string(b.Key)) })
	return kvs
}

// sameResult compares every field; attribute values by type and content.
func sameResult(t *testing.T, got, want Result) {
	t.Helper()
	g, w := got, want
	g.Steps, w.Steps, g.Attrs, w.Attrs = nil, nil, nil, nil
	for _, p := range []*Result{&g, &w} {
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

func TestOTLP_EveryFieldRoundTripsExactly(t *testing.T) {
	for name, r := range map[string]Result{"full": fullResult(), "minimal": minimalResult()} {
		t.Run(name, func(t *testing.T) {
			b, err := MarshalOTLP(r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := UnmarshalOTLP(b)
			if err != nil {
				t.Fatal(err)
			}
			sameResult(t, got, r)
		})
	}
}

func minimalResult() Result {
	r := Result{Journey: "j", Region: "r", Agent: "a", Slot: time.Unix(60, 0).UTC(),
		Trigger: TriggerSchedule, Status: StatusPass}
	r.ID = ResultID(r.Journey, r.Region, r.Agent, r.Slot, r.Trigger)
	return r
}

func TestOTLP_UsesSemanticConventionsAndEventName(t *testing.T) {
	rl, err := EncodeOTLP(fullResult())
	if err != nil {
		t.Fatal(err)
	}
	res := map[string]string{}
	for _, kv := range rl.Resource.Attributes {
		res[kv.Key] = kv.Value.GetStringValue()
	}
	want := map[string]string{"service.name": "vantage-prober", "service.instance.id": "eu-1", "cloud.region": "eu-west"}
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("resource = %v, want %v", res, want)
	}
	lr := rl.ScopeLogs[0].LogRecords[0]
	if lr.EventName != "vantage.journey.result" || len(lr.TraceId) != 16 {
		t.Fatalf("event %q trace %x", lr.EventName, lr.TraceId)
	}
	keys := map[string]bool{}
	for _, kv := range lr.Attributes {
		keys[kv.Key] = true
	}
	for _, k := range []string{"error.type", "url.full", "vantage.journey.name", "vantage.run.slot", "vantage.run.trigger", "vantage.result.status", "vantage.journey.steps"} {
		if !keys[k] {
			t.Errorf("attribute %s missing", k)
		}
	}
}

func TestOTLP_EncodeRejectsReservedAttrAndBadTraceID(t *testing.T) {
	r := fullResult()
	r.Attrs = append(r.Attrs, attribute.String("vantage.journey.name", "x"))
	if _, err := EncodeOTLP(r); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("reserved attr: err = %v", err)
	}
	r = fullResult()
	r.TraceID = "0AF7651916CD43DD8448EB211C80319C"
	if _, err := EncodeOTLP(r); err == nil || !strings.Contains(err.Error(), "trace ID") {
		t.Fatalf("upper-case trace ID: err = %v", err)
	}
}

func TestOTLP_DecodeRejectsMalformedOrOversized_WithReason(t *testing.T) {
	base := func() *logspb.ResourceLogs {
		rl, err := EncodeOTLP(fullResult())
		if err != nil {
			t.Fatal(err)
		}
		return rl
	}
	attr := func(rl *logspb.ResourceLogs, key string) *commonpb.KeyValue {
		for _, kv := range rl.ScopeLogs[0].LogRecords[0].Attributes {
			if kv.Key == key {
				return kv
			}
		}
		t.Fatalf("no attribute %s", key)
		return nil
	}
	sv := func(s string) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
	}
	cases := []struct {
		name   string
		mutate func(rl *logspb.ResourceLogs)
		reason string
	}{
		{"wrong service", func(rl *logspb.ResourceLogs) { rl.Resource.Attributes[0].Value = sv("other") }, "service.name"},
		{"no region", func(rl *logspb.ResourceLogs) { rl.Resource.Attributes = rl.Resource.Attributes[:2] }, "cloud.region"},
		{"status wrong type", func(rl *logspb.ResourceLogs) {
			attr(rl, "vantage.result.status").Value = &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 1}}
		}, "want a string"},
		{"unknown status", func(rl *logspb.ResourceLogs) { attr(rl, "vantage.result.status").Value = sv("maybe") }, "not pass"},
		{"unknown error class", func(rl *logspb.ResourceLogs) { attr(rl, "error.type").Value = sv("gremlins") }, "error class"},
		{"missing slot", func(rl *logspb.ResourceLogs) {
			lr := rl.ScopeLogs[0].LogRecords[0]
			lr.Attributes = slices.DeleteFunc(lr.Attributes, func(kv *commonpb.KeyValue) bool { return kv.Key == "vantage.run.slot" })
		}, "vantage.run.slot"},
		{"duplicate key", func(rl *logspb.ResourceLogs) {
			lr := rl.ScopeLogs[0].LogRecords[0]
			lr.Attributes = append(lr.Attributes, lr.Attributes[0])
		}, "twice"},
		{"short trace id", func(rl *logspb.ResourceLogs) { rl.ScopeLogs[0].LogRecords[0].TraceId = []byte{1, 2} }, "trace_id"},
		{"body not string", func(rl *logspb.ResourceLogs) {
			rl.ScopeLogs[0].LogRecords[0].Body = &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 1}}
		}, "body"},
		{"huge string", func(rl *logspb.ResourceLogs) { attr(rl, "url.full").Value = sv(strings.Repeat("x", MaxStringBytes+1)) }, "more than"},
		{"too many attributes", func(rl *logspb.ResourceLogs) {
			lr := rl.ScopeLogs[0].LogRecords[0]
			for i := 0; i <= MaxAttributes; i++ {
				lr.Attributes = append(lr.Attributes, &commonpb.KeyValue{Key: "k" + strings.Repeat("x", i), Value: sv("v")})
			}
		}, "attributes"},
		{"too many steps", func(rl *logspb.ResourceLogs) {
			a := attr(rl, "vantage.journey.steps").Value.GetArrayValue()
			for len(a.Values) <= MaxSteps {
				a.Values = append(a.Values, a.Values[0])
			}
		}, "steps"},
		{"oversized record", func(rl *logspb.ResourceLogs) {
			lr := rl.ScopeLogs[0].LogRecords[0]
			for i := 0; i < 10; i++ {
				lr.Attributes = append(lr.Attributes, &commonpb.KeyValue{Key: strings.Repeat("k", i+1), Value: sv(strings.Repeat("x", MaxStringBytes))})
			}
		}, "bytes"},
		{"step not kvlist", func(rl *logspb.ResourceLogs) {
			attr(rl, "vantage.journey.steps").Value.GetArrayValue().Values[0] = sv("x")
		}, "step 0"},
		{"step missing name", func(rl *logspb.ResourceLogs) {
			kl := attr(rl, "vantage.journey.steps").Value.GetArrayValue().Values[1].GetKvlistValue()
			kl.Values = slices.DeleteFunc(kl.Values, func(kv *commonpb.KeyValue) bool { return kv.Key == "name" })
		}, "required"},
		{"too deep", func(rl *logspb.ResourceLogs) {
			v := sv("leaf")
			for i := 0; i < 8; i++ {
				v = &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{v}}}}
			}
			attr(rl, "url.full").Value = v
		}, "deeper"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rl := base()
			c.mutate(rl)
			_, err := DecodeOTLP(rl.Resource, rl.ScopeLogs[0].LogRecords[0])
			if err == nil || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("err = %v, want a reason containing %q", err, c.reason)
			}
		})
	}
}

func TestOTLP_OtherEventIsNotAResult(t *testing.T) {
	_, err := DecodeOTLP(nil, &logspb.LogRecord{EventName: "app.log"})
	if err != ErrNotResult {
		t.Fatalf("err = %v, want ErrNotResult", err)
	}
}

func FuzzDecodeOTLP(f *testing.F) {
	for _, r := range []Result{fullResult(), minimalResult()} {
		b, err := MarshalOTLP(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalOTLP(b)
		if err != nil {
			return
		}
		// Whatever decodes must encode again and decode to the same Result.
		b2, err := MarshalOTLP(r)
		if err != nil {
			t.Fatalf("decoded result does not re-encode: %v", err)
		}
		r2, err := UnmarshalOTLP(b2)
		if err != nil {
			t.Fatalf("re-encoded result does not decode: %v", err)
		}
		if r2.ID != r.ID || len(r2.Steps) != len(r.Steps) || len(r2.Attrs) != len(r.Attrs) {
			t.Fatalf("second round trip changed the result")
		}
	})
}

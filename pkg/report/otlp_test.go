package report_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"

	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/pkg/report/reporttest"
)

func TestOTLP_EveryFieldRoundTripsExactly(t *testing.T) {
	for name, r := range map[string]report.Result{"full": reporttest.Full(), "minimal": reporttest.Minimal()} {
		t.Run(name, func(t *testing.T) {
			b, err := report.MarshalOTLP(r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := report.UnmarshalOTLP(b)
			if err != nil {
				t.Fatal(err)
			}
			reporttest.Same(t, got, r)
		})
	}
}

func TestOTLP_UsesSemanticConventionsAndEventName(t *testing.T) {
	rl, err := report.EncodeOTLP(reporttest.Full())
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
	r := reporttest.Full()
	r.Attrs = append(r.Attrs, attribute.String("vantage.journey.name", "x"))
	if _, err := report.EncodeOTLP(r); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("reserved attr: err = %v", err)
	}
	r = reporttest.Full()
	r.TraceID = "0AF7651916CD43DD8448EB211C80319C"
	if _, err := report.EncodeOTLP(r); err == nil || !strings.Contains(err.Error(), "trace ID") {
		t.Fatalf("upper-case trace ID: err = %v", err)
	}
}

func TestOTLP_DecodeRejectsMalformedOrOversized_WithReason(t *testing.T) {
	base := func() *logspb.ResourceLogs {
		rl, err := report.EncodeOTLP(reporttest.Full())
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
		{"huge string", func(rl *logspb.ResourceLogs) {
			attr(rl, "url.full").Value = sv(strings.Repeat("x", report.MaxStringBytes+1))
		}, "more than"},
		{"too many attributes", func(rl *logspb.ResourceLogs) {
			lr := rl.ScopeLogs[0].LogRecords[0]
			for i := 0; i <= report.MaxAttributes; i++ {
				lr.Attributes = append(lr.Attributes, &commonpb.KeyValue{Key: "k" + strings.Repeat("x", i), Value: sv("v")})
			}
		}, "attributes"},
		{"too many steps", func(rl *logspb.ResourceLogs) {
			a := attr(rl, "vantage.journey.steps").Value.GetArrayValue()
			for len(a.Values) <= report.MaxSteps {
				a.Values = append(a.Values, a.Values[0])
			}
		}, "steps"},
		{"oversized record", func(rl *logspb.ResourceLogs) {
			lr := rl.ScopeLogs[0].LogRecords[0]
			for i := 0; i < 10; i++ {
				lr.Attributes = append(lr.Attributes, &commonpb.KeyValue{Key: strings.Repeat("k", i+1), Value: sv(strings.Repeat("x", report.MaxStringBytes))})
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
			_, err := report.DecodeOTLP(rl.Resource, rl.ScopeLogs[0].LogRecords[0])
			if err == nil || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("err = %v, want a reason containing %q", err, c.reason)
			}
		})
	}
}

func TestOTLP_OtherEventIsNotAResult(t *testing.T) {
	_, err := report.DecodeOTLP(nil, &logspb.LogRecord{EventName: "app.log"})
	if err != report.ErrNotResult {
		t.Fatalf("err = %v, want report.ErrNotResult", err)
	}
}

func FuzzDecodeOTLP(f *testing.F) {
	for _, r := range []report.Result{reporttest.Full(), reporttest.Minimal()} {
		b, err := report.MarshalOTLP(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := report.UnmarshalOTLP(b)
		if err != nil {
			return
		}
		// Whatever decodes must encode again and decode to the same Result.
		b2, err := report.MarshalOTLP(r)
		if err != nil {
			t.Fatalf("decoded result does not re-encode: %v", err)
		}
		r2, err := report.UnmarshalOTLP(b2)
		if err != nil {
			t.Fatalf("re-encoded result does not decode: %v", err)
		}
		if r2.ID != r.ID || len(r2.Steps) != len(r.Steps) || len(r2.Attrs) != len(r.Attrs) {
			t.Fatalf("second round trip changed the result")
		}
	})
}

package report

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"
)

// On the wire a Result is one OTLP log record. The mapping, field by field:
//
//	resource service.name        "vantage-prober"
//	resource service.instance.id Agent
//	resource cloud.region        Region
//	record   event_name          "vantage.journey.result"
//	record   time_unix_nano      Start (0 when zero)
//	record   trace_id            TraceID (16 bytes; absent when empty)
//	record   body                Error (a string; absent when empty)
//	record   severity            INFO / ERROR / WARN for pass / fail / probe_error (derived, ignored on decode)
//	attr     vantage.run.id              ID
//	attr     vantage.journey.name        Journey
//	attr     vantage.journey.kind        Kind
//	attr     vantage.run.slot            Slot, Unix ns
//	attr     vantage.run.trigger         Trigger
//	attr     vantage.run.duration        Duration, ns
//	attr     vantage.run.interval        Interval, ns (absent when 0)
//	attr     vantage.result.status       Status
//	attr     error.type                  ErrorType (absent when empty)
//	attr     vantage.journey.components  Components, string array (absent when empty)
//	attr     vantage.journey.runbook     Runbook (absent when empty)
//	attr     vantage.journey.steps       Steps, an array of kvlists (absent when none)
//	attr     anything else               Attrs, in order (url.full, server.address, vcs.*, cicd.*)
//
// Each step kvlist holds name, start_unix_nano, duration_ns, status,
// error.type and error.message (both absent when empty) and attributes (a
// kvlist of the step's Attrs, absent when none).
//
// Attribute values round-trip exactly for every scalar and typed-slice type
// (bool, int64, float64, string, their slices, and bytes). OTLP arrays carry
// no element type, so an empty slice of any type decodes as an empty SLICE
// value, and a SLICE whose elements all share one scalar type decodes as the
// typed slice. Times decode in UTC. A step's attributes travel as a kvlist,
// a map: they decode sorted by key (their canonical order), while the
// Result's own Attrs keep their order.

// Names of the OTLP encoding.
const (
	// EventName is the event name of a Result's log record.
	EventName = "vantage.journey.result"
	// ServiceName is the service.name of every prober.
	ServiceName = "vantage-prober"
	// ScopeName is the instrumentation scope of result records.
	ScopeName = "github.com/vantage-fleet/vantage/pkg/report"
)

// Attribute keys that Vantage defines (no semantic convention exists).
const (
	KeyRunID       attribute.Key = "vantage.run.id"
	KeyJourneyName attribute.Key = "vantage.journey.name"
	KeyJourneyKind attribute.Key = "vantage.journey.kind"
	KeyRunSlot     attribute.Key = "vantage.run.slot"
	KeyRunTrigger  attribute.Key = "vantage.run.trigger"
	KeyRunDuration attribute.Key = "vantage.run.duration"
	KeyRunInterval attribute.Key = "vantage.run.interval"
	KeyStatus      attribute.Key = "vantage.result.status"
	KeyComponents  attribute.Key = "vantage.journey.components"
	KeyRunbook     attribute.Key = "vantage.journey.runbook"
	KeySteps       attribute.Key = "vantage.journey.steps"
	stepName                     = "name"
	stepStart                    = "start_unix_nano"
	stepDuration                 = "duration_ns"
	stepStatus                   = "status"
	stepErrorType                = "error.type"
	stepError                    = "error.message"
	stepAttrs                    = "attributes"
)

// Bounds on a decoded result record. A record beyond any of them is
// rejected whole: the aggregator keeps no partial Results.
const (
	// MaxRecordBytes bounds the protobuf size of one record with its resource.
	MaxRecordBytes = 64 << 10
	// MaxAttributes bounds the attributes of the record, and of one step.
	MaxAttributes = 128
	// MaxStringBytes bounds every string value (and bytes value).
	MaxStringBytes = 8 << 10
	// MaxSteps bounds the steps of one Result.
	MaxSteps = 64
	// MaxArrayLen bounds every array and kvlist value.
	MaxArrayLen = 256
	// maxDepth bounds nesting of array and kvlist values inside an attribute.
	maxDepth = 4
)

// ErrNotResult is returned by DecodeOTLP for a log record that is not a
// Result (another event name); such records are ordinary logs.
var ErrNotResult = errors.New("not a vantage.journey.result record")

// reserved are the record attribute keys the encoding owns; Result.Attrs
// must not use them.
var reserved = map[attribute.Key]bool{
	KeyRunID: true, KeyJourneyName: true, KeyJourneyKind: true, KeyRunSlot: true,
	KeyRunTrigger: true, KeyRunDuration: true, KeyRunInterval: true, KeyStatus: true,
	semconv.ErrorTypeKey: true, KeyComponents: true, KeyRunbook: true, KeySteps: true,
}

// ResourceAttributes returns the resource attributes of r's record.
func ResourceAttributes(r *Result) []attribute.KeyValue {
	return []attribute.KeyValue{
		semconv.ServiceName(ServiceName),
		semconv.ServiceInstanceID(r.Agent),
		semconv.CloudRegion(r.Region),
	}
}

// RecordAttributes returns the attributes of r's log record, in order. It
// is the single definition of the mapping; EncodeOTLP and the agent's
// SDK-based exporter both use it.
func RecordAttributes(r *Result) ([]attribute.KeyValue, error) {
	if err := checkFields(r); err != nil {
		return nil, err
	}
	kv := make([]attribute.KeyValue, 0, 12+len(r.Attrs))
	kv = append(kv,
		KeyRunID.String(r.ID),
		KeyJourneyName.String(r.Journey),
		KeyJourneyKind.String(r.Kind),
		KeyRunSlot.Int64(unixNano(r.Slot)),
		KeyRunTrigger.String(string(r.Trigger)),
		KeyRunDuration.Int64(int64(r.Duration)),
	)
	if r.Interval != 0 {
		kv = append(kv, KeyRunInterval.Int64(int64(r.Interval)))
	}
	kv = append(kv, KeyStatus.String(string(r.Status)))
	if r.ErrorType != "" {
		kv = append(kv, semconv.ErrorTypeKey.String(string(r.ErrorType)))
	}
	if len(r.Components) > 0 {
		kv = append(kv, KeyComponents.StringSlice(r.Components))
	}
	if r.Runbook != "" {
		kv = append(kv, KeyRunbook.String(r.Runbook))
	}
	if len(r.Steps) > 0 {
		steps := make([]attribute.Value, len(r.Steps))
		for i := range r.Steps {
			s := &r.Steps[i]
			m := []attribute.KeyValue{
				attribute.String(stepName, s.Name),
				attribute.Int64(stepStart, unixNano(s.Start)),
				attribute.Int64(stepDuration, int64(s.Duration)),
				attribute.String(stepStatus, string(s.Status)),
			}
			if s.ErrorType != "" {
				m = append(m, attribute.String(stepErrorType, string(s.ErrorType)))
			}
			if s.Error != "" {
				m = append(m, attribute.String(stepError, s.Error))
			}
			if len(s.Attrs) > 0 {
				m = append(m, attribute.KeyValue{Key: stepAttrs, Value: attribute.MapValue(s.Attrs...)})
			}
			steps[i] = attribute.MapValue(m...)
		}
		kv = append(kv, attribute.KeyValue{Key: KeySteps, Value: attribute.SliceValue(steps...)})
	}
	for _, a := range r.Attrs {
		if reserved[a.Key] {
			return nil, fmt.Errorf("result attribute %q is reserved by the OTLP encoding", a.Key)
		}
		kv = append(kv, a)
	}
	return kv, nil
}

// Severity returns the OTLP severity number and text derived from a status.
func Severity(s Status) (logspb.SeverityNumber, string) {
	switch s {
	case StatusPass:
		return logspb.SeverityNumber_SEVERITY_NUMBER_INFO, "INFO"
	case StatusFail:
		return logspb.SeverityNumber_SEVERITY_NUMBER_ERROR, "ERROR"
	default:
		return logspb.SeverityNumber_SEVERITY_NUMBER_WARN, "WARN"
	}
}

// TraceIDBytes returns r's trace ID as 16 bytes, or nil when it has none.
func TraceIDBytes(r *Result) ([]byte, error) {
	if r.TraceID == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(r.TraceID)
	if err != nil || len(b) != 16 || hex.EncodeToString(b) != r.TraceID {
		return nil, fmt.Errorf("trace ID %q is not 32 lower-case hex digits", r.TraceID)
	}
	return b, nil
}

// EncodeOTLP encodes r as one ResourceLogs holding one ScopeLogs holding
// one LogRecord. It fails for a Result that DecodeOTLP would reject.
func EncodeOTLP(r Result) (*logspb.ResourceLogs, error) {
	attrs, err := RecordAttributes(&r)
	if err != nil {
		return nil, err
	}
	tid, err := TraceIDBytes(&r)
	if err != nil {
		return nil, err
	}
	sev, sevText := Severity(r.Status)
	lr := &logspb.LogRecord{
		TimeUnixNano:         uint64(unixNano(r.Start)),
		ObservedTimeUnixNano: uint64(unixNano(r.Start.Add(r.Duration))),
		SeverityNumber:       sev,
		SeverityText:         sevText,
		EventName:            EventName,
		TraceId:              tid,
		Attributes:           KeyValuesToProto(attrs),
	}
	if r.Start.IsZero() {
		lr.ObservedTimeUnixNano = 0
	}
	if r.Error != "" {
		lr.Body = &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: r.Error}}
	}
	rl := &logspb.ResourceLogs{
		Resource: &resourcepb.Resource{Attributes: KeyValuesToProto(ResourceAttributes(&r))},
		ScopeLogs: []*logspb.ScopeLogs{{
			Scope:      &commonpb.InstrumentationScope{Name: ScopeName},
			LogRecords: []*logspb.LogRecord{lr},
		}},
	}
	if _, err := DecodeOTLP(rl.Resource, lr); err != nil {
		return nil, fmt.Errorf("result %s cannot be encoded: %w", r.ID, err)
	}
	return rl, nil
}

// MarshalOTLP is EncodeOTLP followed by protobuf marshalling: the form the
// agent's spool stores.
func MarshalOTLP(r Result) ([]byte, error) {
	rl, err := EncodeOTLP(r)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(rl)
}

// UnmarshalOTLP decodes what MarshalOTLP wrote.
func UnmarshalOTLP(b []byte) (Result, error) {
	if len(b) > MaxRecordBytes {
		return Result{}, fmt.Errorf("record is %d bytes, more than %d", len(b), MaxRecordBytes)
	}
	var rl logspb.ResourceLogs
	if err := proto.Unmarshal(b, &rl); err != nil {
		return Result{}, fmt.Errorf("record: %w", err)
	}
	if len(rl.ScopeLogs) != 1 || len(rl.ScopeLogs[0].LogRecords) != 1 {
		return Result{}, errors.New("record: want exactly one scope with one log record")
	}
	return DecodeOTLP(rl.Resource, rl.ScopeLogs[0].LogRecords[0])
}

// IsResult reports whether lr claims to be a Result (by its event name).
func IsResult(lr *logspb.LogRecord) bool { return lr.GetEventName() == EventName }

// DecodeOTLP decodes one result log record and its resource. It returns
// ErrNotResult for a record of another event, and an error naming the
// problem for a malformed or oversized one.
func DecodeOTLP(res *resourcepb.Resource, lr *logspb.LogRecord) (Result, error) {
	var r Result
	if lr == nil || !IsResult(lr) {
		return r, ErrNotResult
	}
	if n := proto.Size(lr) + proto.Size(res); n > MaxRecordBytes {
		return r, fmt.Errorf("record is %d bytes, more than %d", n, MaxRecordBytes)
	}
	var serviceName string
	for _, kv := range res.GetAttributes() {
		s := kv.GetValue().GetStringValue()
		switch attribute.Key(kv.GetKey()) {
		case semconv.ServiceNameKey:
			serviceName = s
		case semconv.ServiceInstanceIDKey:
			r.Agent = s
		case semconv.CloudRegionKey:
			r.Region = s
		}
	}
	if serviceName != ServiceName {
		return r, fmt.Errorf("resource service.name is %q, want %q", clip(serviceName), ServiceName)
	}
	if len(lr.Attributes) > MaxAttributes {
		return r, fmt.Errorf("record has %d attributes, more than %d", len(lr.Attributes), MaxAttributes)
	}
	if len(lr.TraceId) != 0 {
		if len(lr.TraceId) != 16 {
			return r, fmt.Errorf("trace_id is %d bytes, want 16", len(lr.TraceId))
		}
		r.TraceID = hex.EncodeToString(lr.TraceId)
	}
	if lr.Body != nil && lr.Body.Value != nil {
		sv, ok := lr.Body.Value.(*commonpb.AnyValue_StringValue)
		if !ok {
			return r, errors.New("body must be a string (the error message)")
		}
		r.Error = sv.StringValue
	}
	r.Start = fromUnixNano(int64(lr.TimeUnixNano))
	seen := make(map[string]bool, len(lr.Attributes))
	var have struct{ slot, dur, status, trigger bool }
	for _, kv := range lr.Attributes {
		key := kv.GetKey()
		if seen[key] {
			return r, fmt.Errorf("attribute %q appears twice", clip(key))
		}
		seen[key] = true
		v, err := valueFromProto(kv.GetValue(), 0)
		if err != nil {
			return r, fmt.Errorf("attribute %q: %w", clip(key), err)
		}
		var ferr error
		switch attribute.Key(key) {
		case KeyRunID:
			r.ID, ferr = str(v)
		case KeyJourneyName:
			r.Journey, ferr = str(v)
		case KeyJourneyKind:
			r.Kind, ferr = str(v)
		case KeyRunSlot:
			var ns int64
			ns, ferr = i64(v)
			r.Slot, have.slot = fromUnixNano(ns), true
		case KeyRunTrigger:
			var s string
			s, ferr = str(v)
			r.Trigger, have.trigger = Trigger(s), true
		case KeyRunDuration:
			var ns int64
			ns, ferr = i64(v)
			r.Duration, have.dur = time.Duration(ns), true
		case KeyRunInterval:
			var ns int64
			ns, ferr = i64(v)
			r.Interval = time.Duration(ns)
		case KeyStatus:
			var s string
			s, ferr = str(v)
			r.Status, have.status = Status(s), true
		case semconv.ErrorTypeKey:
			var s string
			s, ferr = str(v)
			r.ErrorType = ErrorType(s)
		case KeyComponents:
			if v.Type() != attribute.STRINGSLICE {
				ferr = fmt.Errorf("want a string array, got %s", v.Type())
			} else {
				r.Components = v.AsStringSlice()
			}
		case KeyRunbook:
			r.Runbook, ferr = str(v)
		case KeySteps:
			r.Steps, ferr = decodeSteps(v)
		default:
			r.Attrs = append(r.Attrs, attribute.KeyValue{Key: attribute.Key(key), Value: v})
		}
		if ferr != nil {
			return r, fmt.Errorf("attribute %q: %w", key, ferr)
		}
	}
	switch {
	case !have.slot:
		return r, fmt.Errorf("attribute %q is required", KeyRunSlot)
	case !have.dur:
		return r, fmt.Errorf("attribute %q is required", KeyRunDuration)
	case !have.status:
		return r, fmt.Errorf("attribute %q is required", KeyStatus)
	case !have.trigger:
		return r, fmt.Errorf("attribute %q is required", KeyRunTrigger)
	}
	if err := checkFields(&r); err != nil {
		return r, err
	}
	return r, nil
}

// checkFields validates the fields every Result must have.
func checkFields(r *Result) error {
	switch {
	case r.ID == "":
		return fmt.Errorf("%s is required", KeyRunID)
	case r.Journey == "":
		return fmt.Errorf("%s is required", KeyJourneyName)
	case r.Agent == "":
		return fmt.Errorf("%s is required", semconv.ServiceInstanceIDKey)
	case r.Region == "":
		return fmt.Errorf("%s is required", semconv.CloudRegionKey)
	case !r.Status.Valid():
		return fmt.Errorf("%s %q is not pass, fail or probe_error", KeyStatus, clip(string(r.Status)))
	case !r.Trigger.Valid():
		return fmt.Errorf("%s %q is not schedule, confirm or manual", KeyRunTrigger, clip(string(r.Trigger)))
	case !r.ErrorType.Valid():
		return fmt.Errorf("%s %q is not a known error class", semconv.ErrorTypeKey, clip(string(r.ErrorType)))
	case r.Duration < 0:
		return fmt.Errorf("%s is negative", KeyRunDuration)
	case r.Interval < 0:
		return fmt.Errorf("%s is negative", KeyRunInterval)
	case len(r.Steps) > MaxSteps:
		return fmt.Errorf("%d steps, more than %d", len(r.Steps), MaxSteps)
	}
	for _, s := range []string{r.ID, r.Journey, r.Kind, r.Agent, r.Region, r.Runbook, r.Error} {
		if len(s) > MaxStringBytes {
			return fmt.Errorf("a string field is %d bytes, more than %d", len(s), MaxStringBytes)
		}
	}
	for i := range r.Steps {
		s := &r.Steps[i]
		switch {
		case !s.Status.Valid():
			return fmt.Errorf("step %d: status %q is not pass, fail or probe_error", i, clip(string(s.Status)))
		case !s.ErrorType.Valid():
			return fmt.Errorf("step %d: error.type %q is not a known error class", i, clip(string(s.ErrorType)))
		case len(s.Attrs) > MaxAttributes:
			return fmt.Errorf("step %d: %d attributes, more than %d", i, len(s.Attrs), MaxAttributes)
		}
	}
	return nil
}

func decodeSteps(v attribute.Value) ([]Step, error) {
	if v.Type() != attribute.SLICE {
		return nil, fmt.Errorf("want an array of kvlists, got %s", v.Type())
	}
	items := v.AsSlice()
	if len(items) > MaxSteps {
		return nil, fmt.Errorf("%d steps, more than %d", len(items), MaxSteps)
	}
	steps := make([]Step, 0, len(items))
	for i, it := range items {
		if it.Type() != attribute.MAP {
			return nil, fmt.Errorf("step %d: want a kvlist, got %s", i, it.Type())
		}
		var s Step
		seen := map[attribute.Key]bool{}
		var have struct{ name, start, dur, status bool }
		for _, kv := range it.AsMap() {
			if seen[kv.Key] {
				return nil, fmt.Errorf("step %d: key %q appears twice", i, clip(string(kv.Key)))
			}
			seen[kv.Key] = true
			var err error
			switch kv.Key {
			case stepName:
				s.Name, err = str(kv.Value)
				have.name = true
			case stepStart:
				var ns int64
				ns, err = i64(kv.Value)
				s.Start, have.start = fromUnixNano(ns), true
			case stepDuration:
				var ns int64
				ns, err = i64(kv.Value)
				s.Duration, have.dur = time.Duration(ns), true
			case stepStatus:
				var st string
				st, err = str(kv.Value)
				s.Status, have.status = Status(st), true
			case stepErrorType:
				var et string
				et, err = str(kv.Value)
				s.ErrorType = ErrorType(et)
			case stepError:
				s.Error, err = str(kv.Value)
			case stepAttrs:
				if kv.Value.Type() != attribute.MAP {
					err = fmt.Errorf("want a kvlist, got %s", kv.Value.Type())
				} else {
					s.Attrs = kv.Value.AsMap()
					if len(s.Attrs) > MaxAttributes {
						err = fmt.Errorf("%d attributes, more than %d", len(s.Attrs), MaxAttributes)
					}
				}
			default:
				err = errors.New("unknown step key")
			}
			if err != nil {
				return nil, fmt.Errorf("step %d: %q: %w", i, clip(string(kv.Key)), err)
			}
		}
		if !have.name || !have.start || !have.dur || !have.status {
			return nil, fmt.Errorf("step %d: name, %s, %s and status are required", i, stepStart, stepDuration)
		}
		if s.Duration < 0 {
			return nil, fmt.Errorf("step %d: negative duration", i)
		}
		steps = append(steps, s)
	}
	return steps, nil
}

func str(v attribute.Value) (string, error) {
	if v.Type() != attribute.STRING {
		return "", fmt.Errorf("want a string, got %s", v.Type())
	}
	return v.AsString(), nil
}

func i64(v attribute.Value) (int64, error) {
	if v.Type() != attribute.INT64 {
		return 0, fmt.Errorf("want an int, got %s", v.Type())
	}
	return v.AsInt64(), nil
}

// unixNano maps the zero time to 0 (time.Time{}.UnixNano is out of range).
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// clip shortens untrusted text quoted in an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// KeyValuesToProto converts attributes to OTLP key-values.
func KeyValuesToProto(kvs []attribute.KeyValue) []*commonpb.KeyValue {
	out := make([]*commonpb.KeyValue, len(kvs))
	for i, kv := range kvs {
		out[i] = &commonpb.KeyValue{Key: string(kv.Key), Value: ValueToProto(kv.Value)}
	}
	return out
}

// ValueToProto converts one attribute value to an OTLP AnyValue.
func ValueToProto(v attribute.Value) *commonpb.AnyValue {
	switch v.Type() {
	case attribute.BOOL:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v.AsBool()}}
	case attribute.INT64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v.AsInt64()}}
	case attribute.FLOAT64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: v.AsFloat64()}}
	case attribute.STRING:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v.AsString()}}
	case attribute.BYTESLICE:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: v.AsByteSlice()}}
	case attribute.BOOLSLICE:
		return array(v.AsBoolSlice(), attribute.BoolValue)
	case attribute.INT64SLICE:
		return array(v.AsInt64Slice(), attribute.Int64Value)
	case attribute.FLOAT64SLICE:
		return array(v.AsFloat64Slice(), attribute.Float64Value)
	case attribute.STRINGSLICE:
		return array(v.AsStringSlice(), attribute.StringValue)
	case attribute.SLICE:
		return array(v.AsSlice(), func(x attribute.Value) attribute.Value { return x })
	case attribute.MAP:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{
			KvlistValue: &commonpb.KeyValueList{Values: KeyValuesToProto(v.AsMap())}}}
	}
	return &commonpb.AnyValue{}
}

func array[T any](xs []T, f func(T) attribute.Value) *commonpb.AnyValue {
	vals := make([]*commonpb.AnyValue, len(xs))
	for i, x := range xs {
		vals[i] = ValueToProto(f(x))
	}
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: vals}}}
}

// valueFromProto converts an OTLP AnyValue to an attribute value within
// the decoding bounds.
func valueFromProto(v *commonpb.AnyValue, depth int) (attribute.Value, error) {
	if depth > maxDepth {
		return attribute.Value{}, fmt.Errorf("nested deeper than %d", maxDepth)
	}
	switch x := v.GetValue().(type) {
	case nil:
		return attribute.Value{}, nil
	case *commonpb.AnyValue_BoolValue:
		return attribute.BoolValue(x.BoolValue), nil
	case *commonpb.AnyValue_IntValue:
		return attribute.Int64Value(x.IntValue), nil
	case *commonpb.AnyValue_DoubleValue:
		return attribute.Float64Value(x.DoubleValue), nil
	case *commonpb.AnyValue_StringValue:
		if len(x.StringValue) > MaxStringBytes {
			return attribute.Value{}, fmt.Errorf("string of %d bytes, more than %d", len(x.StringValue), MaxStringBytes)
		}
		return attribute.StringValue(x.StringValue), nil
	case *commonpb.AnyValue_BytesValue:
		if len(x.BytesValue) > MaxStringBytes {
			return attribute.Value{}, fmt.Errorf("bytes of %d, more than %d", len(x.BytesValue), MaxStringBytes)
		}
		return attribute.ByteSliceValue(x.BytesValue), nil
	case *commonpb.AnyValue_ArrayValue:
		return arrayFromProto(x.ArrayValue.GetValues(), depth)
	case *commonpb.AnyValue_KvlistValue:
		kvs := x.KvlistValue.GetValues()
		if len(kvs) > MaxArrayLen {
			return attribute.Value{}, fmt.Errorf("kvlist of %d entries, more than %d", len(kvs), MaxArrayLen)
		}
		out := make([]attribute.KeyValue, len(kvs))
		for i, kv := range kvs {
			if len(kv.GetKey()) > MaxStringBytes {
				return attribute.Value{}, fmt.Errorf("key of %d bytes, more than %d", len(kv.GetKey()), MaxStringBytes)
			}
			e, err := valueFromProto(kv.GetValue(), depth+1)
			if err != nil {
				return attribute.Value{}, fmt.Errorf("%q: %w", clip(kv.GetKey()), err)
			}
			out[i] = attribute.KeyValue{Key: attribute.Key(kv.GetKey()), Value: e}
		}
		return attribute.MapValue(out...), nil
	}
	return attribute.Value{}, errors.New("unknown value type")
}

func arrayFromProto(vals []*commonpb.AnyValue, depth int) (attribute.Value, error) {
	if len(vals) > MaxArrayLen {
		return attribute.Value{}, fmt.Errorf("array of %d values, more than %d", len(vals), MaxArrayLen)
	}
	elems := make([]attribute.Value, len(vals))
	for i, e := range vals {
		v, err := valueFromProto(e, depth+1)
		if err != nil {
			return attribute.Value{}, fmt.Errorf("[%d]: %w", i, err)
		}
		elems[i] = v
	}
	if len(elems) == 0 {
		return attribute.SliceValue(), nil
	}
	t := elems[0].Type()
	for _, e := range elems[1:] {
		if e.Type() != t {
			return attribute.SliceValue(elems...), nil
		}
	}
	switch t {
	case attribute.BOOL:
		return attribute.BoolSliceValue(typed(elems, attribute.Value.AsBool)), nil
	case attribute.INT64:
		return attribute.Int64SliceValue(typed(elems, attribute.Value.AsInt64)), nil
	case attribute.FLOAT64:
		return attribute.Float64SliceValue(typed(elems, attribute.Value.AsFloat64)), nil
	case attribute.STRING:
		return attribute.StringSliceValue(typed(elems, attribute.Value.AsString)), nil
	}
	return attribute.SliceValue(elems...), nil
}

func typed[T any](vs []attribute.Value, f func(attribute.Value) T) []T {
	out := make([]T, len(vs))
	for i, v := range vs {
		out[i] = f(v)
	}
	return out
}

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
	if len(res.GetAttributes()) > MaxAttributes {
		return r, fmt.Errorf("resource has %d attributes, more than %d", len(res.GetAttributes()), MaxAttributes)
	}
	// The size bound is kept as a budget charged while decoding (keys,
	// strings, bytes and 8 per scalar): cheaper than proto.Size, and it
	// bounds the same thing, the memory one record can claim.
	d := decoder{budget: MaxRecordBytes - len(lr.GetBody().GetStringValue())}
	var serviceName string
	for _, kv := range res.GetAttributes() {
		s := kv.GetValue().GetStringValue()
		d.charge(len(kv.GetKey()) + len(s))
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
	if dup, ok := duplicateKey(lr.Attributes); ok {
		return r, fmt.Errorf("attribute %q appears twice", clip(dup))
	}
	var have struct{ slot, dur, status, trigger bool }
	var err error
	for _, kv := range lr.Attributes {
		key := kv.GetKey()
		d.charge(len(key))
		if attribute.Key(key) == KeySteps {
			if r.Steps, err = d.steps(kv.GetValue()); err != nil {
				return r, fmt.Errorf("attribute %q: %w", key, err)
			}
			continue
		}
		v, err := d.value(kv.GetValue(), 0)
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
		default:
			r.Attrs = append(r.Attrs, attribute.KeyValue{Key: attribute.Key(key), Value: v})
		}
		if ferr != nil {
			return r, fmt.Errorf("attribute %q: %w", key, ferr)
		}
	}
	if d.budget < 0 {
		return r, fmt.Errorf("record is larger than %d bytes", MaxRecordBytes)
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

// duplicateKey finds a key that appears twice. Records have a few dozen
// attributes at most, where comparing pairs is cheaper than a map.
func duplicateKey(kvs []*commonpb.KeyValue) (string, bool) {
	if len(kvs) > 32 {
		seen := make(map[string]bool, len(kvs))
		for _, kv := range kvs {
			if seen[kv.GetKey()] {
				return kv.GetKey(), true
			}
			seen[kv.GetKey()] = true
		}
		return "", false
	}
	for i := 1; i < len(kvs); i++ {
		for j := 0; j < i; j++ {
			if kvs[i].GetKey() == kvs[j].GetKey() {
				return kvs[i].GetKey(), true
			}
		}
	}
	return "", false
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

// steps decodes the steps array straight from the wire form.
func (d *decoder) steps(v *commonpb.AnyValue) ([]Step, error) {
	arr, ok := v.GetValue().(*commonpb.AnyValue_ArrayValue)
	if !ok {
		return nil, errors.New("want an array of kvlists")
	}
	items := arr.ArrayValue.GetValues()
	if len(items) > MaxSteps {
		return nil, fmt.Errorf("%d steps, more than %d", len(items), MaxSteps)
	}
	steps := make([]Step, 0, len(items))
	for i, it := range items {
		kl, ok := it.GetValue().(*commonpb.AnyValue_KvlistValue)
		if !ok {
			return nil, fmt.Errorf("step %d: want a kvlist", i)
		}
		var s Step
		var seen uint8
		for _, kv := range kl.KvlistValue.GetValues() {
			key := kv.GetKey()
			d.charge(len(key))
			bit := stepKeyBit(key)
			if bit == 0 {
				return nil, fmt.Errorf("step %d: unknown key %q", i, clip(key))
			}
			if seen&bit != 0 {
				return nil, fmt.Errorf("step %d: key %q appears twice", i, key)
			}
			seen |= bit
			if key == stepAttrs {
				attrs, err := d.kvlist(kv.GetValue(), 1)
				if err != nil {
					return nil, fmt.Errorf("step %d: %q: %w", i, key, err)
				}
				s.Attrs = attrs
				continue
			}
			v, err := d.value(kv.GetValue(), 1)
			if err != nil {
				return nil, fmt.Errorf("step %d: %q: %w", i, key, err)
			}
			switch key {
			case stepName:
				s.Name, err = str(v)
			case stepStart:
				var ns int64
				ns, err = i64(v)
				s.Start = fromUnixNano(ns)
			case stepDuration:
				var ns int64
				ns, err = i64(v)
				s.Duration = time.Duration(ns)
			case stepStatus:
				var st string
				st, err = str(v)
				s.Status = Status(st)
			case stepErrorType:
				var et string
				et, err = str(v)
				s.ErrorType = ErrorType(et)
			case stepError:
				s.Error, err = str(v)
			}
			if err != nil {
				return nil, fmt.Errorf("step %d: %q: %w", i, key, err)
			}
		}
		const required = 1<<0 | 1<<1 | 1<<2 | 1<<3
		if seen&required != required {
			return nil, fmt.Errorf("step %d: %s, %s, %s and %s are required", i, stepName, stepStart, stepDuration, stepStatus)
		}
		if s.Duration < 0 {
			return nil, fmt.Errorf("step %d: negative duration", i)
		}
		steps = append(steps, s)
	}
	return steps, nil
}

func stepKeyBit(k string) uint8 {
	switch k {
	case stepName:
		return 1 << 0
	case stepStart:
		return 1 << 1
	case stepDuration:
		return 1 << 2
	case stepStatus:
		return 1 << 3
	case stepErrorType:
		return 1 << 4
	case stepError:
		return 1 << 5
	case stepAttrs:
		return 1 << 6
	}
	return 0
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

// decoder converts OTLP values to attribute values within the decoding
// bounds, charging what it decodes to a byte budget.
type decoder struct{ budget int }

func (d *decoder) charge(n int) { d.budget -= n }

func (d *decoder) value(v *commonpb.AnyValue, depth int) (attribute.Value, error) {
	if depth > maxDepth {
		return attribute.Value{}, fmt.Errorf("nested deeper than %d", maxDepth)
	}
	if d.budget < 0 {
		return attribute.Value{}, fmt.Errorf("record is larger than %d bytes", MaxRecordBytes)
	}
	switch x := v.GetValue().(type) {
	case nil:
		return attribute.Value{}, nil
	case *commonpb.AnyValue_BoolValue:
		d.charge(8)
		return attribute.BoolValue(x.BoolValue), nil
	case *commonpb.AnyValue_IntValue:
		d.charge(8)
		return attribute.Int64Value(x.IntValue), nil
	case *commonpb.AnyValue_DoubleValue:
		d.charge(8)
		return attribute.Float64Value(x.DoubleValue), nil
	case *commonpb.AnyValue_StringValue:
		if len(x.StringValue) > MaxStringBytes {
			return attribute.Value{}, fmt.Errorf("string of %d bytes, more than %d", len(x.StringValue), MaxStringBytes)
		}
		d.charge(len(x.StringValue))
		return attribute.StringValue(x.StringValue), nil
	case *commonpb.AnyValue_BytesValue:
		if len(x.BytesValue) > MaxStringBytes {
			return attribute.Value{}, fmt.Errorf("bytes of %d, more than %d", len(x.BytesValue), MaxStringBytes)
		}
		d.charge(len(x.BytesValue))
		return attribute.ByteSliceValue(x.BytesValue), nil
	case *commonpb.AnyValue_ArrayValue:
		return d.array(x.ArrayValue.GetValues(), depth)
	case *commonpb.AnyValue_KvlistValue:
		kvs, err := d.kvlist(v, depth)
		if err != nil {
			return attribute.Value{}, err
		}
		return attribute.MapValue(kvs...), nil
	}
	return attribute.Value{}, errors.New("unknown value type")
}

// kvlist decodes a kvlist value into key-values, in wire order.
func (d *decoder) kvlist(v *commonpb.AnyValue, depth int) ([]attribute.KeyValue, error) {
	kl, ok := v.GetValue().(*commonpb.AnyValue_KvlistValue)
	if !ok {
		return nil, errors.New("want a kvlist")
	}
	kvs := kl.KvlistValue.GetValues()
	if len(kvs) > MaxArrayLen || (depth == 1 && len(kvs) > MaxAttributes) {
		return nil, fmt.Errorf("kvlist of %d entries, more than allowed", len(kvs))
	}
	out := make([]attribute.KeyValue, len(kvs))
	for i, kv := range kvs {
		if len(kv.GetKey()) > MaxStringBytes {
			return nil, fmt.Errorf("key of %d bytes, more than %d", len(kv.GetKey()), MaxStringBytes)
		}
		d.charge(len(kv.GetKey()))
		e, err := d.value(kv.GetValue(), depth+1)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", clip(kv.GetKey()), err)
		}
		out[i] = attribute.KeyValue{Key: attribute.Key(kv.GetKey()), Value: e}
	}
	return out, nil
}

func (d *decoder) array(vals []*commonpb.AnyValue, depth int) (attribute.Value, error) {
	if len(vals) > MaxArrayLen {
		return attribute.Value{}, fmt.Errorf("array of %d values, more than %d", len(vals), MaxArrayLen)
	}
	elems := make([]attribute.Value, len(vals))
	for i, e := range vals {
		v, err := d.value(e, depth+1)
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

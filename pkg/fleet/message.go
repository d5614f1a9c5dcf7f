package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Gossip user messages.
//
// Every message is: the magic byte 'V', a format version byte (1), a type
// byte, then a JSON body. Anything else — another magic, another version,
// an unknown type, bad JSON, unknown fields, a field out of bounds, or more
// than MaxMessageBytes in all — is dropped and counted, never acted on.
const (
	msgMagic   = 'V'
	msgVersion = 1
	// msgConfirm asks the fleet to confirm a failed run.
	msgConfirm = 1
	// MaxMessageBytes bounds a gossip user message; a confirmation request
	// is well under 512 bytes.
	MaxMessageBytes = 1024
	maxJourneyLen   = 128
	maxKindLen      = 32
)

// ConfirmRequest asks the fleet to confirm a failed scheduled run: one
// other prober of the origin's region and the owner in every other region
// run the journey at once for the same slot.
type ConfirmRequest struct {
	// Journey is the journey's name.
	Journey string `json:"journey"`
	// Kind is the journey's kind; a receiver that knows the journey under
	// another kind ignores the request.
	Kind string `json:"kind"`
	// Slot is the failed run's slot, in Unix nanoseconds on the wire.
	Slot time.Time `json:"-"`
	// Region and Agent name the origin.
	Region string `json:"region"`
	Agent  string `json:"agent"`
}

type wireConfirm struct {
	ConfirmRequest
	SlotNS int64 `json:"slot"`
}

// validate checks a request's fields.
func (r ConfirmRequest) validate() error {
	if r.Journey == "" || r.Kind == "" || r.Region == "" || r.Agent == "" {
		return errors.New("journey, kind, region and agent are required")
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"journey", r.Journey, maxJourneyLen}, {"kind", r.Kind, maxKindLen}, {"region", r.Region, maxRegionLen}, {"agent", r.Agent, maxNameLen}} {
		if err := checkText(f.name, f.v, f.max); err != nil {
			return err
		}
	}
	if r.Slot.IsZero() || r.Slot.UnixNano() <= 0 {
		return errors.New("slot must be a positive time")
	}
	return nil
}

// encodeConfirm encodes r as a gossip message.
func encodeConfirm(r ConfirmRequest) ([]byte, error) {
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("confirmation request: %w", err)
	}
	body, err := json.Marshal(wireConfirm{ConfirmRequest: r, SlotNS: r.Slot.UnixNano()})
	if err != nil {
		return nil, fmt.Errorf("confirmation request: %w", err)
	}
	b := append([]byte{msgMagic, msgVersion, msgConfirm}, body...)
	if len(b) > MaxMessageBytes {
		return nil, fmt.Errorf("confirmation request is %d bytes, over %d", len(b), MaxMessageBytes)
	}
	return b, nil
}

// decodeMessage decodes and validates a gossip user message. It does not
// keep b.
func decodeMessage(b []byte) (ConfirmRequest, error) {
	var r ConfirmRequest
	switch {
	case len(b) > MaxMessageBytes:
		return r, fmt.Errorf("message is %d bytes, over %d", len(b), MaxMessageBytes)
	case len(b) < 3 || b[0] != msgMagic:
		return r, errors.New("not a Vantage message")
	case b[1] != msgVersion:
		return r, fmt.Errorf("message version %d is not supported (want %d)", b[1], msgVersion)
	case b[2] != msgConfirm:
		return r, fmt.Errorf("unknown message type %d", b[2])
	}
	var w wireConfirm
	dec := json.NewDecoder(bytes.NewReader(b[3:]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return r, fmt.Errorf("confirmation request: %w", err)
	}
	if dec.More() {
		return r, errors.New("confirmation request: trailing data")
	}
	r = w.ConfirmRequest
	r.Slot = time.Unix(0, w.SlotNS).UTC()
	if err := r.validate(); err != nil {
		return ConfirmRequest{}, fmt.Errorf("confirmation request: %w", err)
	}
	return r, nil
}

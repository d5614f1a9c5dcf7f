package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Roles a node can gossip under.
const (
	// RoleProber runs journeys and can own them.
	RoleProber = "prober"
	// RoleAggregator only watches membership; it never owns a journey.
	RoleAggregator = "aggregator"
	// RoleObserver is a short-lived node (`prober members`) that looks and
	// leaves; it never owns a journey.
	RoleObserver = "observer"
)

// metaVersion is the version of the node metadata format. A decoder
// rejects any other version rather than guessing.
const metaVersion = 1

// MaxMetaBytes is memberlist's limit on node metadata.
const MaxMetaBytes = 512

// Field bounds of the metadata; together they keep it under MaxMetaBytes.
const (
	maxRegionLen  = 64
	maxVersionLen = 96
	maxDigestLen  = 128
	maxNameLen    = 128
)

// Meta is what a node tells the fleet about itself in its memberlist
// metadata.
type Meta struct {
	// Role is RoleProber, RoleAggregator or RoleObserver.
	Role string `json:"role"`
	// Region is the node's region; required for probers.
	Region string `json:"region"`
	// Version is the software version (pkg/version).
	Version string `json:"version"`
	// ConfigDigest identifies the journey definitions the node runs, so
	// that config drift across the fleet is visible.
	ConfigDigest string `json:"digest"`
}

// wireMeta is Meta on the wire: a JSON object with a format version.
type wireMeta struct {
	V int `json:"v"`
	Meta
}

// Member is one live node of the fleet as this node sees it.
type Member struct {
	// Name is the node's stable name.
	Name string `json:"name"`
	// Addr is its gossip address, host:port.
	Addr string `json:"addr"`
	Meta
}

// Validate checks a Meta's fields: a known role, a region for probers,
// printable bounded strings.
func (m Meta) Validate() error {
	switch m.Role {
	case RoleProber, RoleAggregator, RoleObserver:
	default:
		return fmt.Errorf("unknown role %.32q", m.Role)
	}
	if m.Role == RoleProber && m.Region == "" {
		return errors.New("a prober needs a region")
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"region", m.Region, maxRegionLen}, {"version", m.Version, maxVersionLen}, {"digest", m.ConfigDigest, maxDigestLen}} {
		if err := checkText(f.name, f.v, f.max); err != nil {
			return err
		}
	}
	return nil
}

// encodeMeta encodes m for memberlist, failing if it is invalid or too big.
func encodeMeta(m Meta) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("node metadata: %w", err)
	}
	b, err := json.Marshal(wireMeta{V: metaVersion, Meta: m})
	if err != nil {
		return nil, fmt.Errorf("node metadata: %w", err)
	}
	if len(b) > MaxMetaBytes {
		return nil, fmt.Errorf("node metadata is %d bytes, over memberlist's limit of %d", len(b), MaxMetaBytes)
	}
	return b, nil
}

// decodeMeta decodes and validates a peer's metadata.
func decodeMeta(b []byte) (Meta, error) {
	if len(b) == 0 {
		return Meta{}, errors.New("no metadata")
	}
	if len(b) > MaxMetaBytes {
		return Meta{}, fmt.Errorf("metadata is %d bytes, over %d", len(b), MaxMetaBytes)
	}
	var w wireMeta
	if err := json.Unmarshal(b, &w); err != nil {
		return Meta{}, fmt.Errorf("metadata is not valid JSON: %w", err)
	}
	if w.V != metaVersion {
		return Meta{}, fmt.Errorf("metadata version %d is not supported (want %d)", w.V, metaVersion)
	}
	if err := w.Meta.Validate(); err != nil {
		return Meta{}, err
	}
	return w.Meta, nil
}

// checkText accepts valid UTF-8 of at most max bytes without control characters.
func checkText(field, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%s is %d bytes, over %d", field, len(v), max)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s is not valid UTF-8", field)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s contains a control character", field)
		}
	}
	return nil
}

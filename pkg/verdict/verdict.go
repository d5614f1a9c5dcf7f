// Package verdict owns classification: from deduplicated Results, fleet
// membership snapshots and a clock passed in, it decides per journey and
// region whether the product is ok, degraded or failing, whether a region is
// blind or its results are missing, whether a prober is suspect, the scope
// (regional, global, unknown) and which failing journeys form one incident.
// It is pure and deterministic: no I/O, no clock reads, no goroutines, so
// every rule is a table test. It must not send anything anywhere; pkg/alert
// turns its Conditions into notifications.
package verdict

import (
	"errors"
	"time"

	"github.com/vantage-fleet/vantage/config"
)

// Config holds the thresholds (see config.Verdict for their meaning).
type Config struct {
	FailuresToTrip   int
	SuccessesToClear int
	Window           int
	DegradedRatio    float64
	SuspectRatio     float64
	NoDataIntervals  int
	GlobalMinRegions int
	GlobalRatio      float64
	MaxSlotSkew      time.Duration
	MaxSlotAge       time.Duration
	ForgetAfter      time.Duration
}

// FromConfig converts the TOML section into Config.
func FromConfig(c config.Verdict) Config {
	return Config{
		FailuresToTrip: c.FailuresToTrip, SuccessesToClear: c.SuccessesToClear, Window: c.Window,
		DegradedRatio: c.DegradedRatio, SuspectRatio: c.SuspectRatio, NoDataIntervals: c.NoDataIntervals,
		GlobalMinRegions: c.GlobalMinRegions, GlobalRatio: c.GlobalRatio,
		MaxSlotSkew: c.MaxSlotSkew.D, MaxSlotAge: c.MaxSlotAge.D, ForgetAfter: c.ForgetAfter.D,
	}
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config { return FromConfig(config.DefaultVerdict()) }

// Membership is a snapshot of the fleet: the live prober names per region.
// Known is false when the aggregator has no gossip view; then missing data
// cannot be told apart as blind or results-missing and is reported as NoData.
type Membership struct {
	Probers map[string][]string
	Known   bool
}

// State is the verdict of one journey in one region.
type State string

// The states of a (journey, region) cell.
const (
	StateOK       State = "ok"
	StateDegraded State = "degraded"
	StateFailing  State = "failing"
	// StateBlind: no data and no live prober in the region.
	StateBlind State = "blind"
	// StateMissing: no data although probers in the region are alive.
	StateMissing State = "results_missing"
	// StateNoData: no data and no membership view to say why.
	StateNoData State = "no_data"
)

// HasData reports whether s is judged from results (ok, degraded, failing).
func (s State) HasData() bool { return s == StateOK || s == StateDegraded || s == StateFailing }

// Scope is how widely a journey fails.
type Scope string

// The scopes of a journey.
const (
	ScopeNone     Scope = "none"
	ScopeRegional Scope = "regional"
	ScopeGlobal   Scope = "global"
	// ScopeUnknown: failing, but only one region has data, so regional and
	// global cannot be told apart.
	ScopeUnknown Scope = "unknown"
)

// Errors Accept returns; each leaves the state unchanged and is counted.
var (
	ErrInvalid    = errors.New("verdict: invalid result")
	ErrDuplicate  = errors.New("verdict: duplicate result")
	ErrSlotFuture = errors.New("verdict: slot too far in the future (agent clock skew)")
	ErrSlotOld    = errors.New("verdict: slot too old")
)

// Counters count what Accept did.
type Counters struct {
	Accepted, Duplicate, Invalid, SlotFuture, SlotOld, ProbeErrors uint64
}

package config

import (
	"fmt"
	"time"
)

// Verdict holds the aggregator's classification thresholds (DESIGN.md,
// "Verdicts"). Every field has a safe default; lowering the counts makes
// detection faster and pages noisier.
type Verdict struct {
	// FailuresToTrip is how many consecutive failing region-slots make a
	// region "failing". A confirmation run counts as a region-slot sample, so
	// with the default 2 a failed scheduled run plus a failed confirmation
	// trips within seconds. Default 2; 1 pages on a single failed run.
	FailuresToTrip int `toml:"failures_to_trip"`
	// SuccessesToClear is how many consecutive passing region-slots clear a
	// failing region. Default 2; higher avoids flapping, delays resolution.
	SuccessesToClear int `toml:"successes_to_clear"`
	// Window is how many recent region-slots the degraded ratio and the
	// per-agent failure ratio look at. Default 10.
	Window int `toml:"window"`
	// DegradedRatio is the failure ratio over Window at or above which a
	// region that is not failing is "degraded". Default 0.2.
	DegradedRatio float64 `toml:"degraded_ratio"`
	// SuspectRatio is one agent's failure ratio over its last Window runs at
	// or above which it is a "prober suspect" while its region's other
	// agents pass. Default 0.5.
	SuspectRatio float64 `toml:"suspect_ratio"`
	// NoDataIntervals: a region with no result for this many schedule
	// intervals has no data ("blind" or "results missing"). Default 3.
	NoDataIntervals int `toml:"no_data_intervals"`
	// GlobalMinRegions is the least number of failing regions for "global".
	// Default 2.
	GlobalMinRegions int `toml:"global_min_regions"`
	// GlobalRatio is the least share of regions with data that must be
	// failing for "global". Default 0.5.
	GlobalRatio float64 `toml:"global_ratio"`
	// MaxSlotSkew bounds how far a Result's slot may lie in the future of
	// the aggregator's clock (agents with skewed clocks); further results
	// are rejected and counted. Default "2m".
	MaxSlotSkew Duration `toml:"max_slot_skew"`
	// MaxSlotAge bounds how old a Result's slot may be (late replays after
	// an outage older than this only fill the status history, they are
	// rejected for verdicts). Default "1h".
	MaxSlotAge Duration `toml:"max_slot_age"`
	// ForgetAfter expires a journey that has sent nothing for this long
	// (removed from every agent's config). Default "24h".
	ForgetAfter Duration `toml:"forget_after"`
}

func (v *Verdict) applyDefaults() {
	if v.FailuresToTrip == 0 {
		v.FailuresToTrip = 2
	}
	if v.SuccessesToClear == 0 {
		v.SuccessesToClear = 2
	}
	if v.Window == 0 {
		v.Window = 10
	}
	if v.DegradedRatio == 0 {
		v.DegradedRatio = 0.2
	}
	if v.SuspectRatio == 0 {
		v.SuspectRatio = 0.5
	}
	if v.NoDataIntervals == 0 {
		v.NoDataIntervals = 3
	}
	if v.GlobalMinRegions == 0 {
		v.GlobalMinRegions = 2
	}
	if v.GlobalRatio == 0 {
		v.GlobalRatio = 0.5
	}
	if v.MaxSlotSkew.IsZero() {
		v.MaxSlotSkew = Dur(2 * time.Minute)
	}
	if v.MaxSlotAge.IsZero() {
		v.MaxSlotAge = Dur(time.Hour)
	}
	if v.ForgetAfter.IsZero() {
		v.ForgetAfter = Dur(24 * time.Hour)
	}
}

// DefaultVerdict returns the thresholds with every default applied.
func DefaultVerdict() Verdict {
	var v Verdict
	v.applyDefaults()
	return v
}

func (v *Verdict) validate(p *problems, key string) {
	posInt := func(name string, n, max int) {
		if n < 1 || n > max {
			p.add(key+"."+name, fmt.Sprintf("must be between 1 and %d, got %d", max, n))
		}
	}
	posInt("failures_to_trip", v.FailuresToTrip, 100)
	posInt("successes_to_clear", v.SuccessesToClear, 100)
	posInt("window", v.Window, 1000)
	posInt("no_data_intervals", v.NoDataIntervals, 1000)
	posInt("global_min_regions", v.GlobalMinRegions, 1000)
	if v.FailuresToTrip > v.Window {
		p.add(key+".failures_to_trip", fmt.Sprintf("must not exceed window (%d)", v.Window))
	}
	ratio := func(name string, r float64) {
		if !(r > 0 && r <= 1) {
			p.add(key+"."+name, fmt.Sprintf("must be in (0, 1], got %g", r))
		}
	}
	ratio("degraded_ratio", v.DegradedRatio)
	ratio("suspect_ratio", v.SuspectRatio)
	ratio("global_ratio", v.GlobalRatio)
	// Malformed durations are reported by the decoder; zero ones got defaults.
}

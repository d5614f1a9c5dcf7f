package status

import (
	"time"

	"github.com/vantage-fleet/vantage/pkg/verdict"
)

// Provider is what the status page and the JSON API read. The aggregator's
// alert.Engine implements it; tests use a fixed one.
type Provider interface {
	// Snapshot returns the verdicts as of the last evaluation.
	Snapshot() verdict.Snapshot
	// Alerts returns the alerts that are firing or whose resolution is
	// still being delivered.
	Alerts() []Alert
	// DetectionLatency is the histogram of first failing slot → alert.
	DetectionLatency() Histogram
}

// Alert is one alert as the API shows it.
type Alert struct {
	Key         string            `json:"key"`
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"starts_at"`
	EndsAt      *time.Time        `json:"ends_at,omitempty"`
}

// Histogram is a cumulative-bucket histogram in seconds.
type Histogram struct {
	// Bounds are the upper bounds of the buckets, ascending; Counts[i] is the
	// number of observations ≤ Bounds[i] (cumulative), and the +Inf bucket is Count.
	Bounds []float64
	Counts []uint64
	Sum    float64
	Count  uint64
}

// DefaultLatencyBounds returns the detection-latency buckets in seconds.
func DefaultLatencyBounds() []float64 {
	return []float64{5, 10, 15, 20, 30, 45, 60, 90, 120, 300, 600}
}

// NewHistogram returns an empty histogram over bounds.
func NewHistogram(bounds []float64) Histogram {
	return Histogram{Bounds: append([]float64(nil), bounds...), Counts: make([]uint64, len(bounds))}
}

// Observe adds one value in seconds.
func (h *Histogram) Observe(v float64) {
	for i, b := range h.Bounds {
		if v <= b {
			h.Counts[i]++
		}
	}
	h.Sum += v
	h.Count++
}

// Clone returns a copy.
func (h Histogram) Clone() Histogram {
	return Histogram{Bounds: append([]float64(nil), h.Bounds...), Counts: append([]uint64(nil), h.Counts...), Sum: h.Sum, Count: h.Count}
}

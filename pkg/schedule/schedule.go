// Package schedule owns when journeys run: parsing schedules (robfig/cron's
// parser, seconds optional, UTC), computing slots and per-region phase
// offsets, and the run loop. Slot arithmetic is pure; only the Loop touches
// a clock, and that clock is passed in.
package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// parser accepts 5 or 6 fields (seconds optional) and descriptors such as
// "@hourly"; "@every D" is handled by us so that its slots are aligned.
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Schedule yields a journey's slots: the instants its runs belong to.
type Schedule struct {
	spec    string
	every   time.Duration // for "@every": slots are multiples of every since the Unix epoch
	cron    cron.Schedule // otherwise
	nominal time.Duration
}

// Parse parses a schedule. "@every 30s" gives slots aligned to multiples of
// 30 s since the Unix epoch, so that every agent computes the same slots;
// cron expressions (with or without a seconds field) are evaluated in UTC.
func Parse(spec string) (*Schedule, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, fmt.Errorf("empty schedule")
	}
	if strings.HasPrefix(spec, "CRON_TZ=") || strings.HasPrefix(spec, "TZ=") {
		return nil, fmt.Errorf("time zones are not supported: schedules are UTC")
	}
	if rest, ok := strings.CutPrefix(spec, "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil {
			return nil, fmt.Errorf("invalid @every duration %q", rest)
		}
		if d < time.Second {
			return nil, fmt.Errorf("@every %s is shorter than one second", d)
		}
		return &Schedule{spec: spec, every: d, nominal: d}, nil
	}
	c, err := parser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("invalid cron expression %q: %v", spec, err)
	}
	s := &Schedule{spec: spec, cron: c}
	s.nominal = s.measureInterval()
	if s.nominal <= 0 {
		return nil, fmt.Errorf("cron expression %q never fires", spec)
	}
	return s, nil
}

// String returns the spec as written.
func (s *Schedule) String() string { return s.spec }

// Interval is the nominal time between slots: the @every duration, or the
// shortest gap between consecutive cron slots over a sample of them.
func (s *Schedule) Interval() time.Duration { return s.nominal }

// Next returns the first slot strictly after t, in UTC.
func (s *Schedule) Next(t time.Time) time.Time {
	t = t.UTC()
	if s.every > 0 {
		n := t.UnixNano()
		e := int64(s.every)
		next := (n/e + 1) * e
		if n < 0 && n%e != 0 {
			next = (n / e) * e
		}
		return time.Unix(0, next).UTC()
	}
	return s.cron.Next(t).UTC()
}

// Prev returns the last slot at or before t (the slot t belongs to).
func (s *Schedule) Prev(t time.Time) time.Time {
	t = t.UTC()
	if s.every > 0 {
		e := int64(s.every)
		n := t.UnixNano()
		p := (n / e) * e
		if n < 0 && n%e != 0 {
			p -= e
		}
		return time.Unix(0, p).UTC()
	}
	// Walk forward from a few nominal intervals back, which covers irregular cron gaps such as weekends.
	start := t.Add(-8*s.nominal - time.Second)
	prev := time.Time{}
	for n := s.cron.Next(start); !n.IsZero() && !n.After(t); n = s.cron.Next(n) {
		prev = n
	}
	return prev.UTC()
}

func (s *Schedule) measureInterval() time.Duration {
	base := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	prev := s.cron.Next(base)
	if prev.IsZero() {
		return 0
	}
	min := time.Duration(0)
	for i := 0; i < 64; i++ {
		n := s.cron.Next(prev)
		if n.IsZero() {
			break
		}
		if d := n.Sub(prev); min == 0 || d < min {
			min = d
		}
		prev = n
	}
	return min
}

// PhaseOffset is how far region number index (0-based, of regions) shifts
// a journey's slots: index × interval / regions. With three regions at a
// 30 s interval the fleet looks every 10 s while each region still runs the
// journey once per interval.
func PhaseOffset(index, regions int, interval time.Duration) time.Duration {
	if regions <= 1 || index <= 0 {
		return 0
	}
	index %= regions
	return time.Duration(int64(interval) * int64(index) / int64(regions))
}

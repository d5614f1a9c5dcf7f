package campaign

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/vantage-fleet/vantage/lab"
)

// Categories of a randomised campaign's faults.
const (
	CatRegional      = "regional"
	CatGlobal        = "global"
	CatAgentLocal    = "agent-local"
	CatPartial       = "partial"
	CatReplicaLag    = "replica-lag"
	CatPipelineStall = "pipeline-stall"
	CatProberDeath   = "prober-death"
	CatAggRestart    = "aggregator-restart"
)

// mix is one round of categories; a campaign repeats it (shuffled) until
// it has its number of faults, so every category comes many times.
var mix = []string{
	CatRegional, CatRegional, CatRegional, CatRegional, CatRegional, CatRegional,
	CatGlobal, CatGlobal, CatGlobal, CatGlobal,
	CatAgentLocal, CatAgentLocal, CatAgentLocal, CatAgentLocal,
	CatPartial, CatPartial, CatPartial, CatPartial,
	CatReplicaLag, CatReplicaLag, CatReplicaLag,
	CatPipelineStall, CatPipelineStall, CatPipelineStall,
	CatProberDeath, CatProberDeath, CatProberDeath,
	CatAggRestart, CatAggRestart, CatAggRestart,
}

var allJourneys = []string{JourneyHTTP, JourneyGitHTTP, JourneyGitSSH, JourneyHg, JourneyPipelines}

// protoJourneys are the journeys a fault on a protocol may break: the
// API route also serves git-http's verification (branch API) and the
// Pipelines journey's lookups.
var protoJourneys = map[string][]string{
	lab.ProtoGitHTTP:   {JourneyGitHTTP},
	lab.ProtoGitSSH:    {JourneyGitSSH},
	lab.ProtoHg:        {JourneyHg},
	lab.ProtoPipelines: {JourneyPipelines},
	lab.ProtoAPI:       {JourneyHTTP, JourneyGitHTTP, JourneyPipelines},
}

// PlannedFault is one fault of a randomised campaign.
type PlannedFault struct {
	N        int    `json:"n"`
	Name     string `json:"name"`
	Category string `json:"category"`
	// Fault is the lab fault to add (nil for prober death and aggregator
	// restart).
	Fault *lab.Fault `json:"fault,omitempty"`
	// Agent is the prober killed by a prober-death fault.
	Agent string `json:"agent,omitempty"`
	// Onset is from the campaign's start; Duration how long the fault
	// lasts (for an aggregator restart: how long it stays down).
	Onset    time.Duration `json:"onset"`
	Duration time.Duration `json:"duration"`
	Expect   Expect        `json:"expect"`

	// journeys × regions the fault may disturb; product tells whether it
	// is a product fault (two product faults on one journey never overlap:
	// together they could make a global verdict).
	journeys, regions []string
	product           bool
}

// Plan is a randomised campaign: its faults and the settle time after
// each fault within which its alerts are attributed to it.
type Plan struct {
	Seed   uint64          `json:"seed"`
	Faults []*PlannedFault `json:"faults"`
	Settle time.Duration   `json:"settle"`
	// Length is when the last fault's settle time ends.
	Length time.Duration `json:"length"`
}

// PlanOptions shapes a randomised campaign.
type PlanOptions struct {
	Seed     uint64
	Faults   int
	Interval time.Duration
	Regions  []string
	// Agents are the probers' names, each "<region>-<n>".
	Agents []Agent
	// MaxConcurrent bounds the faults active at once (default 4).
	MaxConcurrent int
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func between(r *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.Int64N(int64(hi-lo)+1))
}

// conflicts reports whether a and b must not be active at once.
func (a *PlannedFault) conflicts(b *PlannedFault) bool {
	if a.Category == CatAggRestart || b.Category == CatAggRestart {
		return a.Category == b.Category
	}
	if !overlaps(a.journeys, b.journeys) {
		return false
	}
	return overlaps(a.regions, b.regions) || (a.product && b.product)
}

// NewPlan draws a campaign from the seed: categories from the mix, the
// region, protocol, kind, onset and duration of each fault, then places
// every fault at the earliest moment from its drawn onset when nothing it
// conflicts with is active (in [onset, onset+duration+settle]) and fewer
// than MaxConcurrent faults are.
func NewPlan(o PlanOptions) *Plan {
	if o.MaxConcurrent == 0 {
		o.MaxConcurrent = 4
	}
	iv := o.Interval
	r := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	p := &Plan{Seed: o.Seed, Settle: 4*iv + 10*time.Second}
	var cats []string
	for len(cats) < o.Faults {
		round := append([]string(nil), mix...)
		r.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
		cats = append(cats, round...)
	}
	cats = cats[:o.Faults]
	hard := []lab.FaultKind{lab.FaultRefuse, lab.FaultReset, lab.FaultStall, lab.FaultHTTPError, lab.FaultLatency}
	protos := []string{lab.ProtoGitHTTP, lab.ProtoGitSSH, lab.ProtoHg, lab.ProtoPipelines, lab.ProtoAPI}
	httpProtos := []string{lab.ProtoGitHTTP, lab.ProtoHg, lab.ProtoPipelines, lab.ProtoAPI}
	cursor := 5 * time.Second
	for i, cat := range cats {
		f := &PlannedFault{N: i + 1, Category: cat, Duration: between(r, 6*iv, 10*iv)}
		region := pick(r, o.Regions)
		switch cat {
		case CatRegional, CatGlobal:
			proto := pick(r, protos)
			kind := pick(r, hard)
			if proto == lab.ProtoGitSSH && kind == lab.FaultHTTPError {
				kind = lab.FaultRefuse
			}
			lf := &lab.Fault{Kind: kind, Protocol: proto}
			switch kind {
			case lab.FaultHTTPError:
				lf.Status = pick(r, []int{500, 502, 503})
			case lab.FaultLatency:
				lf.Delay = iv // beyond the journey timeout (80 % of the interval)
			}
			f.Fault, f.product, f.journeys = lf, true, protoJourneys[proto]
			if cat == CatRegional {
				lf.Region = region
				f.regions = []string{region}
				f.Expect = Expect{Scope: ScopeRegional, Regions: []string{region}, Journeys: f.journeys}
				f.Name = fmt.Sprintf("%s %s in %s", proto, kindText(lf), region)
			} else {
				f.regions = o.Regions
				f.Expect = Expect{Scope: ScopeGlobal, Journeys: f.journeys}
				f.Name = fmt.Sprintf("%s %s everywhere", proto, kindText(lf))
			}
		case CatPartial:
			proto := pick(r, httpProtos)
			rate := float64(3+r.IntN(4)) / 10 // 0.3 … 0.6 of requests
			lf := &lab.Fault{Kind: lab.FaultHTTPError, Region: region, Protocol: proto, Status: 503, Rate: rate}
			f.Fault, f.product, f.journeys, f.regions = lf, true, protoJourneys[proto], []string{region}
			f.Duration = between(r, 8*iv, 12*iv)
			f.Expect = Expect{Scope: ScopePartial, Regions: []string{region}, Journeys: f.journeys}
			f.Name = fmt.Sprintf("%s 503 on %.0f%% of requests in %s", proto, rate*100, region)
		case CatReplicaLag:
			// The lab lags its one replica for every region: global.
			lf := &lab.Fault{Kind: lab.FaultReplicaLag, Delay: iv}
			f.Fault, f.product, f.journeys, f.regions = lf, true, []string{JourneyGitHTTP}, o.Regions
			f.Expect = Expect{Scope: ScopeGlobal, Journeys: f.journeys}
			f.Name = fmt.Sprintf("replica lag %s (beyond git verify_timeout)", lf.Delay)
		case CatPipelineStall:
			lf := &lab.Fault{Kind: lab.FaultQueueStall}
			f.Fault, f.product, f.journeys, f.regions = lf, true, []string{JourneyPipelines}, o.Regions
			f.Expect = Expect{Scope: ScopeGlobal, Journeys: f.journeys}
			f.Name = "Pipelines queue stalled"
		case CatAgentLocal:
			a := pick(r, o.Agents)
			lf := &lab.Fault{Kind: pick(r, []lab.FaultKind{lab.FaultRefuse, lab.FaultReset}), Edge: a.Name}
			f.Fault, f.journeys, f.regions = lf, allJourneys, []string{a.Region}
			f.Expect = Expect{Scope: ScopeAgentLocal, Agent: a.Name}
			f.Name = fmt.Sprintf("prober %s's own network: %s", a.Name, lf.Kind)
		case CatProberDeath:
			a := pick(r, o.Agents)
			f.Agent, f.journeys, f.regions = a.Name, allJourneys, []string{a.Region}
			f.Expect = Expect{Scope: ScopeNone}
			f.Name = fmt.Sprintf("prober %s killed (SIGKILL)", a.Name)
		case CatAggRestart:
			f.Duration = between(r, 0, 2*iv)
			f.Expect = Expect{Scope: ScopeNone}
			f.Name = fmt.Sprintf("aggregator restarted (down %.0fs)", f.Duration.Seconds())
		}
		cursor += between(r, 0, 2*iv)
		f.Onset = p.place(f, cursor, o.MaxConcurrent)
		p.Faults = append(p.Faults, f)
	}
	sort.SliceStable(p.Faults, func(i, j int) bool { return p.Faults[i].Onset < p.Faults[j].Onset })
	for i, f := range p.Faults {
		f.N = i + 1
		if end := f.Onset + f.Duration + p.Settle; end > p.Length {
			p.Length = end
		}
	}
	return p
}

func kindText(f *lab.Fault) string {
	switch f.Kind {
	case lab.FaultHTTPError:
		return fmt.Sprint(f.Status)
	case lab.FaultLatency:
		return "latency " + f.Delay.String()
	}
	return string(f.Kind)
}

// place returns the earliest onset ≥ from at which f conflicts with no
// placed fault and fewer than max faults are active during f's span.
func (p *Plan) place(f *PlannedFault, from time.Duration, max int) time.Duration {
	span := func(g *PlannedFault, at time.Duration) (time.Duration, time.Duration) {
		return at, at + g.Duration + p.Settle
	}
	candidates := []time.Duration{from}
	for _, g := range p.Faults {
		if _, end := span(g, g.Onset); end > from {
			candidates = append(candidates, end)
		}
	}
	sort.Slice(candidates, func(i, j int) bool { return candidates[i] < candidates[j] })
	for _, at := range candidates {
		s, e := span(f, at)
		active, ok := 0, true
		for _, g := range p.Faults {
			gs, ge := span(g, g.Onset)
			if gs >= e || ge <= s {
				continue
			}
			active++
			if f.conflicts(g) {
				ok = false
				break
			}
		}
		if ok && active < max {
			return at
		}
	}
	return candidates[len(candidates)-1]
}

package lab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"
)

// FaultKind is what a fault does to the traffic it matches.
type FaultKind string

// Fault kinds. Connection-level kinds (refuse, reset, stall, latency) apply
// to any protocol; http_error only to HTTP protocols; replica_lag and
// queue_stall are product behaviours handed to the component that owns them.
const (
	// FaultRefuse closes new connections at once with a TCP reset.
	FaultRefuse FaultKind = "refuse"
	// FaultReset lets a request start, then resets the connection mid-stream.
	FaultReset FaultKind = "reset"
	// FaultStall accepts and then never answers.
	FaultStall FaultKind = "stall"
	// FaultLatency delays every request (HTTP) or connection (SSH) by Delay.
	FaultLatency FaultKind = "latency"
	// FaultHTTPError answers Status (default 503) to a Rate of requests.
	FaultHTTPError FaultKind = "http_error"
	// FaultReplicaLag makes reads see pushed refs only after Delay.
	FaultReplicaLag FaultKind = "replica_lag"
	// FaultQueueStall keeps new pipelines PENDING.
	FaultQueueStall FaultKind = "queue_stall"
)

// Protocols an edge tells apart. The empty protocol matches all of them.
const (
	ProtoGitHTTP   = "git-http"
	ProtoGitSSH    = "git-ssh"
	ProtoHg        = "hg"
	ProtoPipelines = "pipelines"
	ProtoAPI       = "api"
)

var knownKinds = map[FaultKind]bool{FaultRefuse: true, FaultReset: true, FaultStall: true, FaultLatency: true,
	FaultHTTPError: true, FaultReplicaLag: true, FaultQueueStall: true}

var knownProtocols = map[string]bool{"": true, ProtoGitHTTP: true, ProtoGitSSH: true, ProtoHg: true,
	ProtoPipelines: true, ProtoAPI: true}

// Fault is one injected failure. Region and Edge scope it: both empty means
// global, Region alone one region's edges, Edge alone one agent's edge.
type Fault struct {
	ID       string        `json:"id"`
	Kind     FaultKind     `json:"kind"`
	Region   string        `json:"region,omitempty"`
	Edge     string        `json:"edge,omitempty"`
	Protocol string        `json:"protocol,omitempty"`
	Rate     float64       `json:"rate,omitempty"`   // http_error: fraction of requests, default 1
	Status   int           `json:"status,omitempty"` // http_error: default 503
	Delay    time.Duration `json:"delay,omitempty"`  // latency, replica_lag
	Since    time.Time     `json:"since"`
}

// Validate checks a fault from outside (the control API or CLI).
func (f *Fault) Validate() error {
	if !knownKinds[f.Kind] {
		return fmt.Errorf("unknown fault kind %q", f.Kind)
	}
	if !knownProtocols[f.Protocol] {
		return fmt.Errorf("unknown protocol %q", f.Protocol)
	}
	if f.Rate < 0 || f.Rate > 1 {
		return fmt.Errorf("rate %v is outside [0,1]", f.Rate)
	}
	if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
		return fmt.Errorf("status %d is not a 4xx or 5xx code", f.Status)
	}
	if f.Delay < 0 || f.Delay > time.Hour {
		return fmt.Errorf("delay %s is outside [0,1h]", f.Delay)
	}
	if (f.Kind == FaultLatency || f.Kind == FaultReplicaLag) && f.Delay == 0 {
		return fmt.Errorf("%s needs a delay", f.Kind)
	}
	return nil
}

// MarshalJSON writes Delay as Go duration text.
func (f Fault) MarshalJSON() ([]byte, error) {
	type plain Fault
	return json.Marshal(struct {
		plain
		Delay string `json:"delay,omitempty"`
	}{plain: plain(f), Delay: durText(f.Delay)})
}

// UnmarshalJSON reads Delay as Go duration text ("2s").
func (f *Fault) UnmarshalJSON(b []byte) error {
	type plain Fault
	aux := struct {
		*plain
		Delay string `json:"delay,omitempty"`
	}{plain: (*plain)(f)}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	if aux.Delay != "" {
		d, err := time.ParseDuration(aux.Delay)
		if err != nil {
			return fmt.Errorf("delay: %v", err)
		}
		f.Delay = d
	}
	return nil
}

func durText(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// FaultTable holds the active faults of the whole lab. It is safe for
// concurrent use; edges consult it on every connection and request.
type FaultTable struct {
	mu       sync.Mutex
	next     int
	faults   map[string]Fault
	onChange []func([]Fault)
}

// NewFaultTable returns an empty table.
func NewFaultTable() *FaultTable { return &FaultTable{faults: map[string]Fault{}} }

// OnChange registers fn, called with the active faults after every change
// (product components use it for replica lag and queue stalls).
func (t *FaultTable) OnChange(fn func([]Fault)) {
	t.mu.Lock()
	t.onChange = append(t.onChange, fn)
	t.mu.Unlock()
}

// Add validates and activates f, returning it with its ID.
func (t *FaultTable) Add(f Fault) (Fault, error) {
	if err := f.Validate(); err != nil {
		return Fault{}, err
	}
	if f.Kind == FaultHTTPError {
		if f.Rate == 0 {
			f.Rate = 1
		}
		if f.Status == 0 {
			f.Status = 503
		}
	}
	t.mu.Lock()
	t.next++
	f.ID = "f" + strconv.Itoa(t.next)
	f.Since = time.Now().UTC()
	t.faults[f.ID] = f
	t.mu.Unlock()
	t.changed()
	return f, nil
}

// Remove deactivates the fault with id; it reports whether it existed.
func (t *FaultTable) Remove(id string) bool {
	t.mu.Lock()
	_, ok := t.faults[id]
	delete(t.faults, id)
	t.mu.Unlock()
	if ok {
		t.changed()
	}
	return ok
}

// Clear removes every fault.
func (t *FaultTable) Clear() {
	t.mu.Lock()
	t.faults = map[string]Fault{}
	t.mu.Unlock()
	t.changed()
}

// List returns the active faults ordered by ID number.
func (t *FaultTable) List() []Fault {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Fault, 0, len(t.faults))
	for _, f := range t.faults {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := strconv.Atoi(out[i].ID[1:])
		b, _ := strconv.Atoi(out[j].ID[1:])
		return a < b
	})
	return out
}

func (t *FaultTable) changed() {
	list := t.List()
	t.mu.Lock()
	fns := append([]func([]Fault){}, t.onChange...)
	t.mu.Unlock()
	for _, fn := range fns {
		fn(list)
	}
}

// Match returns the first active fault of one of kinds that applies to
// traffic of protocol through the edge named edge in region.
func (t *FaultTable) Match(region, edge, protocol string, kinds ...FaultKind) (Fault, bool) {
	for _, f := range t.List() {
		if f.Region != "" && f.Region != region {
			continue
		}
		if f.Edge != "" && f.Edge != edge {
			continue
		}
		if f.Protocol != "" && f.Protocol != protocol {
			continue
		}
		for _, k := range kinds {
			if f.Kind == k {
				if k == FaultHTTPError && f.Rate < 1 && rand.Float64() >= f.Rate {
					continue
				}
				return f, true
			}
		}
	}
	return Fault{}, false
}

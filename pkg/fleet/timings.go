package fleet

import (
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
)

// Timings are the memberlist timers that decide how fast failures are
// detected and how much the fleet gossips. Faster detection costs more
// packets and more false suspicions on a congested network.
type Timings struct {
	// ProbeInterval is how often a node probes a random peer.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe waits for an ack (about the 99th
	// percentile of RTT).
	ProbeTimeout time.Duration
	// SuspicionMult scales how long a suspect node has to refute before it
	// is declared dead: SuspicionMult × log10(N) × ProbeInterval at least.
	SuspicionMult int
	// GossipInterval is how often queued messages are gossiped.
	GossipInterval time.Duration
	// GossipNodes is how many peers each gossip round reaches.
	GossipNodes int
	// PushPullInterval is how often full state is exchanged over TCP.
	PushPullInterval time.Duration
	// TCPTimeout bounds every stream connection (dial, read, write).
	TCPTimeout time.Duration
	// GossipToTheDead is how long dead nodes still receive gossip.
	GossipToTheDead time.Duration
	// DeadNodeReclaim is how long a dead node's name stays reserved before
	// a node of the same name at a new address may take it over (an agent
	// restarted elsewhere).
	DeadNodeReclaim time.Duration
}

// LANTimings are memberlist's LAN defaults: probe every 1 s, 500 ms probe
// timeout, gossip every 200 ms to 3 peers.
func LANTimings() Timings { return timingsOf(memberlist.DefaultLANConfig()) }

// WANTimings are memberlist's WAN defaults: probe every 5 s, 3 s probe
// timeout, gossip every 500 ms to 4 peers.
func WANTimings() Timings { return timingsOf(memberlist.DefaultWANConfig()) }

// TimingsPreset returns the named preset: "lan" (or "") or "wan".
func TimingsPreset(name string) (Timings, error) {
	switch name {
	case "", "lan":
		return LANTimings(), nil
	case "wan":
		return WANTimings(), nil
	}
	return Timings{}, fmt.Errorf("unknown timings preset %q (want \"lan\" or \"wan\")", name)
}

// TimingsFrom is a preset ("lan", "wan") with the overrides that are
// non-zero applied: what the [gossip] settings timings, probe_interval,
// probe_timeout, gossip_interval and suspicion_mult give. The result is
// validated.
func TimingsFrom(preset string, probeInterval, probeTimeout, gossipInterval time.Duration, suspicionMult int) (Timings, error) {
	t, err := TimingsPreset(preset)
	if err != nil {
		return t, err
	}
	if probeInterval > 0 {
		t.ProbeInterval = probeInterval
		t.DeadNodeReclaim = probeInterval
	}
	if probeTimeout > 0 {
		t.ProbeTimeout = probeTimeout
	}
	if gossipInterval > 0 {
		t.GossipInterval = gossipInterval
	}
	if suspicionMult > 0 {
		t.SuspicionMult = suspicionMult
	}
	return t, t.validate()
}

func timingsOf(c *memberlist.Config) Timings {
	return Timings{
		ProbeInterval:    c.ProbeInterval,
		ProbeTimeout:     c.ProbeTimeout,
		SuspicionMult:    c.SuspicionMult,
		GossipInterval:   c.GossipInterval,
		GossipNodes:      c.GossipNodes,
		PushPullInterval: c.PushPullInterval,
		TCPTimeout:       c.TCPTimeout,
		GossipToTheDead:  c.GossipToTheDeadTime,
		DeadNodeReclaim:  c.ProbeInterval,
	}
}

// validate rejects timings memberlist would misbehave with.
func (t Timings) validate() error {
	switch {
	case t.ProbeInterval <= 0, t.ProbeTimeout <= 0, t.GossipInterval <= 0, t.PushPullInterval <= 0, t.TCPTimeout <= 0:
		return fmt.Errorf("timings: intervals and timeouts must be positive")
	case t.ProbeTimeout >= t.ProbeInterval:
		return fmt.Errorf("timings: probe timeout %s must be shorter than the probe interval %s", t.ProbeTimeout, t.ProbeInterval)
	case t.SuspicionMult < 1, t.GossipNodes < 1:
		return fmt.Errorf("timings: suspicion multiplier and gossip nodes must be at least 1")
	case t.DeadNodeReclaim <= 0:
		return fmt.Errorf("timings: dead node reclaim must be positive (0 would never let a restarted agent rejoin at a new address)")
	}
	return nil
}

func (t Timings) apply(c *memberlist.Config) {
	c.ProbeInterval = t.ProbeInterval
	c.ProbeTimeout = t.ProbeTimeout
	c.SuspicionMult = t.SuspicionMult
	c.GossipInterval = t.GossipInterval
	c.GossipNodes = t.GossipNodes
	c.PushPullInterval = t.PushPullInterval
	c.TCPTimeout = t.TCPTimeout
	c.GossipToTheDeadTime = t.GossipToTheDead
	c.DeadNodeReclaimTime = t.DeadNodeReclaim
}

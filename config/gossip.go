package config

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Gossip configures the agent's membership in the fleet (hashicorp/memberlist,
// see pkg/fleet). Gossip is always encrypted (AES-GCM) and labelled with the
// fleet name: nodes of another fleet, with another key, or unencrypted are
// rejected.
type Gossip struct {
	// Fleet names the fleet; it labels every gossip packet so that other
	// fleets are rejected. Required; at most 255 bytes.
	Fleet string `toml:"fleet"`
	// Name is this node's name in gossip. Default: agent.name (or
	// aggregator.name). It must be stable across restarts and unique in the
	// fleet: an agent restarting under the same name takes its place.
	Name string `toml:"name"`
	// Bind is the host:port gossip listens on, UDP and TCP. Default
	// "0.0.0.0:7946".
	Bind string `toml:"bind"`
	// Advertise is the host:port peers use to reach this agent; it must be
	// reachable over both UDP and TCP (mind NAT). Default: Bind's (with
	// 0.0.0.0, the first private address).
	Advertise string `toml:"advertise"`
	// Join lists peers to join, host:port or DNS names (a name without a
	// port uses Bind's port). They are retried in the background with
	// backoff until one answers, so agents may start in any order.
	Join []string `toml:"join"`
	// KeyFile holds the AES-GCM keyring: one base64 key per line, the first
	// is the primary (`prober keygen -out FILE` writes one, mode 0600).
	// Required. The agent re-reads it on SIGHUP, which is how keys are
	// rotated without a fleet restart (see README, "Fleet and gossip"); in
	// Kubernetes, mount the Secret as a directory, not with subPath, or
	// updates never reach the file.
	KeyFile string `toml:"key_file"`
	// Timings selects memberlist's timer preset: "lan" (default: probe every
	// 1 s, dead after about 5-25 s) or "wan" (probe every 5 s, dead after
	// 30-180 s). Faster detection costs more packets and more false
	// suspicions on a congested network.
	Timings string `toml:"timings"`
	// ProbeInterval overrides the preset's probe interval.
	ProbeInterval Duration `toml:"probe_interval"`
	// ProbeTimeout overrides the preset's probe timeout; it must be shorter
	// than the probe interval.
	ProbeTimeout Duration `toml:"probe_timeout"`
	// GossipInterval overrides the preset's gossip interval.
	GossipInterval Duration `toml:"gossip_interval"`
	// SuspicionMult overrides the preset's suspicion multiplier (lan 4,
	// wan 6): a suspect node is declared dead after at least
	// SuspicionMult × log10(N) × probe interval.
	SuspicionMult int `toml:"suspicion_mult"`
	// ConfirmRateLimit is the least time between two confirmation requests
	// this agent sends for one journey, and between two confirmation runs
	// it starts for one journey. Default "10s".
	ConfirmRateLimit Duration `toml:"confirm_rate_limit"`
	// JoinBackoff caps the wait between join attempts. Default "30s".
	JoinBackoff Duration `toml:"join_backoff"`
	// LeaveTimeout bounds the graceful leave at shutdown. Default "5s".
	LeaveTimeout Duration `toml:"leave_timeout"`
}

// Gossip defaults.
const (
	DefaultGossipBind    = "0.0.0.0:7946"
	DefaultGossipTimings = "lan"
)

// Gossip timing defaults.
var (
	DefaultConfirmRateLimit = Dur(10 * time.Second)
	DefaultJoinBackoff      = Dur(30 * time.Second)
	DefaultLeaveTimeout     = Dur(5 * time.Second)
)

// maxJoinPeers bounds the join list.
const maxJoinPeers = 64

func (g *Gossip) applyDefaults() {
	if g.Bind == "" {
		g.Bind = DefaultGossipBind
	}
	if g.Timings == "" {
		g.Timings = DefaultGossipTimings
	}
	if g.ConfirmRateLimit.IsZero() {
		g.ConfirmRateLimit = DefaultConfirmRateLimit
	}
	if g.JoinBackoff.IsZero() {
		g.JoinBackoff = DefaultJoinBackoff
	}
	if g.LeaveTimeout.IsZero() {
		g.LeaveTimeout = DefaultLeaveTimeout
	}
}

// defaultName fills Name from the agent's (or aggregator's) name.
func (g *Gossip) defaultName(name string) {
	if g.Name == "" {
		g.Name = name
	}
}

func (g *Gossip) validate(p *problems, key string) {
	switch {
	case strings.TrimSpace(g.Fleet) == "":
		p.add(key+".fleet", "is required: it labels gossip so that other fleets are rejected")
	case len(g.Fleet) > 255:
		p.add(key+".fleet", fmt.Sprintf("is %d bytes; memberlist labels are at most 255", len(g.Fleet)))
	case strings.ContainsFunc(g.Fleet, isControl):
		p.add(key+".fleet", "must not contain control characters")
	}
	if g.Name == "" {
		p.add(key+".name", "is required (no agent name or host name to default to)")
	} else if len(g.Name) > 128 || strings.ContainsFunc(g.Name, isControl) {
		p.add(key+".name", "must be at most 128 bytes without control characters")
	}
	if msg := checkHostPort(g.Bind, true); msg != "" {
		p.add(key+".bind", msg)
	}
	if g.Advertise != "" {
		if msg := checkHostPort(g.Advertise, true); msg != "" {
			p.add(key+".advertise", msg)
		}
	}
	if len(g.Join) > maxJoinPeers {
		p.add(key+".join", fmt.Sprintf("lists %d peers; at most %d", len(g.Join), maxJoinPeers))
	}
	for i, peer := range g.Join {
		if msg := checkPeer(peer); msg != "" {
			p.add(fmt.Sprintf("%s.join[%d]", key, i), msg)
		}
	}
	if g.KeyFile == "" {
		p.add(key+".key_file", "is required: gossip is always encrypted (create one with `prober keygen -out FILE`)")
	} else if st, err := os.Stat(g.KeyFile); err != nil {
		p.add(key+".key_file", fmt.Sprintf("cannot be read: %v", err))
	} else if st.IsDir() {
		p.add(key+".key_file", "is a directory")
	}
	if g.Timings != "lan" && g.Timings != "wan" {
		p.add(key+".timings", fmt.Sprintf("unknown preset %q (want \"lan\" or \"wan\")", g.Timings))
	}
	if g.ProbeInterval.D != 0 && g.ProbeInterval.D < 10*time.Millisecond {
		p.add(key+".probe_interval", "must be at least 10ms")
	}
	if g.ProbeTimeout.D != 0 && g.ProbeInterval.D != 0 && g.ProbeTimeout.D >= g.ProbeInterval.D {
		p.add(key+".probe_timeout", "must be shorter than probe_interval")
	}
	if g.GossipInterval.D != 0 && g.GossipInterval.D < 10*time.Millisecond {
		p.add(key+".gossip_interval", "must be at least 10ms")
	}
	if g.SuspicionMult < 0 || g.SuspicionMult > 20 {
		p.add(key+".suspicion_mult", "must be between 1 and 20")
	}
	if g.LeaveTimeout.D > time.Minute {
		p.add(key+".leave_timeout", "must be at most 1m")
	}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkHostPort checks a host:port with a numeric port (0 allowed for bind
// when allowZero).
func checkHostPort(hp string, allowZero bool) string {
	_, port, err := net.SplitHostPort(hp)
	if err != nil {
		return fmt.Sprintf("%q is not host:port", hp)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !allowZero) {
		return fmt.Sprintf("%q has an invalid port", hp)
	}
	return ""
}

// checkPeer accepts host:port or a bare host (DNS name or IP).
func checkPeer(peer string) string {
	if strings.TrimSpace(peer) == "" || strings.ContainsFunc(peer, isControl) || strings.ContainsAny(peer, " /") {
		return fmt.Sprintf("%q is not a host:port or DNS name", peer)
	}
	if strings.Contains(peer, ":") && net.ParseIP(peer) == nil {
		return checkHostPort(peer, false)
	}
	return ""
}

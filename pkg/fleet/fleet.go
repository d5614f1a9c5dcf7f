// Package fleet owns the prober fleet's membership over hashicorp/memberlist:
// encrypted, labelled gossip; node metadata (role, region, version, config
// digest); which prober owns which journey (rendezvous hashing, pure
// functions in owner.go); per-region phase offsets; and confirmation
// requests, broadcast when a scheduled run fails so that other probers
// re-run the journey at once. It runs no journeys itself: the scheduler asks
// it ShouldRun/Offset and receives confirmations through a callback.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Journey is what the fleet needs to know of a journey this node may run.
type Journey struct {
	// Kind is the journey's kind ("http", "git", …).
	Kind string
	// Mode is ModeOnePerRegion or ModeEveryAgent.
	Mode string
	// Interval is the schedule's nominal interval, for JourneyOffset.
	Interval time.Duration
}

// Config configures a Fleet node.
type Config struct {
	// Name is this node's stable name, unique in the fleet (agent name or
	// host name). A node restarting under the same name takes its place.
	Name string
	// Fleet names the fleet. It is memberlist's label: every packet carries
	// it (as GCM additional data when encrypted), so nodes of other fleets
	// are rejected.
	Fleet string
	// Bind is the host:port gossip listens on, UDP and TCP; port 0 picks one.
	Bind string
	// Advertise is the host:port peers reach this node at; default: Bind's
	// (with 0.0.0.0, memberlist picks a private address).
	Advertise string
	// Join lists peers (host:port or DNS names) to join. They are retried
	// in the background with bounded backoff until one answers.
	Join []string
	// Keys is the initial keyring, primary first (see ParseKeys). Empty
	// means plaintext gossip, which config validation does not allow; it
	// exists for tests of what an unencrypted node can do.
	Keys [][]byte
	// KeyFile is re-read by ReloadKeys.
	KeyFile string
	// Meta is what this node gossips about itself.
	Meta Meta
	// Journeys maps journey names this node knows to their kind and mode.
	// A confirmation request for a journey not here, or of another kind,
	// is ignored.
	Journeys map[string]Journey
	// Timings are the memberlist timers; zero means LANTimings().
	Timings Timings
	// ConfirmInterval is the least time between two confirmation requests
	// this node sends for one journey, and between two confirmation runs it
	// starts for one journey. Default 10 s.
	ConfirmInterval time.Duration
	// JoinBackoff bounds the wait between join attempts: it starts at
	// JoinBackoff/30 (at least 100 ms) and doubles up to JoinBackoff. Once
	// joined, every JoinBackoff the node tries to reconnect to nodes that
	// died in the last 6 hours (and re-joins this list when it is alone),
	// so that a fleet split by a long partition merges again. Default 30 s.
	JoinBackoff time.Duration
	// OnConfirm is called when this node should confirm a journey's slot
	// (run it now with trigger=confirm). It is called from one goroutine,
	// one request at a time: it must start the run and return. It may also
	// be set later with SetOnConfirm.
	OnConfirm func(journey string, slot time.Time)
	// Logger receives fleet and memberlist logs; default slog.Default().
	Logger *slog.Logger
}

// Stats are counters of this node's gossip.
type Stats struct {
	// BytesSent counts gossip bytes sent (packets and streams, encrypted).
	BytesSent int64
	// RequestsSent counts confirmation requests this node broadcast.
	RequestsSent int64
	// RequestsSuppressed counts requests not sent because of the rate limit.
	RequestsSuppressed int64
	// Dropped counts messages dropped as malformed, oversized, of an
	// unknown version or type, or because the inbox was full.
	Dropped int64
	// Ignored counts valid requests for a journey this node does not know
	// or knows under another kind.
	Ignored int64
	// ConfirmsRun counts confirmations this node started.
	ConfirmsRun int64
	// ConfirmsLimited counts confirmations skipped by the rate limit.
	ConfirmsLimited int64
	// BadMeta counts peers ignored because their metadata was invalid.
	BadMeta int64
}

// Fleet is this node's membership in the fleet. Its methods are safe for
// concurrent use. A nil *Fleet is a fleet of one: ShouldRun is true for
// every journey and Offset is zero, so an agent without gossip runs alone.
type Fleet struct {
	cfg    Config
	log    *slog.Logger
	self   Member
	ml     *memberlist.Memberlist
	ring   *memberlist.Keyring
	queue  *memberlist.TransmitLimitedQueue
	inbox  chan ConfirmRequest
	cancel context.CancelFunc
	wg     sync.WaitGroup

	onConfirm atomic.Pointer[func(string, time.Time)]
	joined    atomic.Bool

	mu       sync.Mutex
	journeys map[string]Journey   // this node's journeys (SetJourneys)
	members  map[string]Member    // live nodes by name, self included
	gone     map[string]departed  // recently departed nodes, by name
	sentAt   map[string]time.Time // journey → last request sent
	ranAt    map[string]time.Time // journey → last confirmation started
	seen     map[string]time.Time // request key → first seen

	closeOnce sync.Once
	closeErr  error

	bytesSent, requestsSent, suppressed, dropped, ignored, confirmsRun, confirmsLimited, badMeta atomic.Int64
}

// departed is a node that died or left: when, and where it was.
type departed struct {
	at   time.Time
	addr string
}

// Bounds of the fleet's own bookkeeping.
const (
	// settleDelay is when a node exchanges state with its join list once
	// more after joining (see joinLoop).
	settleDelay = 2 * time.Second
	// reconnectFor is how long departed nodes are retried (see joinLoop).
	reconnectFor = 6 * time.Hour
	inboxSize    = 256
	maxSeen      = 4096
	seenTTL      = 10 * time.Minute
	maxGone      = 256
)

// New starts this node: it binds, starts gossip and begins joining
// cfg.Join in the background until one peer answers or ctx ends. Close
// leaves the fleet and stops everything.
func New(ctx context.Context, cfg Config) (*Fleet, error) {
	if err := checkConfig(&cfg); err != nil {
		return nil, err
	}
	metaBytes, err := encodeMeta(cfg.Meta)
	if err != nil {
		return nil, err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.Default()
	}
	lg = lg.With("fleet", cfg.Fleet, "node", cfg.Name)
	f := &Fleet{
		cfg:      cfg,
		log:      lg,
		self:     Member{Name: cfg.Name, Meta: cfg.Meta},
		inbox:    make(chan ConfirmRequest, inboxSize),
		members:  map[string]Member{},
		journeys: cloneJourneys(cfg.Journeys),
		gone:     map[string]departed{},
		sentAt:   map[string]time.Time{},
		ranAt:    map[string]time.Time{},
		seen:     map[string]time.Time{},
	}
	if cfg.OnConfirm != nil {
		fn := cfg.OnConfirm
		f.onConfirm.Store(&fn)
	}

	mc := memberlist.DefaultLANConfig()
	cfg.Timings.apply(mc)
	mc.Name = cfg.Name
	mc.Label = cfg.Fleet
	mc.GossipVerifyIncoming = true
	mc.GossipVerifyOutgoing = true
	mc.Logger = log.New(logWriter{lg}, "", 0)
	mc.Delegate = delegate{f, metaBytes}
	mc.Events = events{f}
	if len(cfg.Keys) > 0 {
		f.ring, err = memberlist.NewKeyring(cfg.Keys, cfg.Keys[0])
		if err != nil {
			return nil, fmt.Errorf("gossip keyring: %w", err)
		}
		mc.Keyring = f.ring
	}
	bindHost, bindPort, err := splitHostPort(cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("gossip bind %q: %w", cfg.Bind, err)
	}
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{bindHost}, BindPort: bindPort, Logger: mc.Logger})
	if err != nil {
		return nil, fmt.Errorf("gossip bind %q: %w", cfg.Bind, err)
	}
	mc.BindAddr, mc.BindPort = bindHost, nt.GetAutoBindPort()
	mc.AdvertisePort = mc.BindPort
	if cfg.Advertise != "" {
		host, port, err := splitHostPort(cfg.Advertise)
		if err != nil {
			nt.Shutdown()
			return nil, fmt.Errorf("gossip advertise %q: %w", cfg.Advertise, err)
		}
		mc.AdvertiseAddr = host
		if port != 0 {
			mc.AdvertisePort = port
		}
	}
	mc.Transport = newCountingTransport(nt, &f.bytesSent)
	f.queue = &memberlist.TransmitLimitedQueue{NumNodes: f.numMembers, RetransmitMult: mc.RetransmitMult}

	f.ml, err = memberlist.Create(mc)
	if err != nil {
		mc.Transport.Shutdown()
		return nil, fmt.Errorf("gossip: %w", err)
	}
	f.self.Addr = f.ml.LocalNode().Address()
	f.mu.Lock()
	f.members[f.self.Name] = f.self
	f.mu.Unlock()

	ctx, f.cancel = context.WithCancel(ctx)
	f.wg.Add(1)
	go f.confirmLoop(ctx)
	if len(cfg.Join) == 0 {
		f.joined.Store(true) // the first node of a fleet: nothing to join
	}
	f.wg.Add(1)
	go f.joinLoop(ctx, cfg.Join)
	lg.Info("gossip started", "addr", f.self.Addr, "role", cfg.Meta.Role, "region", cfg.Meta.Region, "encrypted", f.ring != nil)
	return f, nil
}

func checkConfig(cfg *Config) error {
	switch {
	case cfg.Name == "":
		return errors.New("fleet: node name is required")
	case len(cfg.Name) > maxNameLen:
		return fmt.Errorf("fleet: node name is over %d bytes", maxNameLen)
	case cfg.Fleet == "":
		return errors.New("fleet: fleet name (the gossip label) is required")
	case len(cfg.Fleet) > memberlist.LabelMaxSize:
		return fmt.Errorf("fleet: fleet name is over %d bytes", memberlist.LabelMaxSize)
	}
	if err := checkText("node name", cfg.Name, maxNameLen); err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	if cfg.Timings == (Timings{}) {
		cfg.Timings = LANTimings()
	}
	if err := cfg.Timings.validate(); err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	if cfg.ConfirmInterval == 0 {
		cfg.ConfirmInterval = 10 * time.Second
	}
	if cfg.JoinBackoff == 0 {
		cfg.JoinBackoff = 30 * time.Second
	}
	if cfg.Bind == "" {
		cfg.Bind = "0.0.0.0:7946"
	}
	for name, j := range cfg.Journeys {
		if j.Mode != ModeOnePerRegion && j.Mode != ModeEveryAgent {
			return fmt.Errorf("fleet: journey %q: unknown mode %q", name, j.Mode)
		}
	}
	return nil
}

func splitHostPort(hp string) (string, int, error) {
	host, ps, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", ps)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// joinLoop joins peers, retrying with doubling waits up to JoinBackoff
// until one answers or ctx ends. Then, every JoinBackoff, it tries to
// reconnect to nodes that departed within reconnectFor, and re-joins the
// join list when this node is alone. memberlist by itself never talks to
// a node it has declared dead once GossipToTheDead has passed, so without
// this a fleet split by a long partition would stay split. A steady fleet
// pays nothing for it.
func (f *Fleet) joinLoop(ctx context.Context, peers []string) {
	defer f.wg.Done()
	wait := max(f.cfg.JoinBackoff/30, 100*time.Millisecond)
	settle := false
	for {
		switch {
		case !f.joined.Load():
			n, err := f.ml.Join(peers)
			if n > 0 {
				f.joined.Store(true)
				settle = true
				wait = settleDelay
				f.log.Info("joined the fleet", "contacted", n, "members", f.numMembers())
			} else {
				f.log.Warn("cannot join the fleet yet; retrying", "peers", peers, "err", err, "retry_in", wait)
			}
		case settle:
			// One more state exchange shortly after joining picks up the
			// nodes that joined at the same moment, whose announcements
			// gossip may have missed; otherwise only memberlist's push/pull
			// (every 30-60 s) would bring them.
			settle = false
			f.ml.Join(peers)
			wait = f.cfg.JoinBackoff
		default:
			wait = f.cfg.JoinBackoff
			f.reconnect(peers)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if !f.joined.Load() {
			wait = min(wait*2, f.cfg.JoinBackoff)
		}
	}
}

// reconnect tries recently departed nodes, and the join list if this node
// has nobody left.
func (f *Fleet) reconnect(peers []string) {
	now := time.Now()
	var addrs []string
	f.mu.Lock()
	alone := len(f.members) == 1
	for _, d := range f.gone {
		if now.Sub(d.at) < reconnectFor {
			addrs = append(addrs, d.addr)
		}
	}
	f.mu.Unlock()
	if alone {
		addrs = append(addrs, peers...)
	}
	if len(addrs) == 0 {
		return
	}
	if n, _ := f.ml.Join(addrs); n > 0 {
		f.log.Debug("reconnect attempt reached peers", "tried", len(addrs), "answered", n)
	}
}

// Joined reports whether this node has reached a peer of its join list (or
// has none to reach). Until then it sees only itself and owns every
// one-per-region journey of its region, which may double a region's runs
// for a slot; a scheduler may wait for Joined, with a bound, before its
// first slot.
func (f *Fleet) Joined() bool { return f == nil || f.joined.Load() }

// Close leaves the fleet gracefully (so that peers hand this node's
// journeys over at once instead of after failure detection), waiting at
// most timeout for the leave to go out, then shuts gossip down. It is safe
// to call more than once.
func (f *Fleet) Close(timeout time.Duration) error {
	if f == nil {
		return nil
	}
	f.closeOnce.Do(func() {
		if err := f.ml.Leave(timeout); err != nil {
			f.log.Warn("leaving the fleet", "err", err)
		}
		f.closeErr = f.ml.Shutdown()
		f.cancel()
		f.wg.Wait()
		f.log.Info("left the fleet")
	})
	return f.closeErr
}

// kill stops gossip without leaving, as a crash would; peers notice only
// through failure detection. For tests and benchmarks.
func (f *Fleet) kill() {
	f.closeOnce.Do(func() {
		f.closeErr = f.ml.Shutdown()
		f.cancel()
		f.wg.Wait()
	})
}

// Name returns this node's name.
func (f *Fleet) Name() string { return f.self.Name }

// Addr returns the host:port this node advertises.
func (f *Fleet) Addr() string { return f.self.Addr }

// SetOnConfirm sets the confirmation callback (see Config.OnConfirm). On a
// nil Fleet it does nothing.
func (f *Fleet) SetOnConfirm(fn func(journey string, slot time.Time)) {
	if f == nil {
		return
	}
	if fn == nil {
		f.onConfirm.Store(nil)
		return
	}
	f.onConfirm.Store(&fn)
}

// ReloadKeys re-reads Config.KeyFile and makes the live keyring hold
// exactly its keys, the first as primary. A file that does not parse
// changes nothing. Call it on SIGHUP; see the key file format for the
// three-step rotation. On a nil Fleet it does nothing.
func (f *Fleet) ReloadKeys() error {
	if f == nil {
		return nil
	}
	if f.ring == nil {
		return errors.New("gossip is not encrypted; a keyring cannot be enabled without a restart")
	}
	if f.cfg.KeyFile == "" {
		return errors.New("no key file configured")
	}
	keys, err := ReadKeyFile(f.cfg.KeyFile)
	if err != nil {
		return err
	}
	return f.SetKeys(keys)
}

// SetKeys makes the live keyring hold exactly keys, keys[0] as primary.
func (f *Fleet) SetKeys(keys [][]byte) error {
	if f.ring == nil {
		return errors.New("gossip is not encrypted; a keyring cannot be enabled without a restart")
	}
	if len(keys) == 0 {
		return errors.New("no keys")
	}
	for i, k := range keys {
		if err := memberlist.ValidateKey(k); err != nil {
			return fmt.Errorf("key %d: %w", i+1, err)
		}
	}
	if err := applyKeys(f.ring, keys); err != nil {
		return fmt.Errorf("gossip keyring: %w", err)
	}
	f.log.Info("gossip keyring updated", "keys", len(keys))
	return nil
}

// Stats returns the node's gossip counters (zero for a nil Fleet).
func (f *Fleet) Stats() Stats {
	if f == nil {
		return Stats{}
	}
	return Stats{
		BytesSent:          f.bytesSent.Load(),
		RequestsSent:       f.requestsSent.Load(),
		RequestsSuppressed: f.suppressed.Load(),
		Dropped:            f.dropped.Load(),
		Ignored:            f.ignored.Load(),
		ConfirmsRun:        f.confirmsRun.Load(),
		ConfirmsLimited:    f.confirmsLimited.Load(),
		BadMeta:            f.badMeta.Load(),
	}
}

// Snapshot is the fleet as one node sees it at one instant.
type Snapshot struct {
	// Self is this node.
	Self Member `json:"self"`
	// Members lists every live node, sorted by region then name.
	Members []Member `json:"members"`
	// Regions maps each region to its live probers, sorted by name.
	Regions map[string][]Member `json:"regions"`
	// Gone lists nodes that died or left recently, by name, with when.
	Gone map[string]time.Time `json:"gone"`
}

// Snapshot returns the current membership (empty for a nil Fleet).
func (f *Fleet) Snapshot() Snapshot {
	if f == nil {
		return Snapshot{Regions: map[string][]Member{}, Gone: map[string]time.Time{}}
	}
	ms := f.live()
	s := Snapshot{Self: f.self, Members: ms, Regions: map[string][]Member{}, Gone: map[string]time.Time{}}
	for _, m := range ms {
		if m.Role == RoleProber {
			s.Regions[m.Region] = append(s.Regions[m.Region], m)
		}
	}
	f.mu.Lock()
	for n, d := range f.gone {
		t := d.at
		s.Gone[n] = t
	}
	f.mu.Unlock()
	return s
}

// Owner returns who runs a one-per-region journey in region, as this
// snapshot sees it.
func (s Snapshot) Owner(journey, region string) (string, bool) {
	return Owner(journey, region, s.Members)
}

// live returns the live members, sorted by region then name.
func (f *Fleet) live() []Member {
	f.mu.Lock()
	ms := make([]Member, 0, len(f.members))
	for _, m := range f.members {
		ms = append(ms, m)
	}
	f.mu.Unlock()
	sort.Slice(ms, func(i, j int) bool {
		if ms[i].Region != ms[j].Region {
			return ms[i].Region < ms[j].Region
		}
		return ms[i].Name < ms[j].Name
	})
	return ms
}

func (f *Fleet) numMembers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.members)
}

// ShouldRun reports whether this node runs journey (of the given mode)
// now: see the pure ShouldRun. A nil Fleet runs everything.
func (f *Fleet) ShouldRun(journey, mode string) bool {
	if f == nil {
		return true
	}
	return ShouldRun(journey, mode, f.self, f.live())
}

// Offset is this node's region's phase offset for a journey of the given
// interval (see the pure Offset). A nil Fleet has offset 0.
func (f *Fleet) Offset(interval time.Duration) time.Duration {
	if f == nil {
		return 0
	}
	return Offset(f.self.Region, f.live(), interval)
}

// RunsSlot has the signature of the scheduler's ShouldRun hook: whether
// this node runs journey's slot, by the mode in Config.Journeys (an
// unknown journey is treated as one-per-region).
func (f *Fleet) RunsSlot(journey string, _ time.Time) bool {
	if f == nil {
		return true
	}
	mode := ModeOnePerRegion
	if j, ok := f.journey(journey); ok {
		mode = j.Mode
	}
	return f.ShouldRun(journey, mode)
}

// JourneyOffset has the signature of the scheduler's Offset hook: this
// region's phase offset for journey, by its interval in Config.Journeys (0
// for an unknown journey or a nil Fleet).
func (f *Fleet) JourneyOffset(journey string) time.Duration {
	if f == nil {
		return 0
	}
	j, _ := f.journey(journey)
	return f.Offset(j.Interval)
}

// SetJourneys replaces the journeys this node knows (Config.Journeys), for
// a config reload. Journeys with an unknown mode are rejected as a whole.
func (f *Fleet) SetJourneys(journeys map[string]Journey) error {
	if f == nil {
		return nil
	}
	for name, j := range journeys {
		if j.Mode != ModeOnePerRegion && j.Mode != ModeEveryAgent {
			return fmt.Errorf("fleet: journey %q: unknown mode %q", name, j.Mode)
		}
	}
	c := cloneJourneys(journeys)
	f.mu.Lock()
	f.journeys = c
	f.mu.Unlock()
	return nil
}

func (f *Fleet) journey(name string) (Journey, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.journeys[name]
	return j, ok
}

func cloneJourneys(m map[string]Journey) map[string]Journey {
	c := make(map[string]Journey, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// events keeps Fleet.members in step with memberlist. memberlist calls it
// with its node lock held: it copies what it needs and never calls back.
type events struct{ f *Fleet }

func (e events) NotifyJoin(n *memberlist.Node)   { e.f.upsert(n) }
func (e events) NotifyUpdate(n *memberlist.Node) { e.f.upsert(n) }
func (e events) NotifyLeave(n *memberlist.Node) {
	f := e.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if n.Name == f.self.Name {
		return
	}
	delete(f.members, n.Name)
	f.gone[n.Name] = departed{at: time.Now(), addr: n.Address()}
	if len(f.gone) > maxGone {
		oldest, at := "", time.Time{}
		for name, d := range f.gone {
			if oldest == "" || d.at.Before(at) {
				oldest, at = name, d.at
			}
		}
		delete(f.gone, oldest)
	}
}

func (f *Fleet) upsert(n *memberlist.Node) {
	if n.Name == f.self.Name {
		return
	}
	meta, err := decodeMeta(n.Meta)
	addr := n.Address()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.badMeta.Add(1)
		delete(f.members, n.Name)
		f.log.Warn("ignoring a peer with invalid metadata", "peer", n.Name, "addr", addr, "err", err)
		return
	}
	f.members[n.Name] = Member{Name: n.Name, Addr: addr, Meta: meta}
	delete(f.gone, n.Name)
}

// delegate is this node's memberlist.Delegate.
type delegate struct {
	f    *Fleet
	meta []byte
}

func (d delegate) NodeMeta(limit int) []byte {
	if len(d.meta) > limit {
		return nil // encodeMeta already bounds it to MaxMetaBytes
	}
	return d.meta
}

// NotifyMsg decodes a user message into a copy and hands it to the
// confirmation loop; it never blocks (a full inbox drops, counted).
func (d delegate) NotifyMsg(b []byte) {
	r, err := decodeMessage(b) // decodes into new values; b is not kept
	if err != nil {
		d.f.dropped.Add(1)
		d.f.log.Debug("dropped a gossip message", "bytes", len(b), "err", err)
		return
	}
	select {
	case d.f.inbox <- r:
	default:
		d.f.dropped.Add(1)
	}
}

func (d delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.f.queue.GetBroadcasts(overhead, limit)
}

func (d delegate) LocalState(bool) []byte            { return nil }
func (d delegate) MergeRemoteState(b []byte, _ bool) {}

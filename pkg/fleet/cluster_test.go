package fleet

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// A probe memberlist started just before Shutdown may wait out its timeout
// (one probe interval) before it returns; nothing else may outlive Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
}

// testTimings detect a death in well under two seconds on loopback.
func testTimings() Timings {
	return Timings{
		ProbeInterval:    200 * time.Millisecond,
		ProbeTimeout:     100 * time.Millisecond,
		SuspicionMult:    3,
		GossipInterval:   30 * time.Millisecond,
		GossipNodes:      3,
		PushPullInterval: 2 * time.Second,
		TCPTimeout:       time.Second,
		GossipToTheDead:  2 * time.Second,
		DeadNodeReclaim:  200 * time.Millisecond,
	}
}

var testJourneys = map[string]Journey{
	"api":       {Kind: "http", Mode: ModeOnePerRegion},
	"git-clone": {Kind: "git", Mode: ModeOnePerRegion},
	"hg-clone":  {Kind: "hg", Mode: ModeOnePerRegion},
	"pipeline":  {Kind: "pipelines", Mode: ModeOnePerRegion},
	"canary":    {Kind: "http", Mode: ModeEveryAgent},
}

// confirmation is one OnConfirm call.
type confirmation struct {
	node, journey string
	slot          time.Time
}

// recorder collects OnConfirm calls from a whole cluster.
type recorder struct {
	mu  sync.Mutex
	got []confirmation
}

func (r *recorder) hook(node string) func(string, time.Time) {
	return func(j string, slot time.Time) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, confirmation{node, j, slot})
	}
}

func (r *recorder) snapshot() []confirmation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]confirmation(nil), r.got...)
}

// nodeSpec describes a test node.
type nodeSpec struct {
	name, region, role, fleet string
	keys                      [][]byte
	join                      []string
}

func quietLogger() *slog.Logger {
	if os.Getenv("FLEET_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startNode(t testing.TB, s nodeSpec, rec *recorder) *Fleet {
	t.Helper()
	if s.role == "" {
		s.role = RoleProber
	}
	if s.fleet == "" {
		s.fleet = "test-fleet"
	}
	cfg := Config{
		Name: s.name, Fleet: s.fleet, Bind: "127.0.0.1:0", Join: s.join, Keys: s.keys,
		Meta:     Meta{Role: s.role, Region: s.region, Version: "test", ConfigDigest: "d1"},
		Journeys: testJourneys, Timings: testTimings(), ConfirmInterval: time.Second,
		JoinBackoff: time.Second, Logger: quietLogger(),
	}
	if rec != nil {
		cfg.OnConfirm = rec.hook(s.name)
	}
	f, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start %s: %v", s.name, err)
	}
	t.Cleanup(func() { f.Close(time.Second) })
	return f
}

// eventually polls cond every 20 ms until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func names(ms []Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	sort.Strings(out)
	return out
}

// agree reports whether every node sees exactly want (by name).
func agree(nodes []*Fleet, want []string) bool {
	sort.Strings(want)
	for _, n := range nodes {
		if fmt.Sprint(names(n.Snapshot().Members)) != fmt.Sprint(want) {
			return false
		}
	}
	return true
}

func nodeNames(nodes []*Fleet) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name())
	}
	return out
}

func without(nodes []*Fleet, gone *Fleet) []*Fleet {
	var out []*Fleet
	for _, n := range nodes {
		if n != gone {
			out = append(out, n)
		}
	}
	return out
}

// cluster starts perRegion probers in each region plus, if agg, an
// aggregator, all sharing key, and waits until every node sees all.
func cluster(t testing.TB, regions []string, perRegion int, key []byte, agg bool, rec *recorder) []*Fleet {
	t.Helper()
	var nodes []*Fleet
	for _, r := range regions {
		for i := 1; i <= perRegion; i++ {
			s := nodeSpec{name: fmt.Sprintf("%s-%d", r, i), region: r, keys: [][]byte{key}}
			if len(nodes) > 0 {
				s.join = []string{nodes[0].Addr()}
			}
			nodes = append(nodes, startNode(t, s, rec))
		}
	}
	if agg {
		nodes = append(nodes, startNode(t, nodeSpec{name: "aggregator", region: "eu", role: RoleAggregator, keys: [][]byte{key}, join: []string{nodes[0].Addr()}}, rec))
	}
	eventually(t, 20*time.Second, "every node sees the whole cluster", func() bool { return agree(nodes, nodeNames(nodes)) })
	return nodes
}

func byName(nodes []*Fleet, name string) *Fleet {
	for _, n := range nodes {
		if n.Name() == name {
			return n
		}
	}
	return nil
}

// ownersAgree reports whether every node computes the same owner of
// journey in region, and that owner is the one node there that runs it.
func ownersAgree(nodes []*Fleet, journey, region string) (string, bool) {
	owner := ""
	for i, n := range nodes {
		o, ok := n.Snapshot().Owner(journey, region)
		if !ok || (i > 0 && o != owner) {
			return "", false
		}
		owner = o
	}
	runners := 0
	for _, n := range nodes {
		if n.self.Region == region && n.RunsSlot(journey, time.Time{}) {
			runners++
			if n.Name() != owner {
				return "", false
			}
		}
	}
	return owner, runners == 1
}

func mustKey(t testing.TB) []byte {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

package fleet

import (
	"fmt"
	"testing"
	"time"
)

var regions3 = []string{"ap", "eu", "us"}

func TestFleet_NineAgentsThreeRegions_OwnershipTakeoverAndConfirmation(t *testing.T) {
	rec := &recorder{}
	key := mustKey(t)
	nodes := cluster(t, regions3, 3, key, true, rec)
	agg := byName(nodes, "aggregator")
	parent := t // nodes started in subtests live as long as the whole test

	t.Run("exactly one owner per journey per region, agreed by all", func(t *testing.T) {
		for j, info := range testJourneys {
			for _, r := range regions3 {
				if info.Mode == ModeEveryAgent {
					for _, n := range nodes {
						if got, want := n.RunsSlot(j, time.Time{}), n != agg; got != want {
							t.Fatalf("%s on %s: RunsSlot %v, want %v", j, n.Name(), got, want)
						}
					}
					continue
				}
				if _, ok := ownersAgree(nodes, j, r); !ok {
					t.Fatalf("%s/%s: nodes disagree on the owner or several run it", j, r)
				}
			}
			if agg.RunsSlot(j, time.Time{}) {
				t.Fatalf("the aggregator runs %s", j)
			}
		}
	})

	t.Run("snapshot lists probers per region with versions and digests", func(t *testing.T) {
		s := agg.Snapshot()
		for _, r := range regions3 {
			if len(s.Regions[r]) != 3 {
				t.Fatalf("region %s: %v", r, names(s.Regions[r]))
			}
			for _, m := range s.Regions[r] {
				if m.Version != "test" || m.ConfigDigest != "d1" || m.Addr == "" {
					t.Fatalf("member %+v", m)
				}
			}
		}
		if len(s.Members) != 10 {
			t.Fatalf("%d members", len(s.Members))
		}
	})

	t.Run("offsets follow regions sorted by name", func(t *testing.T) {
		for _, n := range nodes {
			// The aggregator sits in eu: it gets eu's offset but runs nothing.
			want := map[string]time.Duration{"ap": 0, "eu": 10 * time.Second, "us": 20 * time.Second}[n.self.Region]
			if got := n.Offset(30 * time.Second); got != want {
				t.Fatalf("%s: offset %s, want %s", n.Name(), got, want)
			}
		}
	})

	t.Run("a failure in one region is confirmed by its other agent and the other regions' owners", func(t *testing.T) {
		before := len(rec.snapshot())
		origin := byName(nodes, mustOwner(t, nodes, "git-clone", "eu"))
		slot := time.Date(2026, 11, 26, 6, 0, 30, 0, time.UTC)
		if !origin.RequestConfirm("git-clone", "git", slot) {
			t.Fatal("request not sent")
		}
		if origin.RequestConfirm("git-clone", "git", slot.Add(30*time.Second)) {
			t.Fatal("a second request within the rate limit went out")
		}
		members := origin.Snapshot().Members
		want := map[string]bool{}
		for _, m := range members {
			if ConfirmTarget("git-clone", "eu", origin.Name(), m, members) {
				want[m.Name] = true
			}
		}
		if len(want) != 3 {
			t.Fatalf("expected targets %v", want)
		}
		eventually(t, 5*time.Second, "three confirmations", func() bool { return len(rec.snapshot())-before >= 3 })
		// Let gossip settle a few rounds: no further node may confirm.
		time.Sleep(20 * testTimings().GossipInterval)
		got := rec.snapshot()[before:]
		if len(got) != 3 {
			t.Fatalf("confirmations %v, want exactly 3", got)
		}
		regionsSeen := map[string]bool{}
		for _, c := range got {
			if !want[c.node] || c.journey != "git-clone" || !c.slot.Equal(slot) {
				t.Fatalf("unexpected confirmation %+v (targets %v, slot %s)", c, want, slot)
			}
			regionsSeen[byName(nodes, c.node).self.Region] = true
		}
		if len(regionsSeen) != 3 {
			t.Fatalf("confirmations from regions %v", regionsSeen)
		}
	})

	t.Run("a request for an unknown journey or another kind is ignored", func(t *testing.T) {
		before := len(rec.snapshot())
		origin := byName(nodes, "us-1")
		ignoredBefore := int64(0)
		for _, n := range nodes {
			ignoredBefore += n.Stats().Ignored
		}
		origin.RequestConfirm("no-such-journey", "http", time.Unix(1800000000, 0))
		origin.RequestConfirm("api", "git", time.Unix(1800000000, 0)) // api is http
		eventually(t, 5*time.Second, "every other node ignores both requests", func() bool {
			n := int64(0)
			for _, x := range nodes {
				n += x.Stats().Ignored
			}
			return n-ignoredBefore >= 2*int64(len(nodes)-1)
		})
		if got := rec.snapshot()[before:]; len(got) != 0 {
			t.Fatalf("ignored requests ran: %v", got)
		}
	})

	t.Run("an owner killed without leaving is replaced within detection time", func(t *testing.T) {
		owner := byName(nodes, mustOwner(t, nodes, "api", "eu"))
		owner.kill()
		nodes = without(nodes, owner)
		eventually(t, 10*time.Second, "survivors agree on a new owner of api in eu", func() bool {
			o, ok := ownersAgree(nodes, "api", "eu")
			return ok && o != owner.Name()
		})
		next := byName(nodes, mustOwner(t, nodes, "api", "eu"))
		if !next.RunsSlot("api", time.Now().Add(time.Minute)) {
			t.Fatal("the new owner would not run the next slot")
		}

		// The killed agent restarts under its name at a new address and
		// rejoins, once its old entry may be reclaimed.
		time.Sleep(2 * testTimings().DeadNodeReclaim)
		re := startNode(parent, nodeSpec{name: owner.Name(), region: "eu", keys: [][]byte{key}, join: []string{nodes[0].Addr()}}, rec)
		if re.Addr() == owner.Addr() {
			t.Skip("the kernel reused the port; the new-address case is not exercised")
		}
		nodes = append(nodes, re)
		eventually(t, 10*time.Second, "the restarted agent is seen at its new address", func() bool {
			for _, n := range nodes {
				found := false
				for _, m := range n.Snapshot().Members {
					found = found || (m.Name == re.Name() && m.Addr == re.Addr())
				}
				if !found {
					return false
				}
			}
			return true
		})
		if _, ok := ownersAgree(nodes, "api", "eu"); !ok {
			t.Fatal("no single owner after the rejoin")
		}
	})

	t.Run("an owner leaving gracefully hands over", func(t *testing.T) {
		ownerName := mustOwner(t, nodes, "pipeline", "us")
		owner := byName(nodes, ownerName)
		if err := owner.Close(time.Second); err != nil {
			t.Fatal(err)
		}
		nodes = without(nodes, owner)
		eventually(t, 5*time.Second, "survivors agree on a new owner of pipeline in us", func() bool {
			o, ok := ownersAgree(nodes, "pipeline", "us")
			return ok && o != ownerName
		})
		if _, ok := nodes[0].Snapshot().Gone[ownerName]; !ok {
			t.Fatalf("%s not listed as gone", ownerName)
		}
	})
}

func mustOwner(t *testing.T, nodes []*Fleet, journey, region string) string {
	t.Helper()
	var o string
	eventually(t, 5*time.Second, "agreement on the owner of "+journey+" in "+region, func() bool {
		var ok bool
		o, ok = ownersAgree(nodes, journey, region)
		return ok
	})
	return o
}

func TestFleet_KeyRotationAcrossRunningCluster_KeepsMembership(t *testing.T) {
	k1, k2 := mustKey(t), mustKey(t)
	nodes := cluster(t, []string{"eu", "us"}, 2, k1, false, nil)
	all := nodeNames(nodes)
	steps := []struct {
		name string
		keys [][]byte
	}{
		{"add the new key", [][]byte{k1, k2}},
		{"switch the primary", [][]byte{k2, k1}},
		{"remove the old key", [][]byte{k2}},
	}
	for _, s := range steps {
		for _, n := range nodes {
			if err := n.SetKeys(s.keys); err != nil {
				t.Fatalf("%s on %s: %v", s.name, n.Name(), err)
			}
		}
		// Several probe and gossip rounds under the new ring.
		time.Sleep(5 * testTimings().ProbeInterval)
		if !agree(nodes, all) {
			t.Fatalf("membership lost after %q", s.name)
		}
	}
	// Only the new key gets in now.
	old := startNode(t, nodeSpec{name: "old-key", region: "eu", keys: [][]byte{k1}, join: []string{nodes[0].Addr()}}, nil)
	fresh := startNode(t, nodeSpec{name: "new-key", region: "eu", keys: [][]byte{k2}, join: []string{nodes[0].Addr()}}, nil)
	eventually(t, 10*time.Second, "a node with the new key joins", func() bool { return agree(append(nodes, fresh), append(all, "new-key")) })
	if len(old.Snapshot().Members) != 1 {
		t.Fatalf("a node with the retired key sees %v", names(old.Snapshot().Members))
	}
}

func TestFleet_ReloadKeys_AppliesTheKeyFile(t *testing.T) {
	k1, k2 := mustKey(t), mustKey(t)
	path := t.TempDir() + "/keys"
	writeFile(t, path, FormatKeys([][]byte{k1}))
	f := startNode(t, nodeSpec{name: "solo", region: "eu", keys: [][]byte{k1}}, nil)
	f.cfg.KeyFile = path
	writeFile(t, path, FormatKeys([][]byte{k2, k1}))
	if err := f.ReloadKeys(); err != nil {
		t.Fatal(err)
	}
	if got := f.ring.GetPrimaryKey(); string(got) != string(k2) || len(f.ring.GetKeys()) != 2 {
		t.Fatalf("ring not updated: %d keys", len(f.ring.GetKeys()))
	}
	writeFile(t, path, []byte("garbage\n"))
	if err := f.ReloadKeys(); err == nil {
		t.Fatal("a bad key file was accepted")
	}
	if len(f.ring.GetKeys()) != 2 || string(f.ring.GetPrimaryKey()) != string(k2) {
		t.Fatal("a bad key file changed the ring")
	}
}

func TestFleet_WrongKeyWrongLabelOrNoKey_CannotJoinOrInject(t *testing.T) {
	key := mustKey(t)
	rec := &recorder{}
	nodes := cluster(t, []string{"eu", "us"}, 2, key, false, rec)
	all := nodeNames(nodes)
	target := nodes[1]
	intruders := map[string]nodeSpec{
		"wrong key":   {name: "intruder-key", region: "eu", keys: [][]byte{mustKey(t)}},
		"wrong label": {name: "intruder-label", region: "eu", keys: [][]byte{key}, fleet: "other-fleet"},
		"no key":      {name: "intruder-plain", region: "eu"},
	}
	var started []*Fleet
	for _, s := range intruders {
		s.join = []string{nodes[0].Addr()}
		started = append(started, startNode(t, s, nil))
	}
	// Give the intruders many join retries and gossip rounds.
	time.Sleep(15 * testTimings().ProbeInterval)
	if !agree(nodes, all) {
		t.Fatal("an intruder got into the membership")
	}
	for _, in := range started {
		if n := len(in.Snapshot().Members); n != 1 {
			t.Fatalf("%s sees %d members", in.Name(), n)
		}
		// Inject a well-formed confirmation request straight at a member,
		// over UDP and TCP.
		msg, err := encodeConfirm(ConfirmRequest{Journey: "api", Kind: "http", Slot: time.Unix(1900000000, 0), Region: "eu", Agent: in.Name()})
		if err != nil {
			t.Fatal(err)
		}
		node := nodeOf(target.self)
		in.ml.SendBestEffort(node, msg)
		in.ml.SendReliable(node, msg)
	}
	time.Sleep(10 * testTimings().GossipInterval)
	if got := rec.snapshot(); len(got) != 0 {
		t.Fatalf("injected requests ran: %v", got)
	}
	if s := target.Stats(); s.Ignored+s.Dropped != 0 {
		t.Fatalf("an injected message reached the delegate: %+v", s)
	}
}

func TestFleet_MalformedOrOversizedMessage_DroppedAndCounted(t *testing.T) {
	key := mustKey(t)
	rec := &recorder{}
	nodes := cluster(t, []string{"eu", "us"}, 1, key, false, rec)
	from, to := nodes[0], nodes[1]
	good, _ := encodeConfirm(ConfirmRequest{Journey: "api", Kind: "http", Slot: time.Unix(1900000000, 0), Region: "eu", Agent: from.Name()})
	bad := [][]byte{
		[]byte("garbage"),
		append([]byte{'V', 9, 1}, good[3:]...),
		[]byte("V\x01\x01{\"journey\":"),
		append(append([]byte{}, good...), make([]byte, 64<<10)...),
	}
	node := nodeOf(to.self)
	for _, b := range bad {
		if err := from.ml.SendReliable(node, b); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, fmt.Sprintf("%d drops counted", len(bad)), func() bool { return to.Stats().Dropped >= int64(len(bad)) })
	if got := rec.snapshot(); len(got) != 0 {
		t.Fatalf("malformed messages ran: %v", got)
	}
	// The receiver still works: a valid request is confirmed.
	if err := from.ml.SendReliable(node, good); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the valid request is confirmed", func() bool { return len(rec.snapshot()) == 1 })

	// The receiver rate-limits too: a second request for the journey within
	// ConfirmInterval (bypassing the sender's limit) runs nothing.
	second, _ := encodeConfirm(ConfirmRequest{Journey: "api", Kind: "http", Slot: time.Unix(1900000030, 0), Region: "eu", Agent: from.Name()})
	if err := from.ml.SendReliable(node, second); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the second request is rate-limited", func() bool { return to.Stats().ConfirmsLimited == 1 })
	if got := rec.snapshot(); len(got) != 1 {
		t.Fatalf("rate-limited request ran: %v", got)
	}
}

func TestFleet_JoinRetriesInBackgroundUntilAPeerAnswers_AndMergesAgainAfterASplit(t *testing.T) {
	key := mustKey(t)
	// Reserve an address, then free it: the first attempts find nobody.
	probe := startNode(t, nodeSpec{name: "placeholder", region: "eu", keys: [][]byte{key}}, nil)
	addr := probe.Addr()
	probe.Close(time.Second)
	late := startNode(t, nodeSpec{name: "late", region: "eu", keys: [][]byte{key}, join: []string{addr}}, nil)
	time.Sleep(300 * time.Millisecond)
	if n := len(late.Snapshot().Members); n != 1 || late.Joined() {
		t.Fatalf("joined nobody yet sees %d (joined %v)", n, late.Joined())
	}
	startSeed := func() *Fleet {
		cfg := Config{Name: "seed", Fleet: "test-fleet", Bind: addr, Keys: [][]byte{key},
			Meta: Meta{Role: RoleProber, Region: "us"}, Timings: testTimings(), Logger: quietLogger()}
		seed, err := New(t.Context(), cfg)
		if err != nil {
			t.Skipf("address %s was taken meanwhile: %v", addr, err)
		}
		t.Cleanup(func() { seed.Close(time.Second) })
		return seed
	}
	seed := startSeed()
	eventually(t, 10*time.Second, "the late node joins the seed once it appears", func() bool {
		return agree([]*Fleet{late, seed}, []string{"late", "seed"})
	})
	if !late.Joined() {
		t.Fatal("Joined is false after joining")
	}

	// The seed vanishes for longer than memberlist gossips to the dead,
	// then comes back knowing nobody: only the periodic re-join of the
	// join list brings the two halves together again.
	seed.kill()
	eventually(t, 10*time.Second, "the late node declares the seed dead", func() bool { return len(late.Snapshot().Members) == 1 })
	time.Sleep(testTimings().GossipToTheDead + testTimings().ProbeInterval)
	seed = startSeed()
	eventually(t, 10*time.Second, "the halves merge again", func() bool {
		return agree([]*Fleet{late, seed}, []string{"late", "seed"})
	})
}

func TestFleet_Nil_IsAFleetOfOne(t *testing.T) {
	var f *Fleet
	if !f.ShouldRun("api", ModeOnePerRegion) || !f.RunsSlot("api", time.Time{}) || f.Offset(time.Minute) != 0 || f.JourneyOffset("api") != 0 {
		t.Fatal("a nil fleet must run everything with no offset")
	}
	f.SetOnConfirm(func(string, time.Time) {})
	if f.RequestConfirm("api", "http", time.Unix(1, 0)) || f.Close(time.Second) != nil || !f.Joined() || len(f.Snapshot().Members) != 0 ||
		f.ReloadKeys() != nil || f.SetJourneys(nil) != nil {
		t.Fatal("a nil fleet must send nothing and close cleanly")
	}
}

func TestFleet_JourneyOffset_UsesTheJourneysInterval(t *testing.T) {
	key := mustKey(t)
	a := startNode(t, nodeSpec{name: "a", region: "ap", keys: [][]byte{key}}, nil)
	b := startNode(t, nodeSpec{name: "b", region: "eu", keys: [][]byte{key}, join: []string{a.Addr()}}, nil)
	if err := b.SetJourneys(map[string]Journey{"api": {Kind: "http", Mode: ModeOnePerRegion, Interval: 30 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	if err := b.SetJourneys(map[string]Journey{"bad": {Kind: "http", Mode: "sometimes"}}); err == nil {
		t.Fatal("an unknown mode was accepted")
	}
	eventually(t, 5*time.Second, "both see both", func() bool { return agree([]*Fleet{a, b}, []string{"a", "b"}) })
	if got := b.JourneyOffset("api"); got != 15*time.Second {
		t.Fatalf("offset of eu (index 1 of 2) = %s, want 15s", got)
	}
	if got := b.JourneyOffset("unknown"); got != 0 {
		t.Fatalf("unknown journey offset %s", got)
	}
}

package fleet

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// RequestConfirm broadcasts a confirmation request for a failed scheduled
// run of journey (of kind) at slot. It reports whether the request went
// out: it does not when this node is not a prober, the request is invalid,
// or one was sent for the journey less than ConfirmInterval ago.
//
// The request is queued for gossip (every receiver re-gossips it once, so
// it reaches the whole fleet in a few gossip rounds) and also sent straight
// to the nodes this node expects to confirm, which is the fast path.
// Receivers decide for themselves (ConfirmTarget).
func (f *Fleet) RequestConfirm(journey, kind string, slot time.Time) bool {
	if f == nil || f.self.Role != RoleProber {
		return false
	}
	r := ConfirmRequest{Journey: journey, Kind: kind, Slot: slot.UTC(), Region: f.self.Region, Agent: f.self.Name}
	msg, err := encodeConfirm(r)
	if err != nil {
		f.log.Warn("not sending a confirmation request", "journey", journey, "err", err)
		return false
	}
	now := time.Now()
	f.mu.Lock()
	if last, ok := f.sentAt[journey]; ok && now.Sub(last) < f.cfg.ConfirmInterval {
		f.mu.Unlock()
		f.suppressed.Add(1)
		return false
	}
	f.sentAt[journey] = now
	f.remember(r.key(), now)
	f.mu.Unlock()

	f.queue.QueueBroadcast(broadcast(msg))
	members := f.live()
	for _, m := range members {
		if m.Name != f.self.Name && ConfirmTarget(journey, r.Region, r.Agent, m, members) {
			if err := f.ml.SendBestEffort(nodeOf(m), msg); err != nil {
				f.log.Debug("direct confirmation request failed; gossip will carry it", "peer", m.Name, "err", err)
			}
		}
	}
	f.requestsSent.Add(1)
	f.log.Info("confirmation requested", "journey", journey, "slot", r.Slot)
	return true
}

// key identifies a request for deduplication: the same request arrives by
// the direct path and by gossip, possibly several times.
func (r ConfirmRequest) key() string {
	return r.Agent + "\x00" + r.Journey + "\x00" + strconv.FormatInt(r.Slot.UnixNano(), 10)
}

// confirmLoop handles requests from the inbox, one at a time.
func (f *Fleet) confirmLoop(ctx context.Context) {
	defer f.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-f.inbox:
			f.handle(r)
		}
	}
}

// handle decides whether this node confirms r, and starts it if so.
func (f *Fleet) handle(r ConfirmRequest) {
	now := time.Now()
	f.mu.Lock()
	k := r.key()
	if _, dup := f.seen[k]; dup {
		f.mu.Unlock()
		return
	}
	f.remember(k, now)
	f.mu.Unlock()

	// Pass it on once, so that it spreads even where the direct send did
	// not reach; the origin's own queue already carries it.
	if msg, err := encodeConfirm(r); err == nil {
		f.queue.QueueBroadcast(broadcast(msg))
	}

	j, known := f.journey(r.Journey)
	if !known || j.Kind != r.Kind {
		f.ignored.Add(1)
		return
	}
	if !ConfirmTarget(r.Journey, r.Region, r.Agent, f.self, f.live()) {
		return
	}
	f.mu.Lock()
	if last, ok := f.ranAt[r.Journey]; ok && now.Sub(last) < f.cfg.ConfirmInterval {
		f.mu.Unlock()
		f.confirmsLimited.Add(1)
		return
	}
	f.ranAt[r.Journey] = now
	f.mu.Unlock()
	f.confirmsRun.Add(1)
	f.log.Info("confirming", "journey", r.Journey, "slot", r.Slot, "origin", r.Agent, "origin_region", r.Region)
	if fn := f.onConfirm.Load(); fn != nil {
		(*fn)(r.Journey, r.Slot)
	}
}

// remember records a request key, keeping the set bounded. f.mu is held.
func (f *Fleet) remember(k string, now time.Time) {
	if len(f.seen) >= maxSeen {
		for key, t := range f.seen {
			if now.Sub(t) > seenTTL {
				delete(f.seen, key)
			}
		}
		for key := range f.seen { // still full: forget arbitrary entries
			if len(f.seen) < maxSeen {
				break
			}
			delete(f.seen, key)
		}
	}
	f.seen[k] = now
}

// broadcast is a gossip message that never supersedes another.
type broadcast []byte

func (b broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b broadcast) Message() []byte                       { return b }
func (b broadcast) Finished()                             {}

// nodeOf builds the memberlist address of a member for a direct send.
func nodeOf(m Member) *memberlist.Node {
	host, port, _ := net.SplitHostPort(m.Addr)
	p, _ := strconv.Atoi(port)
	return &memberlist.Node{Name: m.Name, Addr: net.ParseIP(host), Port: uint16(p)}
}

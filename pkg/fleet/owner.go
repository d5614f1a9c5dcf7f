package fleet

import (
	"hash/fnv"
	"sort"
	"time"

	"github.com/vantage-fleet/vantage/pkg/schedule"
)

// Journey modes, as in config: one live prober per region runs a
// "one-per-region" journey; every prober runs an "every-agent" journey.
const (
	ModeOnePerRegion = "one-per-region"
	ModeEveryAgent   = "every-agent"
)

// score is the rendezvous (highest random weight) hash of a journey and a
// node: FNV-1a over both names, then a 64-bit finaliser so that names that
// differ in one character still land far apart. Every agent computes the
// same score from the same names, with no coordination.
func score(journey, node string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(journey))
	h.Write([]byte{0})
	h.Write([]byte(node))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// beats reports whether node a outranks node b for journey (ties, which
// need a 64-bit collision, go to the smaller name).
func beats(journey, a, b string) bool {
	sa, sb := score(journey, a), score(journey, b)
	if sa != sb {
		return sa > sb
	}
	return a < b
}

// Owner returns the prober of region that runs a one-per-region journey:
// the live prober with the highest rendezvous hash of (journey, name).
// Members of other roles never own. ok is false when the region has no
// live prober.
func Owner(journey, region string, members []Member) (name string, ok bool) {
	return ownerExcept(journey, region, "", members)
}

// ownerExcept is Owner ignoring the node named except.
func ownerExcept(journey, region, except string, members []Member) (string, bool) {
	best := ""
	for _, m := range members {
		if m.Role != RoleProber || m.Region != region || m.Name == except {
			continue
		}
		if best == "" || beats(journey, m.Name, best) {
			best = m.Name
		}
	}
	return best, best != ""
}

// ShouldRun is the pure ownership rule: whether the node self (a member of
// members) runs a journey of the given mode. Only probers run journeys; an
// "every-agent" journey runs on every prober; a "one-per-region" journey
// (or an unknown mode, to fail safe towards one run) runs on its region's
// Owner.
func ShouldRun(journey, mode string, self Member, members []Member) bool {
	if self.Role != RoleProber {
		return false
	}
	if mode == ModeEveryAgent {
		return true
	}
	owner, ok := Owner(journey, self.Region, members)
	return ok && owner == self.Name
}

// ConfirmTarget is the pure confirmation rule: whether self runs a
// confirmation of journey asked for by origin (a node of originRegion).
// In the origin's region one other prober confirms: the highest rendezvous
// hash excluding the origin. In every other region its Owner confirms.
func ConfirmTarget(journey, originRegion, origin string, self Member, members []Member) bool {
	if self.Role != RoleProber || self.Name == origin {
		return false
	}
	except := ""
	if self.Region == originRegion {
		except = origin
	}
	who, ok := ownerExcept(journey, self.Region, except, members)
	return ok && who == self.Name
}

// Regions returns the sorted names of the regions that have a live prober.
func Regions(members []Member) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range members {
		if m.Role == RoleProber && !seen[m.Region] {
			seen[m.Region] = true
			out = append(out, m.Region)
		}
	}
	sort.Strings(out)
	return out
}

// Offset is the phase offset of region's slots for a journey of the given
// interval: the region's index among Regions(members), passed to
// schedule.PhaseOffset. A region not in the list (no live prober, e.g. an
// observer's view) gets offset 0.
func Offset(region string, members []Member, interval time.Duration) time.Duration {
	rs := Regions(members)
	i := sort.SearchStrings(rs, region)
	if i >= len(rs) || rs[i] != region {
		return 0
	}
	return schedule.PhaseOffset(i, len(rs), interval)
}

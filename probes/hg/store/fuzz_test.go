package store

import (
	"bytes"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/probes/hg/wire"
)

// FuzzApply feeds arbitrary changegroups to a repository holding one
// commit: whatever the input, Apply returns an error or a repository whose
// every received node hashed correctly; it never panics.
func FuzzApply(f *testing.F) {
	empty := &Repo{URL: "x"}
	cg, _, _ := empty.Commit("a", []byte("one\n"), "u", "first", time.Unix(0, 0).UTC())
	base, _, err := empty.Apply(mustCG(f, cg), limits())
	if err != nil {
		f.Fatal(err)
	}
	next, _, _ := base.Commit("a", []byte("two\n"), "u", "second", time.Unix(1, 0).UTC())
	f.Add(next)
	f.Add(cg)
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := wire.NewCGReader(bytes.NewReader(in), "02", limits())
		if err != nil {
			t.Fatal(err)
		}
		after, _, err := base.Apply(r, limits())
		if err != nil {
			return
		}
		if len(after.Changesets) < len(base.Changesets) {
			t.Fatal("changesets lost")
		}
		if _, err := after.Manifest(); err != nil {
			t.Fatalf("accepted a changegroup whose tip manifest does not parse: %v", err)
		}
	})
}

func limits() wire.Limits {
	return wire.Limits{MaxHeader: 1 << 10, MaxChunk: 1 << 16, MaxText: 1 << 16, MaxTotal: 1 << 20}
}

func mustCG(t testing.TB, b []byte) *wire.CGReader {
	r, err := wire.NewCGReader(bytes.NewReader(b), "02", limits())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

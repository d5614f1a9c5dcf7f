// Package store is the hg journey's local cache of a remote repository:
// every changeset node with its parents (to compute the heads sent as
// `common` when pulling), and the full texts of the tip changeset, its
// manifest and its files (the delta bases of the next pull and the
// parents of the next changeset). It applies changegroups to that state,
// verifying every node hash, and saves it atomically.
package store

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/vantage-fleet/vantage/probes/hg/revlog"
	"github.com/vantage-fleet/vantage/probes/hg/wire"
)

// ErrHashMismatch marks a revision whose text does not hash to its node.
var ErrHashMismatch = errors.New("node hash mismatch")

// ErrMissingBase marks a delta against a revision this cache does not
// hold; a fresh clone resolves it.
var ErrMissingBase = errors.New("delta base not in the local cache")

// Changeset is one known changeset and its parents.
type Changeset struct {
	Node, P1, P2 revlog.Node
}

// Repo is the cached state of one remote repository. The zero value is an
// empty repository.
type Repo struct {
	// URL is the remote the cache belongs to.
	URL string
	// Changesets are every known changeset, in the order received.
	Changesets []Changeset
	// Tip is the last changeset received (Null when empty).
	Tip revlog.Node
	// TipText is the tip's changelog text.
	TipText []byte
	// ManifestText is the full text of the tip's manifest.
	ManifestText []byte
	// Files holds the full filelog text of every file node of the tip's manifest.
	Files map[revlog.Node][]byte
}

// Heads returns the known changesets that have no known child.
func (r *Repo) Heads() []revlog.Node {
	parent := make(map[revlog.Node]bool, len(r.Changesets))
	for _, c := range r.Changesets {
		parent[c.P1], parent[c.P2] = true, true
	}
	var out []revlog.Node
	for _, c := range r.Changesets {
		if !parent[c.Node] {
			out = append(out, c.Node)
		}
	}
	return out
}

// TipChangeset parses the tip; nil for an empty repository.
func (r *Repo) TipChangeset() (*revlog.Changeset, error) {
	if r.Tip.IsNull() {
		return nil, nil
	}
	return revlog.ParseChangeset(r.TipText)
}

// Manifest parses the tip's manifest.
func (r *Repo) Manifest() (revlog.Manifest, error) { return revlog.ParseManifest(r.ManifestText) }

// Stats describes one applied changegroup.
type Stats struct {
	Changesets, Manifests, Files, Revisions int
	// Deltas counts revisions sent as a delta against another revision
	// (not a full text).
	Deltas int
	// CachedBases counts deltas against a text the cache held from an
	// earlier run (what makes an incremental pull cheap).
	CachedBases int
	// Version is the changegroup version the server chose.
	Version string
}

// group applies one delta group, verifying every hash. base resolves a
// node outside the group; keep says which results to return.
type group struct {
	lim    wire.Limits
	texts  map[revlog.Node][]byte
	held   int64
	deltas int
	cached int
	order  []revlog.Node
	prev   revlog.Node
}

func (g *group) add(d *wire.Delta, outside func(revlog.Node) ([]byte, bool), what string) ([]byte, error) {
	baseNode := d.Base
	if d.BaseIsPrevious {
		baseNode = d.P1
		if len(g.order) > 0 {
			baseNode = g.prev
		}
	}
	var base []byte
	if !baseNode.IsNull() {
		g.deltas++
		var ok bool
		if base, ok = g.texts[baseNode]; !ok {
			if base, ok = outside(baseNode); !ok {
				return nil, fmt.Errorf("%s %s: %w (%s)", what, d.Node, ErrMissingBase, baseNode)
			}
			g.cached++
		}
	}
	text, err := revlog.Patch(base, d.Data, g.lim.MaxText)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w (%w)", what, d.Node, err, wire.ErrMalformed)
	}
	if got := revlog.Hash(d.P1, d.P2, text); got != d.Node {
		return nil, fmt.Errorf("%s %s: %w (text hashes to %s)", what, d.Node, ErrHashMismatch, got)
	}
	if _, dup := g.texts[d.Node]; !dup {
		g.held += int64(len(text))
		if g.held > g.lim.MaxTotal {
			return nil, fmt.Errorf("%s group holds more than %d bytes of text: %w", what, g.lim.MaxTotal, wire.ErrMalformed)
		}
		g.order = append(g.order, d.Node)
	}
	g.texts[d.Node] = text
	g.prev = d.Node
	return text, nil
}

func newGroup(lim wire.Limits) *group {
	return &group{lim: lim, texts: map[revlog.Node][]byte{}}
}

// Apply reads a whole changegroup and returns the repository after it.
// r is not modified: a malformed changegroup leaves the cache as it was.
func (r *Repo) Apply(cg *wire.CGReader, lim wire.Limits) (*Repo, Stats, error) {
	var st Stats
	next := &Repo{URL: r.URL, Changesets: append([]Changeset(nil), r.Changesets...),
		Tip: r.Tip, TipText: r.TipText, ManifestText: r.ManifestText}
	known := make(map[revlog.Node]bool, len(r.Changesets)+1)
	known[revlog.Null] = true
	for _, c := range r.Changesets {
		known[c.Node] = true
	}

	// Changelog.
	cl := newGroup(lim)
	clOutside := func(n revlog.Node) ([]byte, bool) {
		if n == r.Tip && !n.IsNull() {
			return r.TipText, true
		}
		return nil, false
	}
	for {
		d, err := cg.Delta()
		if err != nil {
			return nil, st, err
		}
		if d == nil {
			break
		}
		if !known[d.P1] || !known[d.P2] {
			return nil, st, fmt.Errorf("changeset %s: unknown parent: %w", d.Node, wire.ErrMalformed)
		}
		if d.LinkNode != d.Node {
			return nil, st, fmt.Errorf("changeset %s: linknode %s differs from the node: %w", d.Node, d.LinkNode, wire.ErrMalformed)
		}
		text, err := cl.add(d, clOutside, "changeset")
		if err != nil {
			return nil, st, err
		}
		if !known[d.Node] {
			known[d.Node] = true
			next.Changesets = append(next.Changesets, Changeset{Node: d.Node, P1: d.P1, P2: d.P2})
			st.Changesets++
		}
		next.Tip, next.TipText = d.Node, text
	}
	st.Revisions += len(cl.order)
	st.Deltas += cl.deltas
	st.CachedBases += cl.cached
	tip, err := next.TipChangeset()
	if err != nil {
		return nil, st, fmt.Errorf("tip %s: %w (%w)", next.Tip, err, wire.ErrMalformed)
	}

	// Manifests: keep the tip's.
	mf := newGroup(lim)
	mfOutside := func(n revlog.Node) ([]byte, bool) {
		if old, err := r.TipChangeset(); err == nil && old != nil && old.Manifest == n {
			return r.ManifestText, true
		}
		return nil, false
	}
	if err := readGroup(cg, mf, mfOutside, known, "manifest"); err != nil {
		return nil, st, err
	}
	st.Manifests = len(mf.order)
	st.Revisions += len(mf.order)
	st.Deltas += mf.deltas
	st.CachedBases += mf.cached
	var manifest revlog.Manifest
	if tip != nil {
		if t, ok := mf.texts[tip.Manifest]; ok {
			next.ManifestText = t
		} else if t, ok := mfOutside(tip.Manifest); ok {
			next.ManifestText = t
		} else if !tip.Manifest.IsNull() {
			return nil, st, fmt.Errorf("manifest %s of the tip: %w", tip.Manifest, ErrMissingBase)
		} else {
			next.ManifestText = nil
		}
		if manifest, err = revlog.ParseManifest(next.ManifestText); err != nil {
			return nil, st, fmt.Errorf("%w (%w)", err, wire.ErrMalformed)
		}
	}
	mf = nil

	// Files: keep the texts the tip's manifest names.
	want := map[revlog.Node]bool{}
	for _, e := range manifest {
		want[e.Node] = true
	}
	next.Files = map[revlog.Node][]byte{}
	for n, t := range r.Files {
		if want[n] {
			next.Files[n] = t
		}
	}
	fileOutside := func(n revlog.Node) ([]byte, bool) {
		t, ok := r.Files[n]
		return t, ok
	}
	for {
		name, ok, err := cg.FileName()
		if err != nil {
			return nil, st, err
		}
		if !ok {
			break
		}
		g := newGroup(lim)
		if err := readGroup(cg, g, fileOutside, known, "file "+name); err != nil {
			return nil, st, err
		}
		st.Files++
		st.Revisions += len(g.order)
		st.Deltas += g.deltas
		st.CachedBases += g.cached
		if e, ok := manifest.Lookup(name); ok {
			if t, ok := g.texts[e.Node]; ok {
				next.Files[e.Node] = t
			}
		}
	}
	for _, e := range manifest {
		if _, ok := next.Files[e.Node]; !ok {
			return nil, st, fmt.Errorf("file %s@%s of the tip: %w", e.Path, e.Node, ErrMissingBase)
		}
	}
	return next, st, nil
}

func readGroup(cg *wire.CGReader, g *group, outside func(revlog.Node) ([]byte, bool), known map[revlog.Node]bool, what string) error {
	for {
		d, err := cg.Delta()
		if err != nil {
			return err
		}
		if d == nil {
			return nil
		}
		if !known[d.LinkNode] {
			return fmt.Errorf("%s %s: linknode %s is not a known changeset: %w", what, d.Node, d.LinkNode, wire.ErrMalformed)
		}
		if _, err := g.add(d, outside, what); err != nil {
			return err
		}
	}
}

// File returns the content (copy metadata removed) of path in the tip.
func (r *Repo) File(path string) ([]byte, bool) {
	m, err := r.Manifest()
	if err != nil {
		return nil, false
	}
	e, ok := m.Lookup(path)
	if !ok {
		return nil, false
	}
	content, _, err := revlog.SplitFileText(r.Files[e.Node])
	return content, err == nil
}

// cacheFile is the one file the cache lives in.
const cacheFile = "hg-cache.gob"

// Load reads the cache in dir; ok is false when there is none (or it
// belongs to another URL, or cannot be read: the next run clones afresh).
func Load(dir, url string, maxBytes int64) (r *Repo, ok bool) {
	f, err := os.Open(filepath.Join(dir, cacheFile))
	if err != nil {
		return &Repo{URL: url}, false
	}
	defer f.Close()
	var c Repo
	if err := gob.NewDecoder(io.LimitReader(f, maxBytes)).Decode(&c); err != nil || c.URL != url {
		return &Repo{URL: url}, false
	}
	return &c, true
}

// Save writes the cache atomically (temporary file, then rename).
func (r *Repo) Save(dir string) error {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(r); err != nil {
		return fmt.Errorf("encoding the hg cache: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, cacheFile+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, cacheFile))
}

package store

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/vantage-fleet/vantage/probes/hg/revlog"
	"github.com/vantage-fleet/vantage/probes/hg/wire"
)

// Pull fetches what the remote has beyond r (common = r's heads) up to
// heads, and returns the repository after applying it. r is not modified.
func Pull(ctx context.Context, c *wire.Client, r *Repo, heads []revlog.Node) (*Repo, Stats, error) {
	body, err := c.GetBundle(ctx, heads, r.Heads())
	if err != nil {
		return nil, Stats{}, err
	}
	defer body.Close()
	b2, err := wire.NewBundle2Reader(body, c.Limits)
	if err != nil {
		return nil, Stats{}, err
	}
	next, st := r, Stats{}
	seen := false
	for {
		p, err := b2.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, st, err
		}
		switch p.Type {
		case "changegroup":
			if seen {
				return nil, st, fmt.Errorf("getbundle: more than one changegroup part: %w", wire.ErrMalformed)
			}
			seen = true
			version := p.Params["version"]
			if version == "" {
				version = "01"
			}
			cg, err := wire.NewCGReader(p, version, c.Limits)
			if err != nil {
				return nil, st, err
			}
			if next, st, err = r.Apply(cg, c.Limits); err != nil {
				return nil, st, err
			}
			st.Version = version
			// The payload must end right after the changegroup.
			if n, err := io.Copy(io.Discard, io.LimitReader(p, 1)); err != nil || n != 0 {
				return nil, st, fmt.Errorf("getbundle: bytes after the changegroup: %w", wire.ErrMalformed)
			}
		case "error:abort":
			return nil, st, &wire.AbortError{Message: p.Params["message"], Hint: p.Params["hint"]}
		default:
			if p.Mandatory {
				return nil, st, fmt.Errorf("getbundle: unknown mandatory part %q: %w", p.Type, wire.ErrMalformed)
			}
		}
	}
	return next, st, nil
}

// Commit builds a changeset on the tip that sets path to content, and
// returns it as a version 02 changegroup (every revision a full text
// against the null base) together with the new changeset's node.
func (r *Repo) Commit(path string, content []byte, user, desc string, when time.Time) (cg []byte, node revlog.Node, err error) {
	parent, err := r.TipChangeset()
	if err != nil {
		return nil, node, fmt.Errorf("tip: %w", err)
	}
	var m revlog.Manifest
	mp := revlog.Null
	extra := map[string]string{}
	if parent != nil {
		if m, err = r.Manifest(); err != nil {
			return nil, node, err
		}
		mp = parent.Manifest
		extra["branch"] = parent.Branch()
	}
	fp := revlog.Null
	flag := ""
	if e, ok := m.Lookup(path); ok {
		fp = e.Node
		if e.Flag == "x" {
			flag = "x"
		}
	}
	ftext := revlog.FileText(content, nil)
	fnode := revlog.Hash(fp, revlog.Null, ftext)
	m = m.With(path, fnode, flag)
	mtext := m.Text()
	mnode := revlog.Hash(mp, revlog.Null, mtext)
	_, offset := when.Zone()
	cs := &revlog.Changeset{Manifest: mnode, User: user, Time: when.Unix(), TZ: -offset,
		Extra: extra, Files: []string{path}, Desc: desc}
	ctext := cs.Text()
	node = revlog.Hash(r.Tip, revlog.Null, ctext)

	var w wire.CGWriter
	w.Delta(wire.Delta{Node: node, P1: r.Tip, LinkNode: node, Data: revlog.FullDelta(ctext)})
	w.End()
	w.Delta(wire.Delta{Node: mnode, P1: mp, LinkNode: node, Data: revlog.FullDelta(mtext)})
	w.End()
	w.FileName(path)
	w.Delta(wire.Delta{Node: fnode, P1: fp, LinkNode: node, Data: revlog.FullDelta(ftext)})
	w.End()
	w.End()
	return w.Bytes(), node, nil
}

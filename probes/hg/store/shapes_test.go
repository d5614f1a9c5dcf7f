package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/lab/labtest"
	"github.com/vantage-fleet/vantage/probes/hg/revlog"
)

// shapes holds the template repository, built once per test binary.
var shapes struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shapes.dir != "" {
		os.RemoveAll(shapes.dir)
	}
	os.Exit(code)
}

// shapedRepo returns a private copy of a repository, made with the real
// hg, holding every shape a clone must get right.
func shapedRepo(t testing.TB) string {
	t.Helper()
	labtest.NeedBinary(t, "hg", "apt-get install -y mercurial")
	shapes.once.Do(func() {
		if shapes.dir, shapes.err = os.MkdirTemp("", "vantage-hg-shapes-"); shapes.err == nil {
			buildShapes(t, shapes.dir)
		}
	})
	if shapes.err != nil {
		t.Fatal(shapes.err)
	}
	repo := filepath.Join(t.TempDir(), "shapes")
	if out, err := exec.Command("cp", "-a", filepath.Join(shapes.dir, "shapes"), repo).CombinedOutput(); err != nil {
		t.Fatalf("copying the template repository: %v: %s", err, out)
	}
	return repo
}

func buildShapes(t testing.TB, dir string) {
	repo := filepath.Join(dir, "shapes")
	hgRun(t, dir, "init", repo)
	// History long enough for real deltas, with merges and many files.
	hgRun(t, repo, "debugbuilddag", "--mergeable-file", "--overwritten-file", "--new-file", "+30 *28 +5 /33")
	hgRun(t, repo, "update", "-q", "tip")

	big := make([]byte, 1<<20+4096)
	rand.Read(big)
	bin := []byte("\x00\x01\x02binary\x00\xff\xfe")
	write(t, repo, "bin/blob.dat", bin)
	write(t, repo, "bin/big.dat", big)
	write(t, repo, "empty", nil)
	write(t, repo, "meta-looking", []byte("\x01\nnot: metadata\n\x01\nbody\n"))
	write(t, repo, "tool.sh", []byte("#!/bin/sh\necho hi\n"))
	if err := os.Chmod(filepath.Join(repo, "tool.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("tool.sh", filepath.Join(repo, "link")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 120; i++ {
		write(t, repo, fmt.Sprintf("many/d%d/f%03d.txt", i%7, i), []byte(fmt.Sprintf("file %d\n", i)))
	}
	hgRun(t, repo, "commit", "-qAm", "shapes")

	// Copies and renames carry copy metadata in the filelog.
	hgRun(t, repo, "copy", "tool.sh", "copied.sh")
	hgRun(t, repo, "rename", "many/d0/f000.txt", "renamed.txt")
	hgRun(t, repo, "copy", "meta-looking", "meta-copy")
	hgRun(t, repo, "commit", "-qm", "copies and renames")

	// A named branch, merged back; then a tag.
	hgRun(t, repo, "branch", "-q", "feature")
	write(t, repo, "feature.txt", []byte("on a branch\n"))
	write(t, repo, "bin/big.dat", append(big[:1<<20:1<<20], []byte("changed tail")...))
	hgRun(t, repo, "commit", "-qAm", "feature work")
	hgRun(t, repo, "update", "-q", "default")
	write(t, repo, "default.txt", []byte("on default\n"))
	hgRun(t, repo, "commit", "-qAm", "default work")
	hgRun(t, repo, "merge", "-q", "feature")
	hgRun(t, repo, "commit", "-qm", "merge feature")
	hgRun(t, repo, "tag", "v1.0")
}

// checkTip compares the cache's tip with the server repository's tip, as
// `hg manifest --debug` and `hg archive` see it.
func checkTip(t *testing.T, r *Repo, repo string) {
	t.Helper()
	if want := strings.TrimSpace(hgRun(t, repo, "log", "-r", "tip", "-T", "{node}")); r.Tip.Hex() != want {
		t.Fatalf("tip = %s, hg says %s", r.Tip, want)
	}
	m, err := r.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range m {
		perm, flag := "644", " "
		switch e.Flag {
		case "x":
			perm, flag = "755", "*"
		case "l":
			perm, flag = "644", "@"
		}
		got = append(got, fmt.Sprintf("%s %s %s %s", e.Node, perm, flag, e.Path))
	}
	want := strings.Split(strings.TrimSpace(hgRun(t, repo, "manifest", "--debug", "-r", "tip")), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("manifest differs:\n got %d entries, want %d\n got[:3] %q\nwant[:3] %q", len(got), len(want), got[:min(3, len(got))], want[:min(3, len(want))])
	}
	out := filepath.Join(t.TempDir(), "archive")
	hgRun(t, repo, "archive", "-r", "tip", "-t", "files", "--no-decode", out)
	for _, e := range m {
		content, ok := r.File(e.Path)
		if !ok {
			t.Fatalf("%s: no content in the cache", e.Path)
		}
		p := filepath.Join(out, e.Path)
		var want []byte
		if e.Flag == "l" {
			target, err := os.Readlink(p)
			if err != nil {
				t.Fatal(err)
			}
			want = []byte(target)
		} else if want, err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(content, want) {
			t.Fatalf("%s: content differs from hg archive (%d vs %d bytes)", e.Path, len(content), len(want))
		}
	}
}

func TestClone_RepositoryOfEveryShape_TipEqualsHg(t *testing.T) {
	repo := shapedRepo(t)
	s := serve(t, repo)
	r, st := clone(t, client(s), &Repo{URL: s.URL})
	total := strings.Count(hgRun(t, repo, "log", "-T", "x"), "x")
	if st.Changesets != total || len(r.Changesets) != total {
		t.Fatalf("received %d changesets (cache %d), repository has %d", st.Changesets, len(r.Changesets), total)
	}
	if st.Version != "02" || st.Deltas < 50 {
		t.Fatalf("want a changegroup 02 with real deltas, got version %q with %d deltas", st.Version, st.Deltas)
	}
	checkTip(t, r, repo)
	// The copy metadata survives: the copied file's filelog text is framed.
	m, _ := r.Manifest()
	for _, path := range []string{"copied.sh", "renamed.txt", "meta-copy", "meta-looking"} {
		e, _ := m.Lookup(path)
		_, meta, err := revlog.SplitFileText(r.Files[e.Node])
		if err != nil {
			t.Fatal(err)
		}
		if path != "meta-looking" && meta["copy"] == "" {
			t.Errorf("%s: no copy metadata in %q", path, meta)
		}
	}
}

func TestClone_Changegroup01_TipEqualsHg(t *testing.T) {
	repo := shapedRepo(t)
	s := serve(t, repo)
	c := client(s)
	c.CGVersions = []string{"01"}
	r, st := clone(t, c, &Repo{URL: s.URL})
	if st.Version != "01" || st.Deltas < 50 {
		t.Fatalf("want a changegroup 01 with deltas, got version %q with %d deltas", st.Version, st.Deltas)
	}
	checkTip(t, r, repo)
}

func TestPull_AfterOtherPushes_FetchesOnlyNewChangesets(t *testing.T) {
	labtest.NeedBinary(t, "hg", "apt-get install -y mercurial")
	dir := t.TempDir()
	repo := filepath.Join(dir, "r")
	hgRun(t, dir, "init", repo)
	hgRun(t, repo, "debugbuilddag", "--mergeable-file", "--new-file", "+20")
	s := serve(t, repo)
	c := client(s)
	r, st := clone(t, c, &Repo{URL: s.URL})
	if st.Changesets != 20 {
		t.Fatalf("clone received %d changesets, want 20", st.Changesets)
	}
	// Others push three changesets (here: committed straight into the served repository).
	hgRun(t, repo, "update", "-q", "tip")
	for i := 0; i < 3; i++ {
		write(t, repo, "mf", []byte(fmt.Sprintf("other push %d\n", i)))
		hgRun(t, repo, "commit", "-qm", fmt.Sprintf("other %d", i))
	}
	dataDir := t.TempDir()
	if err := r.Save(dataDir); err != nil {
		t.Fatal(err)
	}
	loaded, ok := Load(dataDir, s.URL, 1<<30)
	if !ok || loaded.Tip != r.Tip {
		t.Fatalf("cache did not round-trip: ok=%v", ok)
	}
	r2, st := clone(t, c, loaded)
	if st.Changesets != 3 {
		t.Fatalf("pull received %d changesets, want only the 3 new ones", st.Changesets)
	}
	// The first new revisions are deltas against texts only the cache holds.
	if st.CachedBases == 0 {
		t.Fatalf("pull used no delta against cached texts: %+v", st)
	}
	checkTip(t, r2, repo)
	_, st = clone(t, c, r2)
	if st.Changesets != 0 {
		t.Fatalf("pull with nothing new received %d changesets", st.Changesets)
	}
}

func TestPush_NativeChangeset_HgVerifyAndLogShowIt(t *testing.T) {
	repo := shapedRepo(t)
	s := serve(t, repo)
	c := client(s)
	r, _ := clone(t, c, &Repo{URL: s.URL})
	heads, err := c.Heads(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cg, node, err := r.Commit("bin/blob.dat", []byte("probe run 42\n"), "Vantage Probe <probe@example.com>", "vantage probe run 42", time.Unix(1700000000, 0).In(time.FixedZone("x", 3600)))
	if err != nil {
		t.Fatal(err)
	}
	push(t, c, heads, cg)
	hgRun(t, repo, "verify", "-q")
	log := hgRun(t, repo, "log", "-r", "tip", "-T", "{node}|{branch}|{desc}|{files}|{date|isodate}")
	want := node.Hex() + "|default|vantage probe run 42|bin/blob.dat|2023-11-14 23:13 +0100"
	if log != want {
		t.Fatalf("hg log = %q, want %q", log, want)
	}
	if got := hgRun(t, repo, "cat", "-r", "tip", "bin/blob.dat"); got != "probe run 42\n" {
		t.Fatalf("hg cat = %q", got)
	}
}

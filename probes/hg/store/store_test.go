package store

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/lab"
	"github.com/vantage-fleet/vantage/lab/labtest"
	"github.com/vantage-fleet/vantage/probes/hg/revlog"
	"github.com/vantage-fleet/vantage/probes/hg/wire"
)

// hgRun runs hg in dir and returns its stdout.
func hgRun(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("hg", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HGPLAIN=1", "HGRCPATH=", "HGUSER=Test <test@example.com>")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("hg %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

func write(t testing.TB, dir, name string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func serve(t testing.TB, repo string) *lab.HgServe {
	t.Helper()
	labtest.NeedBinary(t, "hg", "apt-get install -y mercurial")
	s, err := lab.StartHgServe(context.Background(), lab.HgServeOptions{Repo: repo})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func client(s *lab.HgServe) *wire.Client {
	return &wire.Client{URL: s.URL, HTTP: &http.Client{Timeout: 20 * time.Second}, Limits: wire.DefaultLimits()}
}

func clone(t testing.TB, c *wire.Client, r *Repo) (*Repo, Stats) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.Capabilities(ctx); err != nil {
		t.Fatal(err)
	}
	heads, err := c.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next, st, err := Pull(ctx, c, r, heads)
	if err != nil {
		t.Fatal(err)
	}
	return next, st
}

func push(t testing.TB, c *wire.Client, heads []revlog.Node, cg []byte) int {
	t.Helper()
	b, err := wire.PushBundle(heads, cg, 1)
	if err != nil {
		t.Fatal(err)
	}
	body, err := c.Unbundle(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	ret, err := wire.ReadPushReply(body, c.Limits)
	if err != nil {
		t.Fatal(err)
	}
	return ret
}

package hg

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/lab"
	"github.com/vantage-fleet/vantage/lab/labtest"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
	"github.com/vantage-fleet/vantage/probes/hg/revlog"
	"github.com/vantage-fleet/vantage/probes/hg/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const canary = "canary-Zq81-secret"

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

// newServer serves a small repository made by the real hg.
func newServer(t testing.TB, extraConfig ...string) *lab.HgServe {
	t.Helper()
	labtest.NeedBinary(t, "hg", "apt-get install -y mercurial")
	dir := t.TempDir()
	repo := filepath.Join(dir, "scratch")
	hgRun(t, dir, "init", repo)
	hgRun(t, repo, "debugbuilddag", "--mergeable-file", "--new-file", "+8")
	s, err := lab.StartHgServe(context.Background(), lab.HgServeOptions{Repo: repo, Config: extraConfig})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// journeyConfig loads a hg journey through the real config loader.
func journeyConfig(t testing.TB, url, extra string) *config.Journey {
	t.Helper()
	src := fmt.Sprintf(`
[agent]
name = "a1"
region = "eu"
[[journey]]
name = "hg-scratch"
kind = "hg"
schedule = "@every 1m"
timeout = "20s"
[journey.hg]
url = %q
verify_interval = "50ms"
%s
`, url, extra)
	if !strings.Contains(extra, "verify_timeout") {
		src += "verify_timeout = \"2s\"\n"
	}
	c, err := config.LoadBytes("test.toml", []byte(src), func(k string) (string, bool) {
		if k == "HG_PASSWORD" {
			return canary, true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	return &c.Journey[0]
}

type agent struct {
	jc      *config.Journey
	j       *Journey
	dataDir string
	runner  *probes.Runner
	runs    int
}

func newAgent(t testing.TB, name string, jc *config.Journey) *agent {
	t.Helper()
	dataDir := t.TempDir()
	pj, err := New(jc, probes.Env{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	return &agent{jc: jc, j: pj.(*Journey), dataDir: dataDir,
		runner: &probes.Runner{Agent: name, Region: "eu", Redact: report.NewRedactor(canary)}}
}

func (a *agent) run(t testing.TB) report.Result {
	t.Helper()
	a.runs++
	res := a.runner.Execute(context.Background(), a.j, probes.Spec{Journey: a.jc,
		Slot: time.Unix(1700000000+int64(a.runs)*60, 0), Trigger: report.TriggerManual})
	b, _ := json.Marshal(res)
	if bytes.Contains(b, []byte(canary)) {
		t.Fatalf("the canary secret reached the result: %s", b)
	}
	return res
}

func stepNames(r report.Result) string {
	var s []string
	for _, st := range r.Steps {
		s = append(s, st.Name)
	}
	return strings.Join(s, ",")
}

func stepAttr(r report.Result, step, key string) string {
	for _, st := range r.Steps {
		if st.Name == step {
			for _, a := range st.Attrs {
				if string(a.Key) == key {
					return a.Value.Emit()
				}
			}
		}
	}
	return ""
}

func mustPass(t testing.TB, r report.Result) {
	t.Helper()
	if r.Status != report.StatusPass {
		t.Fatalf("run %s: %s/%s: %s (steps %s)", r.ID, r.Status, r.ErrorType, r.Error, stepNames(r))
	}
}

func TestHg_NativePush_ServerVerifiesAndLogsTheChangeset(t *testing.T) {
	s := newServer(t)
	a := newAgent(t, "a1", journeyConfig(t, s.URL, "push = true\nuser = \"probe\"\npassword = \"env:HG_PASSWORD\""))
	res := a.run(t)
	mustPass(t, res)
	if got := stepNames(res); got != "capabilities,heads,clone,push,verify" {
		t.Fatalf("steps = %s", got)
	}
	node := stepAttr(res, "push", "vcs.ref.head.revision")
	hgRun(t, s.Repo, "verify", "-q")
	log := hgRun(t, s.Repo, "log", "-r", "tip", "-T", "{node} {desc}")
	if log != node+" vantage probe run "+res.ID {
		t.Fatalf("hg log tip = %q, want node %s for run %s", log, node, res.ID)
	}
	if got := hgRun(t, s.Repo, "cat", "-r", "tip", ".vantage/probe"); !strings.Contains(got, res.ID) {
		t.Fatalf("probe file = %q", got)
	}

	// The next run pulls (nothing new: its own push is cached) and pushes again.
	res = a.run(t)
	mustPass(t, res)
	if got := stepNames(res); got != "capabilities,heads,pull,push,verify" {
		t.Fatalf("second run steps = %s", got)
	}
	if got := stepAttr(res, "pull", "vantage.hg.changesets"); got != "0" {
		t.Fatalf("second run pulled %s changesets, want 0", got)
	}
	hgRun(t, s.Repo, "verify", "-q")
	if n := strings.Count(hgRun(t, s.Repo, "log", "-T", "x"), "x"); n != 10 {
		t.Fatalf("server has %d changesets, want 8 + 2 pushed", n)
	}
}

func TestHg_PullAfterOtherAgentsPush_FetchesOnlyTheirChangesets(t *testing.T) {
	s := newServer(t)
	jc := journeyConfig(t, s.URL, "push = true")
	a, b := newAgent(t, "a1", jc), newAgent(t, "a2", jc)
	mustPass(t, a.run(t))
	for i := 0; i < 3; i++ {
		mustPass(t, b.run(t))
	}
	res := a.run(t)
	mustPass(t, res)
	if got := stepAttr(res, "pull", "vantage.hg.changesets"); got != "3" {
		t.Fatalf("pull fetched %s changesets, want the 3 pushed by the other agent", got)
	}
	hgRun(t, s.Repo, "verify", "-q")
}

// raceBarrier returns a beforePush hook that holds each agent's attempt
// number attempt until want agents have reached it: they have all read the
// same heads and built their changesets, so their pushes race on the server.
// Other attempts go through at once.
func raceBarrier(want map[int]int) func(context.Context, int) {
	var mu sync.Mutex
	arrived := map[int]int{}
	release := map[int]chan struct{}{}
	for a := range want {
		release[a] = make(chan struct{})
	}
	return func(ctx context.Context, attempt int) {
		ch, ok := release[attempt]
		if !ok {
			return
		}
		mu.Lock()
		if arrived[attempt]++; arrived[attempt] == want[attempt] {
			close(ch)
		}
		mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done(): // another agent failed before pushing
		}
	}
}

// runAtOnce runs every agent concurrently and returns their results.
func runAtOnce(t *testing.T, agents ...*agent) []report.Result {
	var wg sync.WaitGroup
	results := make([]report.Result, len(agents))
	for i, ag := range agents {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = ag.run(t) }()
	}
	wg.Wait()
	return results
}

func TestHg_TwoAgentsPushAtOnce_OneSucceedsOneIsPushRejected(t *testing.T) {
	s := newServer(t)
	jc := journeyConfig(t, s.URL, "push = true\npush_retries = 0")
	a, b := newAgent(t, "a1", jc), newAgent(t, "a2", jc)
	barrier := raceBarrier(map[int]int{1: 2})
	a.j.beforePush, b.j.beforePush = barrier, barrier
	pass, rejected := 0, 0
	for _, r := range runAtOnce(t, a, b) {
		switch {
		case r.Status == report.StatusPass:
			pass++
		case r.Status == report.StatusFail && r.ErrorType == report.ErrPushRejected:
			rejected++
			if !strings.Contains(r.Error, "push raced") {
				t.Errorf("rejected for another reason than the race: %s", r.Error)
			}
		default:
			t.Errorf("unexpected result %s/%s: %s", r.Status, r.ErrorType, r.Error)
		}
		if got := stepAttr(r, "push", "vantage.hg.push.attempts"); got != "1" {
			t.Errorf("push attempts = %q with push_retries = 0, want 1", got)
		}
	}
	if pass != 1 || rejected != 1 {
		t.Fatalf("%d passed and %d were rejected, want 1 and 1", pass, rejected)
	}
	hgRun(t, s.Repo, "verify", "-q")
	if heads := strings.Fields(hgRun(t, s.Repo, "heads", "-T", "{node} ")); len(heads) != 1 {
		t.Fatalf("server has %d heads after the race, want 1", len(heads))
	}
	// The rejected agent recovers on its next run.
	a.j.beforePush, b.j.beforePush = nil, nil
	mustPass(t, a.run(t))
	mustPass(t, b.run(t))
}

func TestHg_ThreeAgentsPushAtOnce_RetriesLetAllPass(t *testing.T) {
	for _, driver := range []string{"native", "cli"} {
		t.Run(driver, func(t *testing.T) {
			s := newServer(t)
			jc := journeyConfig(t, s.URL, fmt.Sprintf("push = true\ndriver = %q", driver))
			agents := []*agent{newAgent(t, "a1", jc), newAgent(t, "a2", jc), newAgent(t, "a3", jc)}
			// All three race on their first push; the two losers pull, rebuild
			// and race again; the last loser pulls and pushes alone.
			barrier := raceBarrier(map[int]int{1: 3, 2: 2})
			for _, ag := range agents {
				ag.j.beforePush = barrier
			}
			attempts := map[string]bool{}
			var ids []string
			for _, r := range runAtOnce(t, agents...) {
				mustPass(t, r)
				attempts[stepAttr(r, "push", "vantage.hg.push.attempts")] = true
				ids = append(ids, r.ID)
			}
			if !attempts["1"] || !attempts["2"] || !attempts["3"] {
				t.Fatalf("push attempts = %v, want one agent each at 1, 2 and 3", attempts)
			}
			hgRun(t, s.Repo, "verify", "-q")
			if heads := strings.Fields(hgRun(t, s.Repo, "heads", "-T", "{node} ")); len(heads) != 1 {
				t.Fatalf("server has %d heads, want 1", len(heads))
			}
			log := hgRun(t, s.Repo, "log", "-l", "3", "-T", "{desc}\n")
			for _, id := range ids {
				if !strings.Contains(log, "vantage probe run "+id+"\n") {
					t.Fatalf("the last 3 changesets lack run %s:\n%s", id, log)
				}
			}
		})
	}
}

func TestHg_RaceStillLostAfterTheRetries_IsPushRejected(t *testing.T) {
	s := newServer(t)
	jc := journeyConfig(t, s.URL, "push = true\npush_retries = 1")
	agents := []*agent{newAgent(t, "a1", jc), newAgent(t, "a2", jc), newAgent(t, "a3", jc)}
	// Three agents race, then the two losers race again: with one retry,
	// the second loser has none left.
	barrier := raceBarrier(map[int]int{1: 3, 2: 2})
	for _, ag := range agents {
		ag.j.beforePush = barrier
	}
	var got []string
	for _, r := range runAtOnce(t, agents...) {
		got = append(got, fmt.Sprintf("%s/%s@%s", r.Status, r.ErrorType, stepAttr(r, "push", "vantage.hg.push.attempts")))
	}
	sort.Strings(got)
	if want := "fail/push_rejected@2 pass/@1 pass/@2"; strings.Join(got, " ") != want {
		t.Fatalf("results = %v, want %s", got, want)
	}
	hgRun(t, s.Repo, "verify", "-q")
	if n := strings.Count(hgRun(t, s.Repo, "log", "-T", "x"), "x"); n != 10 {
		t.Fatalf("server has %d changesets, want 8 + 2 pushed", n)
	}
}

func TestHg_PushNotAuthorized_IsAuth(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config []string
	}{
		{"401 push not authorized", []string{"web.allow-push="}},
		{"403 ssl required", []string{"web.push_ssl=True"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.config...)
			res := newAgent(t, "a1", journeyConfig(t, s.URL, "push = true")).run(t)
			if res.Status != report.StatusFail || res.ErrorType != report.ErrAuth {
				t.Fatalf("got %s/%s: %s", res.Status, res.ErrorType, res.Error)
			}
			hgRun(t, s.Repo, "verify", "-q")
		})
	}
}

func TestHg_HTTPS_TrustsCAFileAndRejectsUnknownCertificates(t *testing.T) {
	s := newServer(t)
	front := httptest.NewTLSServer(s.Handler())
	defer front.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	res := newAgent(t, "a1", journeyConfig(t, front.URL+"/", fmt.Sprintf("push = true\nca_file = %q", ca))).run(t)
	mustPass(t, res)
	res = newAgent(t, "a1", journeyConfig(t, front.URL+"/", "")).run(t)
	if res.Status != report.StatusFail || res.ErrorType != report.ErrTLS {
		t.Fatalf("without ca_file: got %s/%s: %s", res.Status, res.ErrorType, res.Error)
	}
}

func TestHg_PushRefusedByAServerHook_IsPushRejectedAndNotRetried(t *testing.T) {
	for _, driver := range []string{"native", "cli"} {
		t.Run(driver, func(t *testing.T) {
			s := newServer(t, "hooks.pretxnchangegroup.refuse=echo refused by policy; exit 1")
			var unbundles atomic.Int32
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("cmd") == "unbundle" {
					unbundles.Add(1)
				}
				s.Handler().ServeHTTP(w, r)
			}))
			defer front.Close()
			res := newAgent(t, "a1", journeyConfig(t, front.URL+"/", fmt.Sprintf("push = true\ndriver = %q", driver))).run(t)
			if res.Status != report.StatusFail || res.ErrorType != report.ErrPushRejected {
				t.Fatalf("got %s/%s: %s", res.Status, res.ErrorType, res.Error)
			}
			if got := stepAttr(res, "push", "vantage.hg.push.attempts"); got != "1" || unbundles.Load() != 1 {
				t.Fatalf("push attempts = %q, server saw %d unbundle requests: a refused push was retried", got, unbundles.Load())
			}
			hgRun(t, s.Repo, "verify", "-q")
			if n := strings.Count(hgRun(t, s.Repo, "log", "-T", "x"), "x"); n != 8 {
				t.Fatalf("server has %d changesets after a refused push", n)
			}
		})
	}
}

func TestHg_PushToAnEmptyRepository_CreatesItsFirstChangeset(t *testing.T) {
	labtest.NeedBinary(t, "hg", "apt-get install -y mercurial")
	s, err := lab.StartHgServe(context.Background(), lab.HgServeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res := newAgent(t, "a1", journeyConfig(t, s.URL, "push = true")).run(t)
	mustPass(t, res)
	hgRun(t, s.Repo, "verify", "-q")
	if got := hgRun(t, s.Repo, "log", "-T", "{rev} {files}"); got != "0 .vantage/probe" {
		t.Fatalf("hg log = %q", got)
	}
}

func TestHg_RepositoryReplacedAtTheSameURL_ClonesAfresh(t *testing.T) {
	old, fresh := newServer(t), newServer(t)
	hgRun(t, fresh.Repo, "update", "-q", "tip")
	os.WriteFile(filepath.Join(fresh.Repo, "other"), []byte("other history\n"), 0o644)
	hgRun(t, fresh.Repo, "commit", "-qAm", "different history")
	var current atomic.Pointer[lab.HgServe]
	current.Store(old)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		current.Load().Handler().ServeHTTP(w, r)
	}))
	defer front.Close()
	a := newAgent(t, "a1", journeyConfig(t, front.URL+"/", "push = true\nmax_changesets = 12"))
	mustPass(t, a.run(t))
	current.Store(fresh) // the operator rotates the repository behind the same URL
	res := a.run(t)
	mustPass(t, res)
	if stepAttr(res, "pull", "vantage.hg.recloned") != "true" || stepAttr(res, "pull", "vantage.hg.changesets") != "9" {
		t.Fatalf("after rotation: recloned=%q changesets=%q", stepAttr(res, "pull", "vantage.hg.recloned"), stepAttr(res, "pull", "vantage.hg.changesets"))
	}
	hgRun(t, fresh.Repo, "verify", "-q")
	if n := strings.Count(hgRun(t, fresh.Repo, "log", "-T", "x"), "x"); n != 10 {
		t.Fatalf("fresh repository has %d changesets, want 9 + 1 pushed", n)
	}
}

func TestHg_RepositoryPastMaxChangesets_IsProbeErrorAskingToRotate(t *testing.T) {
	s := newServer(t)
	res := newAgent(t, "a1", journeyConfig(t, s.URL, "push = true\nmax_changesets = 5")).run(t)
	if res.Status != report.StatusProbeError || !strings.Contains(res.Error, "rotate") {
		t.Fatalf("got %s/%s: %s", res.Status, res.ErrorType, res.Error)
	}
	if n := strings.Count(hgRun(t, s.Repo, "log", "-T", "x"), "x"); n != 8 {
		t.Fatalf("server has %d changesets: the journey pushed despite the limit", n)
	}
}

func TestHg_ReplicaNeverShowsThePush_IsStaleRead(t *testing.T) {
	s := newServer(t)
	// A lagging replica: lookups never find the new changeset.
	proxy := s.Handler()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("cmd") == "lookup" {
			w.Header().Set("Content-Type", "application/mercurial-0.1")
			fmt.Fprint(w, "0 unknown revision\n")
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	res := newAgent(t, "a1", journeyConfig(t, front.URL+"/", "push = true\nverify_timeout = \"300ms\"")).run(t)
	if res.Status != report.StatusFail || res.ErrorType != report.ErrStaleRead {
		t.Fatalf("got %s/%s: %s", res.Status, res.ErrorType, res.Error)
	}
}

// fakeServer answers capabilities and heads like hg serve, and getbundle
// with the given (uncompressed) body.
func fakeServer(t testing.TB, heads string, bundle []byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/mercurial-0.1")
		switch r.URL.Query().Get("cmd") {
		case "capabilities":
			fmt.Fprint(w, "batch getbundle httpheader=1024 known lookup unbundle=HG10GZ,HG10BZ,HG10UN bundle2=HG20%0Achangegroup%3D01%2C02")
		case "heads":
			fmt.Fprint(w, heads+"\n")
		case "getbundle":
			z := zlib.NewWriter(w)
			z.Write(bundle)
			z.Close()
		default:
			http.Error(w, "no", http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestHg_HostileBundles_AreProtocolErrors(t *testing.T) {
	text := []byte(strings.Repeat("0", 40) + "\nuser\n0 0\n\ndesc")
	good := revlog.Hash(revlog.Null, revlog.Null, text)
	bundle := func(node revlog.Node, data []byte) []byte {
		var cg wire.CGWriter
		cg.Delta(wire.Delta{Node: node, LinkNode: node, Data: data})
		cg.End()
		cg.End()
		cg.End()
		var b bytes.Buffer
		w := wire.NewBundle2Writer(&b)
		w.AddPart("changegroup", true, []wire.Param{{Key: "version", Value: "02"}}, nil, cg.Bytes())
		w.Close()
		return b.Bytes()
	}
	var wrong revlog.Node
	wrong[0] = 1
	huge := append([]byte("HG20\x00\x00\x00\x00\x7f\xff\xff\xff"), make([]byte, 64)...)
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"hash mismatch", bundle(wrong, revlog.FullDelta(text))},
		{"delta past its base", bundle(good, []byte("\x00\x00\x00\x05\x00\x00\x00\x09\x00\x00\x00\x00"))},
		{"not a bundle", []byte("<html>hello</html>")},
		{"huge part header", huge},
		{"truncated", bundle(good, revlog.FullDelta(text))[:60]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakeServer(t, good.Hex(), tc.body)
			res := newAgent(t, "a1", journeyConfig(t, srv.URL+"/", "")).run(t)
			if res.Status != report.StatusFail || res.ErrorType != report.ErrProtocol {
				t.Fatalf("got %s/%s: %s", res.Status, res.ErrorType, res.Error)
			}
		})
	}
	// The good bundle passes, so the cases above fail for their flaw alone.
	srv := fakeServer(t, good.Hex(), bundle(good, revlog.FullDelta(text)))
	mustPass(t, newAgent(t, "a1", journeyConfig(t, srv.URL+"/", "")).run(t))
}

func TestHg_SilentServer_IsTimeoutWithinTheDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	jc := journeyConfig(t, srv.URL+"/", "")
	jc.Timeout = config.Dur(400 * time.Millisecond)
	res := newAgent(t, "a1", jc).run(t)
	if res.Status != report.StatusFail || res.ErrorType != report.ErrTimeout {
		t.Fatalf("got %s/%s: %s", res.Status, res.ErrorType, res.Error)
	}
	if res.Duration > 5*time.Second {
		t.Fatalf("the run took %s: the deadline did not hold", res.Duration)
	}
}

func TestHg_AuthFailureEchoingThePassword_IsAuthAndRedacted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pw, _ := r.BasicAuth()
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, "0\nbad password %s\n", pw)
	}))
	defer srv.Close()
	// run() fails the test if the canary reaches the result.
	res := newAgent(t, "a1", journeyConfig(t, srv.URL+"/", "user = \"probe\"\npassword = \"env:HG_PASSWORD\"")).run(t)
	if res.Status != report.StatusFail || res.ErrorType != report.ErrAuth {
		t.Fatalf("got %s/%s: %s", res.Status, res.ErrorType, res.Error)
	}
}

func TestHg_CLIDriverPush_ServerLogsTheChangeset(t *testing.T) {
	s := newServer(t)
	a := newAgent(t, "a1", journeyConfig(t, s.URL, "push = true\ndriver = \"cli\"\nuser = \"probe\"\npassword = \"env:HG_PASSWORD\""))
	for i, want := range []string{"clone,push,verify", "pull,push,verify"} {
		res := a.run(t)
		mustPass(t, res)
		if got := stepNames(res); got != want {
			t.Fatalf("run %d steps = %s, want %s", i, got, want)
		}
		if log := hgRun(t, s.Repo, "log", "-r", "tip", "-T", "{desc}"); log != "vantage probe run "+res.ID {
			t.Fatalf("hg log tip = %q", log)
		}
	}
	hgRun(t, s.Repo, "verify", "-q")
}

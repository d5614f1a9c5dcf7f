package git

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/lab"
	"github.com/vantage-fleet/vantage/lab/labtest"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
)

const (
	repo        = "ws/app.git"
	canaryPass  = "canary-pass-5a7f3e"
	canaryToken = "canary-api-9c1d04"
	prefix      = "vantage-probe/"
)

func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func startProduct(t *testing.T) *lab.GitProduct {
	t.Helper()
	labtest.NeedBinary(t, "git", "apt-get install -y git")
	p, err := lab.StartGitProduct(t.TempDir(), lab.GitProductOptions{Repos: []string{repo},
		User: "probe", Password: canaryPass, APIToken: canaryToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// harness runs journeys built from TOML, the way an agent would.
type harness struct {
	t    *testing.T
	p    *lab.GitProduct
	logs *labtest.Buffer
	key  string
}

func newHarness(t *testing.T) *harness {
	noLeaks(t)
	p := startProduct(t)
	key := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(key, p.ClientKeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, p: p, logs: &labtest.Buffer{}, key: key}
}

func (h *harness) httpsBlock(extra string) string {
	return fmt.Sprintf(`url = %q
username = "probe"
password = "env:GIT_PASSWORD"
ca_file = %q
`, h.p.HTTPSURL(repo), h.p.CAFile) + extra
}

func (h *harness) sshBlock(extra string) string {
	return fmt.Sprintf(`url = %q
ssh_key_file = %q
known_hosts = %q
`, h.p.SSH.URL(repo), h.key, h.p.KnownHosts) + extra
}

// otherKey writes an SSH key the server does not authorise.
func (h *harness) otherKey() string {
	_, pemBytes, err := lab.NewSSHKey("")
	if err != nil {
		h.t.Fatal(err)
	}
	path := filepath.Join(h.t.TempDir(), "other")
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		h.t.Fatal(err)
	}
	return path
}

// emptyKnownHosts writes a known_hosts file that knows another host only.
func (h *harness) emptyKnownHosts() string {
	path := filepath.Join(h.t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte("[127.0.0.1]:1 "+h.p.HostKeyLine), 0o600); err != nil {
		h.t.Fatal(err)
	}
	return path
}

func (h *harness) apiBlock() string {
	return fmt.Sprintf(`[journey.git.api]
type = "bitbucket-cloud"
base_url = %q
token = "env:API_TOKEN"
workspace = "ws"
repo = "app"
`, h.p.API.URL)
}

// journey loads a config whose [journey.git] table is body.
func (h *harness) journey(timeout, body string) (*config.Journey, *journey) {
	return h.journeyAt(timeout, body, 0, time.Now)
}

// journeyAt is journey with a background sweeper every `every` (0: none)
// and a clock.
func (h *harness) journeyAt(timeout, body string, every time.Duration, now func() time.Time) (*config.Journey, *journey) {
	h.t.Helper()
	src := fmt.Sprintf(`[agent]
name = "agent-1"
region = "eu"
data_dir = %q
[[journey]]
name = "git-j"
kind = "git"
timeout = %q
[journey.git]
%s`, h.t.TempDir(), timeout, body)
	cfg, err := loadConfig(src, map[string]string{"GIT_PASSWORD": canaryPass, "API_TOKEN": canaryToken})
	if err != nil {
		h.t.Fatalf("config: %v", err)
	}
	jc := &cfg.Journey[0]
	j, err := newJourney(jc, probes.Env{Agent: cfg.Agent, Log: slog.New(slog.NewTextHandler(h.logs, nil)),
		DataDir: cfg.Agent.DataDir}, every, now)
	if err != nil {
		h.t.Fatalf("new journey: %v", err)
	}
	h.t.Cleanup(func() { j.Close() })
	return jc, j
}

func (h *harness) run(jc *config.Journey, j probes.Journey, slot time.Time) report.Result {
	r := &probes.Runner{Agent: "agent-1", Region: "eu", Log: slog.New(slog.NewTextHandler(h.logs, nil))}
	res := r.Execute(context.Background(), j, probes.Spec{Journey: jc, Slot: slot, Trigger: report.TriggerSchedule})
	h.assertNoCanary(res)
	return res
}

// assertNoCanary checks that no secret reached the Result, its JSON or the logs.
func (h *harness) assertNoCanary(res report.Result) {
	h.t.Helper()
	js, err := json.Marshal(res)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, canary := range []string{canaryPass, canaryToken} {
		for what, s := range map[string]string{"result": fmt.Sprintf("%+v", res), "json": string(js), "logs": h.logs.String()} {
			if strings.Contains(s, canary) {
				h.t.Fatalf("secret found in %s: %s", what, s)
			}
		}
	}
}

func (h *harness) serverRefs() map[string]string {
	refs, err := h.p.Repos.Refs(context.Background(), repo)
	if err != nil {
		h.t.Fatal(err)
	}
	return refs
}

func step(t *testing.T, res report.Result, name string) report.Step {
	t.Helper()
	for _, s := range res.Steps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no step %q in %+v", name, stepNames(res))
	return report.Step{}
}

func stepNames(res report.Result) []string {
	var n []string
	for _, s := range res.Steps {
		n = append(n, s.Name+"="+string(s.Status)+"/"+string(s.ErrorType))
	}
	return n
}

func attr(s report.Step, key string) (any, bool) {
	for _, a := range s.Attrs {
		if string(a.Key) == key {
			return a.Value.AsInterface(), true
		}
	}
	return nil, false
}

func wantClass(t *testing.T, res report.Result, typ report.ErrorType) {
	t.Helper()
	if res.Status != report.StatusFail || res.ErrorType != typ {
		t.Fatalf("got %s/%s (%s), want fail/%s; steps %v", res.Status, res.ErrorType, res.Error, typ, stepNames(res))
	}
}

func TestGit_FullJourneyOverHTTPSAndSSH_PushesVerifiesAndCleansUp(t *testing.T) {
	h := newHarness(t)
	pushed := map[string]string{}
	var mu sync.Mutex
	h.p.Repos.OnPush(func(_, ref, _, newSHA string) {
		if newSHA != lab.ZeroSHA {
			mu.Lock()
			pushed[ref] = newSHA
			mu.Unlock()
		}
	})
	for i, block := range []string{h.httpsBlock(""), h.sshBlock("")} {
		body := block + "push = true\nbranch_prefix = \"" + prefix + "\"\n" + h.apiBlock()
		jc, j := h.journey("20s", body)
		slot := time.Unix(1_800_000_000+int64(i)*60, 0)
		res := h.run(jc, j, slot)
		if res.Status != report.StatusPass {
			t.Fatalf("journey %d: %s/%s %s; steps %v", i, res.Status, res.ErrorType, res.Error, stepNames(res))
		}
		want := []string{"advertise", "clone", "push", "verify", "cleanup"}
		if len(res.Steps) != len(want) {
			t.Fatalf("steps %v, want %v", stepNames(res), want)
		}
		for k, s := range res.Steps {
			if s.Name != want[k] || s.Status != report.StatusPass {
				t.Fatalf("step %d: %+v", k, s)
			}
		}
		if n, _ := attr(step(t, res, "advertise"), "vantage.git.refs"); n.(int64) < 1 {
			t.Fatalf("advertise saw %v refs", n)
		}
		cl := step(t, res, "clone")
		if b, _ := attr(cl, "vantage.git.bytes"); b.(int64) <= 0 {
			t.Fatalf("clone bytes %v", b)
		}
		if o, _ := attr(cl, "vantage.git.objects"); o.(int64) < 3 {
			t.Fatalf("clone objects %v (commit, tree, blob expected)", o)
		}
		if _, ok := attr(step(t, res, "verify"), "vantage.git.visible_after_ms"); !ok {
			t.Fatalf("verify has no visible_after_ms")
		}
		branch := branchName(prefix, "eu", "agent-1", report.TriggerSchedule, slot)
		mu.Lock()
		sha := pushed["refs/heads/"+branch]
		mu.Unlock()
		if sha == "" {
			t.Fatalf("server saw no push to %s (saw %v)", branch, pushed)
		}
		// The git CLI reads what the server holds: the pushed commit carries the run ID.
		out, err := exec.Command("git", "-C", filepath.Join(h.p.Repos.PrimaryRoot(), repo), "log", "-1", "--format=%B", sha).Output()
		if err != nil || !strings.Contains(string(out), res.ID) {
			t.Fatalf("commit %s on server: %q %v; want run ID %s", sha, out, err, res.ID)
		}
		out, err = exec.Command("git", "-C", filepath.Join(h.p.Repos.PrimaryRoot(), repo), "for-each-ref", "refs/heads/"+prefix).Output()
		if err != nil || len(bytes.TrimSpace(out)) != 0 {
			t.Fatalf("probe branches left after cleanup: %q %v", out, err)
		}
	}
}

func TestGit_ReadOnlyJourney_AdvertisesAndClonesOnDisk(t *testing.T) {
	h := newHarness(t)
	jc, j := h.journey("10s", h.sshBlock("storage = \"disk\"\n"))
	res := h.run(jc, j, time.Unix(1_800_000_000, 0))
	if res.Status != report.StatusPass || len(res.Steps) != 2 {
		t.Fatalf("got %s %s; steps %v", res.Status, res.Error, stepNames(res))
	}
	left, _ := os.ReadDir(j.diskDir)
	if len(left) != 0 {
		t.Fatalf("disk clone not removed: %v", left)
	}
	if before := h.serverRefs(); len(before) != 1 {
		t.Fatalf("read-only journey changed refs: %v", before)
	}
}

func TestGit_ReplicaLagShorterThanVerifyTimeout_PassesWithVisibleAfterAboutTheLag(t *testing.T) {
	h := newHarness(t)
	const lag = 400 * time.Millisecond
	h.p.Faults.Set(lab.GitFault{ReplicaLag: lag})
	body := h.httpsBlock("push = true\nbranch_prefix = \""+prefix+"\"\nverify_timeout = \"5s\"\nverify_interval = \"20ms\"\n") + h.apiBlock()
	jc, j := h.journey("20s", body)
	res := h.run(jc, j, time.Unix(1_800_000_000, 0))
	if res.Status != report.StatusPass {
		t.Fatalf("got %s/%s %s; steps %v", res.Status, res.ErrorType, res.Error, stepNames(res))
	}
	v, _ := attr(step(t, res, "verify"), "vantage.git.visible_after_ms")
	if ms := v.(float64); ms < float64(lag.Milliseconds()) || ms >= 5000 {
		t.Fatalf("visible_after_ms = %v, want at least the lag (%v) and under verify_timeout", ms, lag)
	}
}

func TestGit_ReplicaLagLongerThanVerifyTimeout_IsStaleRead(t *testing.T) {
	h := newHarness(t)
	h.p.Faults.Set(lab.GitFault{ReplicaLag: 3 * time.Second})
	body := h.sshBlock("push = true\nbranch_prefix = \"" + prefix + "\"\nverify_timeout = \"300ms\"\nverify_interval = \"20ms\"\n")
	jc, j := h.journey("20s", body)
	res := h.run(jc, j, time.Unix(1_800_000_000, 0))
	wantClass(t, res, report.ErrStaleRead)
	if s := step(t, res, "cleanup"); s.Status != report.StatusPass {
		t.Fatalf("cleanup after stale read: %+v", s)
	}
	for ref := range h.serverRefs() {
		if strings.HasPrefix(ref, "refs/heads/"+prefix) {
			t.Fatalf("branch %s left on the primary", ref)
		}
	}
}

func TestGit_ErrorClasses(t *testing.T) {
	h := newHarness(t)
	push := "push = true\nbranch_prefix = \"" + prefix + "\"\n"
	cases := []struct {
		name   string
		fault  lab.GitFault
		body   string
		want   report.ErrorType
		failAt string
	}{
		{"upload-pack 503", lab.GitFault{UploadPackStatus: 503}, h.httpsBlock(""), report.ErrHTTP5xx, "advertise"},
		{"receive-pack 503", lab.GitFault{ReceivePackStatus: 503}, h.httpsBlock(push), report.ErrHTTP5xx, "push"},
		{"advertisement slower than the deadline", lab.GitFault{AdvertisementDelay: 10 * time.Second}, h.httpsBlock(""), report.ErrTimeout, "advertise"},
		{"stall mid-pack over https", lab.GitFault{StallAfterBytes: 200}, h.httpsBlock(""), report.ErrTimeout, "clone"},
		{"stall mid-pack over ssh", lab.GitFault{StallAfterBytes: 200}, h.sshBlock(""), report.ErrTimeout, "clone"},
		{"wrong password", lab.GitFault{}, strings.Replace(h.httpsBlock(""), `username = "probe"`, `username = "nobody"`, 1), report.ErrAuth, "advertise"},
		{"untrusted certificate", lab.GitFault{}, strings.Replace(h.httpsBlock(""), "ca_file = \""+h.p.CAFile+"\"\n", "", 1), report.ErrTLS, "advertise"},
		{"receive-pack 403", lab.GitFault{ReceivePackStatus: 403}, h.httpsBlock(push), report.ErrAuth, "push"},
		{"ssh key not authorized", lab.GitFault{}, strings.Replace(h.sshBlock(""), h.key, h.otherKey(), 1), report.ErrAuth, "advertise"},
		{"ssh host key not in known_hosts", lab.GitFault{}, strings.Replace(h.sshBlock(""), h.p.KnownHosts, h.emptyKnownHosts(), 1), report.ErrTLS, "advertise"},
		{"dns", lab.GitFault{}, "url = \"https://no-such-host.invalid/ws/app.git\"\n", report.ErrDNS, "advertise"},
		{"connect", lab.GitFault{}, "url = \"https://127.0.0.1:1/ws/app.git\"\n", report.ErrConnect, "advertise"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.want == report.ErrDNS {
				needNXDOMAIN(t)
			}
			h.p.Faults.Set(c.fault)
			defer h.p.Faults.Set(lab.GitFault{})
			timeout := "5s"
			if c.want == report.ErrTimeout {
				timeout = "1s"
			}
			jc, j := h.journey(timeout, c.body)
			res := h.run(jc, j, time.Unix(1_800_000_000, 0))
			wantClass(t, res, c.want)
			if s := step(t, res, c.failAt); s.ErrorType != c.want {
				t.Fatalf("step %s: %+v", c.failAt, s)
			}
			if c.failAt == "push" {
				step(t, res, "cleanup") // attempted even though push failed
			}
		})
	}
}

func TestGit_HookDeclined_IsPushRejectedAndCleanupStillRuns(t *testing.T) {
	h := newHarness(t)
	hook := filepath.Join(h.p.Repos.PrimaryRoot(), repo, "hooks", "pre-receive")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\necho 'policy: no probes today' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	jc, j := h.journey("10s", h.sshBlock("push = true\nbranch_prefix = \""+prefix+"\"\n"))
	res := h.run(jc, j, time.Unix(1_800_000_000, 0))
	wantClass(t, res, report.ErrPushRejected)
	if s := step(t, res, "cleanup"); s.Status != report.StatusPass {
		t.Fatalf("cleanup: %+v", s)
	}
}

func TestGit_GarbageAdvertisement_IsProtocol(t *testing.T) {
	noLeaks(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
		fmt.Fprint(w, "this is not pkt-line")
	}))
	defer srv.Close()
	h := &harness{t: t, logs: &labtest.Buffer{}}
	jc, j := h.journey("2s", "url = \""+srv.URL+"/ws/app.git\"\n")
	res := h.run(jc, j, time.Unix(1_800_000_000, 0))
	wantClass(t, res, report.ErrProtocol)
}

func TestGit_SSHServerThatNeverSpeaks_IsTimeoutAtTheDeadline(t *testing.T) {
	h := newHarness(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	held := make(chan net.Conn, 4)
	conns.Add(1)
	go func() {
		defer conns.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	defer func() {
		ln.Close()
		conns.Wait()
		close(held)
		for c := range held {
			c.Close()
		}
	}()
	body := strings.Replace(h.sshBlock(""), h.p.SSH.Addr(), ln.Addr().String(), 1)
	jc, j := h.journey("500ms", strings.Replace(body, "known_hosts = \""+h.p.KnownHosts+"\"", "host_key = \""+strings.TrimSpace(h.p.HostKeyLine)+"\"", 1))
	res := h.run(jc, j, time.Unix(1_800_000_000, 0))
	wantClass(t, res, report.ErrTimeout)
}

func TestGit_Sweeper_DeletesOnlyOldProbeBranchesUnderThePrefix(t *testing.T) {
	h := newHarness(t)
	head := h.serverRefs()["refs/heads/main"]
	now := time.Unix(1_800_000_000, 0)
	branches := map[string]bool{ // name → expected to be swept
		prefix + "eu-agent_1-" + fmt.Sprint(now.Add(-72*time.Hour).Unix()): true,
		prefix + "us-agent_2-" + fmt.Sprint(now.Add(-48*time.Hour).Unix()): true,
		prefix + "ap-agent_3-" + fmt.Sprint(now.Add(-30*time.Hour).Unix()): false, // beyond sweep_max
		prefix + "eu-agent_1-" + fmt.Sprint(now.Add(-time.Hour).Unix()):    false, // young
		prefix + "handmade":                    false, // not a probe branch
		"feature-eu-agent-" + fmt.Sprint(1000): false, // outside the prefix
		"vantage-probe-eu-agent-1000":          false, // prefix without its slash
	}
	err := h.p.Repos.Write(context.Background(), repo, func(dir string) error {
		for b := range branches {
			if out, err := exec.Command("git", "-C", dir, "update-ref", "refs/heads/"+b, head).CombinedOutput(); err != nil {
				return fmt.Errorf("%v %s", err, out)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, j := h.journeyAt("10s", h.httpsBlock("push = true\nbranch_prefix = \""+prefix+"\"\nsweep_age = \"24h\"\nsweep_max = 2\n"),
		0, func() time.Time { return now })
	n, err := j.sweep(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("sweep deleted %d, err %v; want 2", n, err)
	}
	refs := h.serverRefs()
	for b, swept := range branches {
		if _, present := refs["refs/heads/"+b]; present == swept {
			t.Errorf("branch %s: present=%t, want swept=%t", b, present, swept)
		}
	}
	if refs["refs/heads/main"] != head {
		t.Fatalf("main moved")
	}
}

func TestBranchName_IsUnderPrefixAndParsesBack(t *testing.T) {
	slot := time.Unix(1_800_000_123, 0)
	b := branchName("p/", "eu west", "host:1/..x", report.TriggerSchedule, slot)
	if !strings.HasPrefix(b, "p/") || strings.Contains(b, "..") || strings.ContainsAny(b, " :") {
		t.Fatalf("unsafe branch name %q", b)
	}
	got, ok := probeBranchSlot("p/", b)
	if !ok || !got.Equal(slot) {
		t.Fatalf("parsed %v %v from %q", got, ok, b)
	}
	if _, ok := probeBranchSlot("p/", "q/eu-a-1800000123"); ok {
		t.Fatalf("a branch outside the prefix parsed as a probe branch")
	}
}

// TestBranchName_ConfirmRunOfTheSameSlotUsesAnotherBranch: an agent may
// run its scheduled slot and, at the same time, confirm another region's
// failure for that slot; the two pushes must not race for one ref.
func TestBranchName_ConfirmRunOfTheSameSlotUsesAnotherBranch(t *testing.T) {
	slot := time.Unix(1_800_000_123, 0)
	sched := branchName("p/", "us", "us-1", report.TriggerSchedule, slot)
	conf := branchName("p/", "us", "us-1", report.TriggerConfirm, slot)
	if sched == conf {
		t.Fatalf("scheduled and confirm runs share %q", sched)
	}
	if sched != "p/us-us-1-1800000123" {
		t.Fatalf("scheduled branch %q changed its form (the sweeper of older agents parses it)", sched)
	}
	for _, b := range []string{sched, conf} {
		if got, ok := probeBranchSlot("p/", b); !ok || !got.Equal(slot) {
			t.Fatalf("%q parsed as %v %v", b, got, ok)
		}
	}
}

func TestGit_SweeperRunsAtStart(t *testing.T) {
	h := newHarness(t)
	now := time.Unix(1_800_000_000, 0)
	old := prefix + "eu-agent_1-" + fmt.Sprint(now.Add(-48*time.Hour).Unix())
	head := h.serverRefs()["refs/heads/main"]
	if err := h.p.Repos.Write(context.Background(), repo, func(dir string) error {
		return exec.Command("git", "-C", dir, "update-ref", "refs/heads/"+old, head).Run()
	}); err != nil {
		t.Fatal(err)
	}
	_, j := h.journeyAt("10s", h.sshBlock("push = true\nbranch_prefix = \""+prefix+"\"\n"), time.Hour, func() time.Time { return now })
	for i := 0; i < 200; i++ { // bounded: 10 s at most
		if _, ok := h.serverRefs()["refs/heads/"+old]; !ok {
			j.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("old probe branch %s not swept at start", old)
}

// loadConfig loads a prober config from src, resolving env: secrets from env.
func loadConfig(src string, env map[string]string) (*config.Config, error) {
	return config.LoadBytes("test.toml", []byte(src), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

func poolOf(tb testing.TB, caFile string) *x509.CertPool {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return pool
}

func TestGit_NonFastForward_IsPushRejected(t *testing.T) {
	h := newHarness(t)
	dir := filepath.Join(h.p.Repos.PrimaryRoot(), repo)
	if out, err := exec.Command("git", "-C", dir, "config", "receive.denyNonFastForwards", "true").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	jc, j := h.journey("10s", h.httpsBlock("push = true\nbranch_prefix = \""+prefix+"\"\nverify = false\n"))
	slot := time.Unix(1_800_000_000, 0)
	branch := branchName(prefix, "eu", "agent-1", report.TriggerSchedule, slot)
	// Someone else's commit already sits on the probe branch: ours does not descend from it.
	if err := h.p.Repos.Write(context.Background(), repo, func(dir string) error {
		tree, err := exec.Command("git", "-C", dir, "rev-parse", "main^{tree}").Output()
		if err != nil {
			return err
		}
		c, err := exec.Command("git", "-C", dir, "-c", "user.name=x", "-c", "user.email=x@x", "commit-tree", "-m", "other", strings.TrimSpace(string(tree))).Output()
		if err != nil {
			return err
		}
		return exec.Command("git", "-C", dir, "update-ref", "refs/heads/"+branch, strings.TrimSpace(string(c))).Run()
	}); err != nil {
		t.Fatal(err)
	}
	res := h.run(jc, j, slot)
	wantClass(t, res, report.ErrPushRejected)
	step(t, res, "cleanup")
}

func TestGit_InsecureIgnoreHostKey_WarnsAtStartAndStillWorks(t *testing.T) {
	h := newHarness(t)
	body := strings.Replace(h.sshBlock(""), "known_hosts = \""+h.p.KnownHosts+"\"", "insecure_ignore_host_key = true", 1)
	jc, j := h.journey("10s", body)
	if !strings.Contains(h.logs.String(), "level=WARN") || !strings.Contains(h.logs.String(), "insecure_ignore_host_key") {
		t.Fatalf("no warning at start: %s", h.logs.String())
	}
	if res := h.run(jc, j, time.Unix(1_800_000_000, 0)); res.Status != report.StatusPass {
		t.Fatalf("got %s %s", res.Status, res.Error)
	}
}

// needNXDOMAIN skips when this machine's resolver does not answer for the
// reserved .invalid domain quickly (no resolver at all would look like a
// timeout, not a DNS failure).
func needNXDOMAIN(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := net.DefaultResolver.LookupHost(ctx, "no-such-host.invalid")
	var de *net.DNSError
	if !errors.As(err, &de) || de.IsTimeout {
		t.Skipf("resolver gives no quick NXDOMAIN here: %v", err)
	}
}

func TestGit_EncryptedSSHKeyWithPassphraseSecret_Clones(t *testing.T) {
	noLeaks(t)
	labtest.NeedBinary(t, "git", "apt-get install -y git")
	signer, pemBytes, err := lab.NewSSHKey(canaryPass)
	if err != nil {
		t.Fatal(err)
	}
	p, err := lab.StartGitProduct(t.TempDir(), lab.GitProductOptions{Repos: []string{repo}, AuthorizedKey: signer.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	key := filepath.Join(t.TempDir(), "id_enc")
	if err := os.WriteFile(key, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, p: p, logs: &labtest.Buffer{}, key: key}
	jc, j := h.journey("10s", h.sshBlock("ssh_key_passphrase = \"env:GIT_PASSWORD\"\n"))
	if res := h.run(jc, j, time.Unix(1_800_000_000, 0)); res.Status != report.StatusPass {
		t.Fatalf("got %s/%s %s", res.Status, res.ErrorType, res.Error)
	}
}

// The sweeper and journey runs of one journey share its gitclient.Client;
// under -race this fails if they share mutable go-git state (go-git's HTTP
// session rewrites its endpoint on every ref advertisement).
func TestGit_SweeperConcurrentWithRuns_SharesNoMutableStateAndSweeps(t *testing.T) {
	h := newHarness(t)
	now := time.Now()
	head := h.serverRefs()["refs/heads/main"]
	var old []string
	for i := range 3 {
		old = append(old, prefix+fmt.Sprintf("eu-agent_%d-%d", i, now.Add(-48*time.Hour).Unix()))
	}
	if err := h.p.Repos.Write(context.Background(), repo, func(dir string) error {
		for _, b := range old {
			if out, err := exec.Command("git", "-C", dir, "update-ref", "refs/heads/"+b, head).CombinedOutput(); err != nil {
				return fmt.Errorf("%v %s", err, out)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	jc, j := h.journeyAt("20s", h.httpsBlock("push = true\nbranch_prefix = \""+prefix+"\"\nsweep_max = 1\n"),
		10*time.Millisecond, time.Now)
	var wg sync.WaitGroup
	results := make([]report.Result, 3)
	for i := range results {
		wg.Go(func() { results[i] = h.run(jc, j, now.Truncate(time.Minute).Add(time.Duration(i)*time.Minute)) })
	}
	wg.Wait()
	for i, res := range results {
		if res.Status != report.StatusPass {
			t.Errorf("run %d alongside the sweeper: %s/%s %s; steps %v", i, res.Status, res.ErrorType, res.Error, stepNames(res))
		}
	}
	swept := false
	for range 200 { // bounded: 10 s at most
		refs := h.serverRefs()
		swept = true
		for _, b := range old {
			if _, ok := refs["refs/heads/"+b]; ok {
				swept = false
			}
		}
		if swept {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	j.Close()
	if !swept {
		t.Fatalf("old probe branches %v not all swept", old)
	}
	for ref := range h.serverRefs() {
		if strings.HasPrefix(ref, "refs/heads/"+prefix) {
			t.Errorf("probe branch %s left on the server", ref)
		}
	}
}

func TestGit_ConfirmationBySameAgentAndSlot_DoesNotPushOntoTheScheduledRunsLeftoverBranch(t *testing.T) {
	h := newHarness(t)
	// A server that refuses to move a branch to a commit not descending from
	// it (as the race of a timed-out push still running server-side does:
	// "cannot lock ref: reference already exists").
	if out, err := exec.Command("git", "-C", filepath.Join(h.p.Repos.PrimaryRoot(), repo), "config", "receive.denyNonFastForwards", "true").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	jc, j := h.journey("10s", h.httpsBlock("push = true\nbranch_prefix = \""+prefix+"\"\nverify = false\n"))
	slot := time.Unix(1_800_000_000, 0)
	// The scheduled run of this agent and slot ran out of time after its
	// push and left its branch behind, holding a commit ours does not
	// descend from.
	leftover := branchName(prefix, "eu", "agent-1", report.TriggerSchedule, slot)
	if err := h.p.Repos.Write(context.Background(), repo, func(dir string) error {
		tree, err := exec.Command("git", "-C", dir, "rev-parse", "main^{tree}").Output()
		if err != nil {
			return err
		}
		c, err := exec.Command("git", "-C", dir, "-c", "user.name=x", "-c", "user.email=x@x", "commit-tree", "-m", "leftover", strings.TrimSpace(string(tree))).Output()
		if err != nil {
			return err
		}
		return exec.Command("git", "-C", dir, "update-ref", "refs/heads/"+leftover, strings.TrimSpace(string(c))).Run()
	}); err != nil {
		t.Fatal(err)
	}
	r := &probes.Runner{Agent: "agent-1", Region: "eu", Log: slog.New(slog.NewTextHandler(h.logs, nil))}
	res := r.Execute(context.Background(), j, probes.Spec{Journey: jc, Slot: slot, Trigger: report.TriggerConfirm})
	h.assertNoCanary(res)
	if res.Status != report.StatusPass {
		t.Fatalf("confirmation run: %s %s %s, want pass on its own branch", res.Status, res.ErrorType, res.Error)
	}
	if b := branchName(prefix, "eu", "agent-1", report.TriggerConfirm, slot); b == leftover {
		t.Fatalf("confirmation branch %q is the scheduled run's", b)
	}
}

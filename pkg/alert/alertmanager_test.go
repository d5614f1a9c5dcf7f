package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/lab/labtest"
)

// startAlertmanager runs the real prometheus-alertmanager on loopback with
// the configuration shipped in deploy/ and returns its base URL.
func startAlertmanager(t *testing.T) string {
	t.Helper()
	bin := labtest.NeedBinary(t, "prometheus-alertmanager", "apt-get install -y prometheus-alertmanager")
	_, file, _, _ := runtime.Caller(0)
	cfg := filepath.Join(filepath.Dir(file), "..", "..", "deploy", "alertmanager", "alertmanager.yml")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.path="+t.TempDir(), "--web.listen-address="+addr,
		"--cluster.listen-address=", "--log.level=warn")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	base := "http://" + addr
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := c.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager on %s not ready: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// amGot is an alert as Alertmanager's API v2 returns it.
type amGot struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Status      struct {
		State       string   `json:"state"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
}

func amAlerts(t *testing.T, base string) []amGot {
	t.Helper()
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(base + "/api/v2/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []amGot
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func findAM(list []amGot, alertname, journey string) *amGot {
	for i := range list {
		if list[i].Labels["alertname"] == alertname && list[i].Labels["journey"] == journey {
			return &list[i]
		}
	}
	return nil
}

func TestAlertmanager_RegionalIncidentAppearsWithLabelsAndResolves(t *testing.T) {
	base := startAlertmanager(t)
	// Alertmanager judges endsAt against its own clock, so the test clock
	// runs just behind real time, with a 1 s journey interval.
	clk := &clock{t: time.Now().UTC().Add(-20 * time.Second).Truncate(time.Second)}
	am := NewAlertmanager("am", base, "http://vantage.example/", "", time.Minute, http.DefaultClient, clk.Now)
	e := openEngine(t, t.TempDir(), clk, am)
	defer e.Close()
	iv := time.Second
	slot := clk.Now()
	passRegion(t, e, "clone", "us", slot, iv)
	failRegion(t, e, "clone", "eu", slot, iv)

	var got *amGot
	waitFor(t, "the alert in Alertmanager", func() bool {
		got = findAM(amAlerts(t, base), "VantageJourneyRegional", "clone")
		return got != nil
	})
	wantLabels := map[string]string{"alertname": "VantageJourneyRegional", "journey": "clone", "kind": "git", "scope": "regional",
		"regions": "eu", "components": "https-edge", "severity": "warning"}
	for k, v := range wantLabels {
		if got.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, got.Labels[k], v)
		}
	}
	ann := got.Annotations
	if ann["summary"] == "" || ann["failing_step"] != "clone" || ann["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" ||
		ann["runbook_url"] != "https://runbooks.example/clone" || ann["first_failing_slot"] != slot.Format(time.RFC3339) ||
		!strings.Contains(ann["sample_error"], "[REDACTED]") || strings.Contains(fmt.Sprint(ann), canary) {
		t.Fatalf("annotations: %v", ann)
	}
	if got.Status.State != "active" {
		t.Fatalf("state %q", got.Status.State)
	}

	for k := 1; k <= 2; k++ {
		s := slot.Add(time.Duration(k) * iv)
		clk.Set(s)
		passRegion(t, e, "clone", "eu", s, iv)
		passRegion(t, e, "clone", "us", s, iv)
	}
	waitFor(t, "the resolution in Alertmanager", func() bool {
		return findAM(amAlerts(t, base), "VantageJourneyRegional", "clone") == nil
	})
}

func TestAlertmanager_ShippedInhibitRule_GlobalSuppressesRegionalOfSameJourney(t *testing.T) {
	base := startAlertmanager(t)
	now := time.Now().UTC()
	am := NewAlertmanager("am", base, "", "", time.Minute, http.DefaultClient, func() time.Time { return now })
	mk := func(name, journey, sev string) Alert {
		return Alert{Key: name + "|" + journey, StartsAt: now, Annotations: map[string]string{"summary": journey},
			Labels: map[string]string{"alertname": name, "journey": journey, "severity": sev}}
	}
	ctx := context.Background()
	for _, a := range []Alert{mk("VantageJourneyGlobal", "clone", "critical"), mk("VantageJourneyRegional", "clone", "warning"), mk("VantageJourneyRegional", "api", "warning")} {
		if err := am.Send(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "inhibition of the regional clone alert", func() bool {
		r := findAM(amAlerts(t, base), "VantageJourneyRegional", "clone")
		return r != nil && r.Status.State == "suppressed" && len(r.Status.InhibitedBy) == 1
	})
	list := amAlerts(t, base)
	if g := findAM(list, "VantageJourneyGlobal", "clone"); g == nil || g.Status.State != "active" {
		t.Fatalf("global alert: %+v", g)
	}
	if r := findAM(list, "VantageJourneyRegional", "api"); r == nil || r.Status.State != "active" {
		t.Fatalf("regional alert of another journey must stay active: %+v", r)
	}
}

func TestAlertmanager_RegionalBecomingGlobal_GlobalCriticalReplacesRegional(t *testing.T) {
	base := startAlertmanager(t)
	clk := &clock{t: time.Now().UTC().Add(-20 * time.Second).Truncate(time.Second)}
	am := NewAlertmanager("am", base, "", "", time.Minute, http.DefaultClient, clk.Now)
	e := openEngine(t, t.TempDir(), clk, am)
	defer e.Close()
	iv := time.Second
	slot := clk.Now()
	passRegion(t, e, "clone", "us", slot.Add(-iv), iv)
	passRegion(t, e, "clone", "ap", slot.Add(-iv), iv)
	failRegion(t, e, "clone", "eu", slot, iv)
	waitFor(t, "the regional alert", func() bool { return findAM(amAlerts(t, base), "VantageJourneyRegional", "clone") != nil })
	failRegion(t, e, "clone", "us", slot.Add(iv/3), iv)
	var g *amGot
	waitFor(t, "global replacing regional", func() bool {
		list := amAlerts(t, base)
		g = findAM(list, "VantageJourneyGlobal", "clone")
		return g != nil && findAM(list, "VantageJourneyRegional", "clone") == nil
	})
	if g.Labels["severity"] != "critical" || g.Labels["scope"] != "global" || g.Labels["regions"] != "eu,us" {
		t.Fatalf("global alert labels: %v", g.Labels)
	}
}

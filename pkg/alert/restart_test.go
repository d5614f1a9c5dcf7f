package alert

import (
	"net/http"
	"testing"
	"time"
)

func TestEngine_RestartMidIncident_NoSecondTrigger_ResolutionStillSent(t *testing.T) {
	pd := newRecorder(t)
	dir := t.TempDir()
	clk := &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	iv := 30 * time.Second
	slot := clk.Now()
	sink := func() Sink { return NewPagerDuty("pd", pd.srv.URL, "rk", http.DefaultClient) }

	e1 := openEngine(t, dir, clk, sink())
	passRegion(t, e1, "clone", "us", slot, iv)
	failRegion(t, e1, "clone", "eu", slot, iv)
	waitFor(t, "trigger", func() bool { return pd.count(`"trigger"`) == 1 })
	if err := e1.Close(); err != nil {
		t.Fatal(err)
	}

	// The restarted aggregator sees the incident go on: no second page.
	e2 := openEngine(t, dir, clk, sink())
	defer e2.Close()
	if got := len(e2.Alerts()); got != 1 {
		t.Fatalf("restored %d alerts, want 1", got)
	}
	s1 := slot.Add(iv)
	clk.Set(s1)
	failRegion(t, e2, "clone", "eu", s1, iv)
	passRegion(t, e2, "clone", "us", s1, iv)
	for i := 0; i < 3; i++ {
		e2.Tick(clk.Now())
	}
	// Then it recovers: the resolution is sent once.
	for k := 2; k <= 3; k++ {
		s := slot.Add(time.Duration(k) * iv)
		clk.Set(s)
		passRegion(t, e2, "clone", "eu", s, iv)
		passRegion(t, e2, "clone", "us", s, iv)
	}
	waitFor(t, "resolve", func() bool { return pd.count(`"resolve"`) == 1 })
	e2.Tick(clk.Now())
	if n := pd.count(`"trigger"`); n != 1 {
		t.Fatalf("%d triggers, want 1 (restart paged again): %q", n, pd.all())
	}
	waitFor(t, "resolved alert dropped once delivered", func() bool { e2.Tick(clk.Now()); return len(e2.Alerts()) == 0 })
}

func TestEngine_ResolutionUndeliveredBeforeRestart_IsSentAfter(t *testing.T) {
	pd := newRecorder(t)
	dir := t.TempDir()
	clk := &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	iv := 30 * time.Second
	slot := clk.Now()
	sink := func() Sink { return NewPagerDuty("pd", pd.srv.URL, "rk", http.DefaultClient) }

	e1 := openEngine(t, dir, clk, sink())
	passRegion(t, e1, "clone", "us", slot, iv)
	failRegion(t, e1, "clone", "eu", slot, iv)
	waitFor(t, "trigger", func() bool { return pd.count(`"trigger"`) == 1 })
	pd.setStatus(http.StatusBadGateway) // PagerDuty down while the incident resolves
	for k := 1; k <= 2; k++ {
		s := slot.Add(time.Duration(k) * iv)
		clk.Set(s)
		passRegion(t, e1, "clone", "eu", s, iv)
		passRegion(t, e1, "clone", "us", s, iv)
	}
	waitFor(t, "failed resolve attempts", func() bool { return pd.count(`"resolve"`) >= 3 })
	if err := e1.Close(); err != nil {
		t.Fatal(err)
	}
	pd.setStatus(http.StatusAccepted)
	before := pd.count(`"resolve"`)

	e2 := openEngine(t, dir, clk, sink())
	defer e2.Close()
	e2.Tick(clk.Now())
	waitFor(t, "resolve after restart", func() bool { return pd.count(`"resolve"`) == before+1 })
	if n := pd.count(`"trigger"`); n != 1 {
		t.Fatalf("%d triggers, want 1", n)
	}
}

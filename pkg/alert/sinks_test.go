package alert

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// incident drives an engine through a regional incident in eu and its
// recovery, and returns when every sink has the resolution.
func TestSinks_PayloadsForTriggerAndResolve_NoCanary(t *testing.T) {
	pd, slack, hook := newRecorder(t), newRecorder(t), newRecorder(t)
	slackSecretURL := slack.srv.URL + "/services/T000/B000/" + canary + "x"
	clk := &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	e := openEngine(t, t.TempDir(), clk,
		NewPagerDuty("pd", pd.srv.URL+"/v2/enqueue", "routing-key-"+canary, http.DefaultClient),
		NewSlack("slack", slackSecretURL, http.DefaultClient),
		NewWebhook("hook", hook.srv.URL+"/hook", "hook-token-"+canary, http.DefaultClient))
	defer e.Close()
	iv := 30 * time.Second
	slot := clk.Now()
	passRegion(t, e, "clone", "us", slot, iv)
	failRegion(t, e, "clone", "eu", slot, iv)
	waitFor(t, "trigger at every sink", func() bool { return len(pd.all()) == 1 && len(slack.all()) == 1 && len(hook.all()) == 1 })

	ev := decode[pdEvent](t, pd.all()[0])
	if ev.EventAction != "trigger" || !strings.HasPrefix(ev.DedupKey, "vantage-") || ev.Payload == nil ||
		ev.Payload.Severity != "warning" || ev.Payload.CustomDetails["regions"] != "eu" || ev.Payload.CustomDetails["failing_step"] != "clone" ||
		len(ev.Links) != 1 || ev.Links[0].Href != "https://runbooks.example/clone" || ev.RoutingKey != "routing-key-"+canary {
		t.Fatalf("pagerduty trigger: %+v %+v", ev, ev.Payload)
	}
	if !strings.Contains(ev.Payload.CustomDetails["sample_error"], "[REDACTED]") {
		t.Fatalf("sample error not redacted: %q", ev.Payload.CustomDetails["sample_error"])
	}
	msg := decode[map[string]string](t, slack.all()[0])["text"]
	for _, want := range []string{"FIRING", "VantageJourneyRegional", "*Scope:* regional", "*Regions:* eu", "*Step:* clone", "502 Bad Gateway", "<https://runbooks.example/clone|runbook>", "*Trace:* 4bf92f3577b34da6a3ce929d0e0e4736"} {
		if !strings.Contains(msg, want) {
			t.Errorf("slack message lacks %q:\n%s", want, msg)
		}
	}
	wp := decode[WebhookPayload](t, hook.all()[0])
	if wp.Version != "1" || wp.Status != "firing" || wp.DedupKey != ev.DedupKey || wp.Labels["alertname"] != "VantageJourneyRegional" ||
		wp.Labels["journey"] != "clone" || wp.Labels["components"] != "https-edge" || wp.Labels["kind"] != "git" ||
		wp.Annotations["first_failing_slot"] != slot.Format(time.RFC3339) || wp.EndsAt != nil {
		t.Fatalf("webhook payload: %+v", wp)
	}
	if got := hook.paths[0]; got != "/hook Bearer hook-token-"+canary {
		t.Fatalf("webhook auth: %q", got)
	}

	// Recovery: two passing slots resolve.
	for k := 1; k <= 2; k++ {
		s := slot.Add(time.Duration(k) * iv)
		clk.Set(s)
		passRegion(t, e, "clone", "eu", s, iv)
		passRegion(t, e, "clone", "us", s, iv)
	}
	waitFor(t, "resolve at every sink", func() bool { return len(pd.all()) == 2 && len(slack.all()) == 2 && len(hook.all()) == 2 })
	res := decode[pdEvent](t, pd.all()[1])
	if res.EventAction != "resolve" || res.DedupKey != ev.DedupKey || res.Payload != nil {
		t.Fatalf("pagerduty resolve: %+v", res)
	}
	if !strings.Contains(decode[map[string]string](t, slack.all()[1])["text"], "RESOLVED") {
		t.Fatal("slack resolution message")
	}
	if w := decode[WebhookPayload](t, hook.all()[1]); w.Status != "resolved" || w.EndsAt == nil || w.Key != wp.Key {
		t.Fatalf("webhook resolve: %+v", w)
	}
	// The canary (in results' errors, in the Slack URL and the tokens) is
	// only where it belongs: the PD routing key and the webhook header.
	for _, b := range append(slack.all(), hook.all()...) {
		if strings.Contains(b, canary) {
			t.Fatalf("canary in payload: %s", b)
		}
	}
	for _, b := range pd.all() {
		if strings.Count(b, canary) != strings.Count(b, "routing-key-"+canary) {
			t.Fatalf("canary outside the routing key: %s", b)
		}
	}
}

func TestSinks_ErrorsNeverCarryTheSecretURL(t *testing.T) {
	slack := newRecorder(t)
	slack.setStatus(http.StatusForbidden)
	s := NewSlack("slack", slack.srv.URL+"/services/"+canary, http.DefaultClient)
	err := s.Send(context.Background(), Alert{Key: "k", Labels: map[string]string{"alertname": "X"}, Annotations: map[string]string{}})
	if err == nil || !isPermanent(err) || strings.Contains(err.Error(), canary) {
		t.Fatalf("err = %v", err)
	}
	dead := NewSlack("slack", "http://127.0.0.1:1/services/"+canary, http.DefaultClient)
	err = dead.Send(context.Background(), Alert{Key: "k", Labels: map[string]string{}, Annotations: map[string]string{}})
	if err == nil || strings.Contains(err.Error(), canary) {
		t.Fatalf("connection error leaks the URL: %v", err)
	}
}

func TestPipeline_HangingSinkDoesNotBlockOthersOrCaller(t *testing.T) {
	stuck, hook := newRecorder(t), newRecorder(t)
	stuck.hang = make(chan struct{})
	defer close(stuck.hang)
	clk := &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	e, err := Open(context.Background(), Options{DataDir: t.TempDir(), Now: clk.Now, RetryBase: time.Millisecond,
		Sinks: []Sink{NewWebhook("stuck", stuck.srv.URL, "", http.DefaultClient), NewWebhook("hook", hook.srv.URL, "", http.DefaultClient)}})
	if err != nil {
		t.Fatal(err)
	}
	passRegion(t, e, "clone", "us", clk.Now(), 30*time.Second)
	failRegion(t, e, "clone", "eu", clk.Now(), 30*time.Second) // returns although "stuck" never answers
	waitFor(t, "delivery to the healthy sink", func() bool { return len(hook.all()) == 1 })
	if err := e.Close(); err != nil { // must not wait for the stuck sink
		t.Fatal(err)
	}
}

func TestRetry_BacksOffAndStopsOnPermanent(t *testing.T) {
	n := 0
	r := retryStage{attempts: 4, base: time.Millisecond, max: 4 * time.Millisecond}
	err := r.do(context.Background(), func(context.Context) error { n++; return errors.New("boom") })
	if err == nil || n != 4 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	n = 0
	err = r.do(context.Background(), func(context.Context) error { n++; return permanentError{errors.New("400")} })
	if n != 1 || !isPermanent(err) {
		t.Fatalf("permanent retried: n=%d", n)
	}
	n = 0
	err = r.do(context.Background(), func(context.Context) error {
		n++
		if n < 3 {
			return errors.New("flaky")
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("flaky: n=%d err=%v", n, err)
	}
}

func TestPipeline_FlakySinkIsRetriedUntilDelivered(t *testing.T) {
	hook := newRecorder(t)
	hook.setStatus(http.StatusServiceUnavailable)
	clk := &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	e := openEngine(t, t.TempDir(), clk, NewWebhook("hook", hook.srv.URL, "", http.DefaultClient))
	defer e.Close()
	passRegion(t, e, "clone", "us", clk.Now(), 30*time.Second)
	failRegion(t, e, "clone", "eu", clk.Now(), 30*time.Second)
	waitFor(t, "three failed attempts", func() bool { return len(hook.all()) >= 3 })
	hook.setStatus(http.StatusOK)
	// The retry stage gave up; the next Tick re-queues from the notification log.
	waitFor(t, "delivery after recovery", func() bool {
		e.Tick(clk.Now())
		st := e.SinkStats()[0]
		return st.Sent == 1
	})
}

func TestInhibit_GlobalSuppressesRegionalOfSameJourneyForNonAlertmanagerSinks(t *testing.T) {
	g := Alert{Key: "g", Labels: map[string]string{"alertname": "VantageJourneyGlobal", "journey": "clone,push"}}
	r1 := Alert{Key: "r1", Labels: map[string]string{"alertname": "VantageJourneyRegional", "journey": "clone"}}
	r2 := Alert{Key: "r2", Labels: map[string]string{"alertname": "VantageJourneyRegional", "journey": "api"}}
	all := map[string]Alert{"g": g, "r1": r1, "r2": r2}
	got := inhibitStage{}.filter([]Alert{g, r1, r2}, all)
	if len(got) != 2 || got[0].Key != "g" || got[1].Key != "r2" {
		t.Fatalf("filter = %+v", got)
	}
}

func TestAlertmanagerSink_ResendsFiringAlertsEveryIntervalWithFutureEndsAt(t *testing.T) {
	amRec, pd := newRecorder(t), newRecorder(t)
	clk := &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	e := openEngine(t, t.TempDir(), clk,
		NewAlertmanager("am", amRec.srv.URL, "", "", time.Minute, http.DefaultClient, clk.Now),
		NewPagerDuty("pd", pd.srv.URL, "rk", http.DefaultClient))
	defer e.Close()
	iv := 30 * time.Second
	passRegion(t, e, "clone", "us", clk.Now(), iv)
	failRegion(t, e, "clone", "eu", clk.Now(), iv)
	e.Tick(clk.Now())
	waitFor(t, "first delivery logged", func() bool { st := e.SinkStats(); return st[0].Sent == 1 && st[1].Sent == 1 })
	if len(amRec.all()) != 1 {
		t.Fatalf("posts: %q", amRec.all())
	}
	n := 1
	clk.Set(clk.Now().Add(30 * time.Second))
	e.Tick(clk.Now()) // before the interval: nothing
	clk.Set(clk.Now().Add(31 * time.Second))
	e.Tick(clk.Now()) // after: one re-send to Alertmanager only
	waitFor(t, "re-send", func() bool { return len(amRec.all()) >= n+1 })
	if len(amRec.all()) != n+1 {
		t.Fatalf("posts: %q", amRec.all())
	}
	got := decode[[]amAlert](t, amRec.all()[n])
	if len(got) != 1 || !got[0].EndsAt.Equal(clk.Now().Add(3*time.Minute)) || got[0].Labels["alertname"] != "VantageJourneyRegional" {
		t.Fatalf("re-sent: %+v", got)
	}
	if len(pd.all()) != 1 {
		t.Fatalf("PagerDuty got %d events; re-sends are for Alertmanager only", len(pd.all()))
	}
}

func TestEngine_ForgetJourneyResolvesItsAlerts(t *testing.T) {
	pd := newRecorder(t)
	clk := &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	e := openEngine(t, t.TempDir(), clk, NewPagerDuty("pd", pd.srv.URL, "rk", http.DefaultClient))
	defer e.Close()
	passRegion(t, e, "clone", "us", clk.Now(), 30*time.Second)
	failRegion(t, e, "clone", "eu", clk.Now(), 30*time.Second)
	waitFor(t, "trigger", func() bool { return pd.count(`"trigger"`) == 1 })
	e.Forget("clone")
	waitFor(t, "resolve", func() bool { return pd.count(`"resolve"`) == 1 })
	if len(e.Snapshot().Journeys) != 0 {
		t.Fatal("journey still tracked")
	}
}

func TestEngine_RejectsSkewedResultWithoutStateChange(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	e := openEngine(t, t.TempDir(), clk)
	defer e.Close()
	r := result("clone", "eu", "eu-1", clk.Now().Add(time.Hour), 30*time.Second, "schedule", "fail")
	if err := e.Accept(r); !IsRejected(err) {
		t.Fatalf("err = %v", err)
	}
	if len(e.Snapshot().Journeys) != 0 || e.Counters().SlotFuture != 1 {
		t.Fatalf("state changed: %+v", e.Counters())
	}
}

func TestAlertmanagerSink_IncidentGrowing_ResolvesTheOldLabelSet(t *testing.T) {
	amRec := newRecorder(t)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	am := NewAlertmanager("am", amRec.srv.URL, "", "", time.Minute, http.DefaultClient, func() time.Time { return now })
	a := Alert{Key: "k", StartsAt: now, Labels: map[string]string{"alertname": "VantageJourneyGlobal", "journey": "clone"}, Annotations: map[string]string{}}
	if err := am.Send(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	b := a.clone()
	b.Labels["journey"] = "clone,push"
	if err := am.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	got := decode[[]amAlert](t, amRec.all()[1])
	if len(got) != 2 || got[0].Labels["journey"] != "clone,push" || !got[0].EndsAt.After(now) ||
		got[1].Labels["journey"] != "clone" || !got[1].EndsAt.Equal(now) {
		t.Fatalf("second post: %+v", got)
	}
}

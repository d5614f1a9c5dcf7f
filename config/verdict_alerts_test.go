package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const aggBase = `
[aggregator]
name = "agg-1"
data_dir = "/tmp/agg"
`

func TestAggregator_VerdictAndAlertDefaults(t *testing.T) {
	c, err := LoadAggregatorBytes("agg.toml", []byte(aggBase+`
[alerts]
[[alerts.sink]]
type = "pagerduty"
secret = "env:PD_KEY"
[[alerts.sink]]
type = "slack"
secret = "env:SLACK_URL"
[[alerts.sink]]
type = "alertmanager"
url = "http://127.0.0.1:9093"
`), env(map[string]string{"PD_KEY": "pd-canary-123", "SLACK_URL": "https://hooks.slack.com/services/T/B/canary"}))
	if err != nil {
		t.Fatal(err)
	}
	v := c.Verdict
	if v.FailuresToTrip != 2 || v.SuccessesToClear != 2 || v.Window != 10 || v.DegradedRatio != 0.2 || v.NoDataIntervals != 3 ||
		v.GlobalMinRegions != 2 || v.GlobalRatio != 0.5 || v.MaxSlotSkew.D != 2*time.Minute {
		t.Fatalf("verdict defaults: %+v", v)
	}
	a := c.Alerts
	if a.ResendInterval.D != time.Minute || len(a.Sink) != 3 || a.Sink[0].URL != "https://events.pagerduty.com/v2/enqueue" ||
		a.Sink[0].Name != "pagerduty" || a.Sink[0].Timeout.D != 10*time.Second || a.Sink[1].Secret.Value() != "https://hooks.slack.com/services/T/B/canary" {
		t.Fatalf("alerts defaults: %+v", a)
	}
}

func TestAggregator_VerdictAndAlertProblems(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"ratio out of range", "[verdict]\ndegraded_ratio = 1.5\n", "verdict.degraded_ratio: must be in (0, 1], got 1.5"},
		{"trip beyond window", "[verdict]\nfailures_to_trip = 20\nwindow = 5\n", "verdict.failures_to_trip: must not exceed window (5)"},
		{"integer duration", "[verdict]\nmax_slot_skew = 5\n", "verdict.max_slot_skew: duration must be a string"},
		{"unknown key", "[verdict]\nfailures = 2\n", "verdict.failures: unknown key"},
		{"unknown sink", "[[alerts.sink]]\ntype = \"email\"\n", `alerts.sink[0].type: unknown sink type "email"`},
		{"slack url inline", "[[alerts.sink]]\ntype = \"slack\"\nurl = \"https://hooks.slack.com/x\"\nsecret = \"env:S\"\n", "alerts.sink[0].url: must be empty"},
		{"pagerduty without key", "[[alerts.sink]]\ntype = \"pagerduty\"\n", "alerts.sink[0].secret: is required (the routing key)"},
		{"alertmanager without url", "[[alerts.sink]]\ntype = \"alertmanager\"\n", "alerts.sink[0].url: is required"},
		{"bad url", "[[alerts.sink]]\ntype = \"webhook\"\nurl = \"ftp://x\"\n", "alerts.sink[0].url: must be an absolute http"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadAggregatorBytes("agg.toml", []byte(aggBase+tc.src), env(map[string]string{"S": "https://hooks.slack.com/services/x"}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestAggregator_AlertsExampleLoads(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile("examples/aggregator-alerts.toml")
	if err != nil {
		t.Fatal(err)
	}
	slack := filepath.Join(dir, "slack")
	if err := os.WriteFile(slack, []byte("https://hooks.slack.com/services/T/B/x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(string(b), "file:/etc/vantage/slack-webhook-url", "file:"+slack, 1)
	c, err := LoadAggregatorBytes("aggregator-alerts.toml", []byte(src), env(map[string]string{
		"VANTAGE_API_TOKEN": "t0ken-abc", "PAGERDUTY_ROUTING_KEY": "rk-abcdef", "WEBHOOK_TOKEN": "wh-abcdef"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Alerts.Sink) != 4 || c.Alerts.Sink[2].Secret.Value() != "https://hooks.slack.com/services/T/B/x" {
		t.Fatalf("sinks: %+v", c.Alerts.Sink)
	}
}

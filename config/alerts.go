package config

import (
	"fmt"
	"net/url"
	"time"
)

// Alerts configures the aggregator's notifications: where they go and how
// often firing alerts are re-sent.
type Alerts struct {
	// ResendInterval is how often firing alerts are re-sent to Alertmanager
	// (with endsAt in the future) so that it does not resolve them on its
	// own. Default "1m"; keep it well under Alertmanager's resolve_timeout.
	ResendInterval Duration `toml:"resend_interval"`
	// RunbookBase is prefixed to relative runbook paths from journeys
	// (e.g. "https://runbooks.example.com/"). Optional.
	RunbookBase string `toml:"runbook_base"`
	// StatusURL is the status page's external URL, linked from alerts as
	// generatorURL. Optional.
	StatusURL string `toml:"status_url"`
	// Sink lists the notification destinations; none means alerts are only
	// shown on the status page.
	Sink []Sink `toml:"sink"`
}

// Sink is one notification destination.
type Sink struct {
	// Type is "alertmanager", "pagerduty", "slack" or "webhook".
	Type string `toml:"type"`
	// Name identifies the sink in logs and the notification log. Default: Type.
	Name string `toml:"name"`
	// URL is the endpoint: Alertmanager's base URL (".../api/v2/alerts" is
	// appended), PagerDuty's Events API v2 URL (default
	// "https://events.pagerduty.com/v2/enqueue"), or the webhook URL. For
	// Slack, whose webhook URL is itself a secret, use Secret instead.
	URL string `toml:"url"`
	// Secret is the PagerDuty routing key, the Slack incoming-webhook URL,
	// or the bearer token sent to Alertmanager or the webhook (optional for
	// those two); "env:NAME" or "file:/path".
	Secret Secret `toml:"secret"`
	// Timeout bounds one delivery attempt. Default "10s".
	Timeout Duration `toml:"timeout"`
	// QueueSize bounds the notifications waiting for this sink; when full
	// the oldest is dropped and counted, so a dead sink never blocks the
	// others. Default 256.
	QueueSize int `toml:"queue_size"`
	// MaxAttempts bounds retries of one notification (exponential backoff
	// from one second). Default 5.
	MaxAttempts int `toml:"max_attempts"`
}

func (a *Alerts) applyDefaults() {
	if a.ResendInterval.IsZero() {
		a.ResendInterval = Dur(time.Minute)
	}
	for i := range a.Sink {
		s := &a.Sink[i]
		if s.Name == "" {
			s.Name = s.Type
		}
		if s.Type == "pagerduty" && s.URL == "" {
			s.URL = "https://events.pagerduty.com/v2/enqueue"
		}
		if s.Timeout.IsZero() {
			s.Timeout = Dur(10 * time.Second)
		}
		if s.QueueSize == 0 {
			s.QueueSize = 256
		}
		if s.MaxAttempts == 0 {
			s.MaxAttempts = 5
		}
	}
}

func (a *Alerts) validate(p *problems, key string) {
	if a.RunbookBase != "" {
		checkHTTPURL(p, key+".runbook_base", a.RunbookBase)
	}
	if a.StatusURL != "" {
		checkHTTPURL(p, key+".status_url", a.StatusURL)
	}
	names := map[string]bool{}
	for i := range a.Sink {
		s := &a.Sink[i]
		k := fmt.Sprintf("%s.sink[%d]", key, i)
		if names[s.Name] {
			p.add(k+".name", fmt.Sprintf("duplicate sink name %q", s.Name))
		}
		names[s.Name] = true
		switch s.Type {
		case "alertmanager", "webhook":
			if s.URL == "" {
				p.add(k+".url", "is required")
			} else {
				checkHTTPURL(p, k+".url", s.URL)
			}
		case "pagerduty":
			checkHTTPURL(p, k+".url", s.URL)
			if !s.Secret.IsSet() {
				p.add(k+".secret", "is required (the routing key)")
			}
		case "slack":
			if !s.Secret.IsSet() {
				p.add(k+".secret", "is required (the incoming-webhook URL)")
			}
			if s.URL != "" {
				p.add(k+".url", "must be empty: a Slack webhook URL is a secret, give it as secret")
			}
		case "":
			p.add(k+".type", "is required (alertmanager, pagerduty, slack or webhook)")
		default:
			p.add(k+".type", fmt.Sprintf("unknown sink type %q (want alertmanager, pagerduty, slack or webhook)", s.Type))
		}
		if s.QueueSize < 1 || s.QueueSize > 100000 {
			p.add(k+".queue_size", "must be between 1 and 100000")
		}
		if s.MaxAttempts < 1 || s.MaxAttempts > 100 {
			p.add(k+".max_attempts", "must be between 1 and 100")
		}
	}
}

// checkHTTPURL reports key unless u is an absolute http(s) URL.
func checkHTTPURL(p *problems, key, u string) {
	x, err := url.Parse(u)
	if err != nil || (x.Scheme != "http" && x.Scheme != "https") || x.Host == "" {
		p.add(key, "must be an absolute http:// or https:// URL")
	}
}

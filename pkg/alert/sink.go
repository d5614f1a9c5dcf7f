package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Sink delivers one alert, firing or resolved, to one destination. Send
// must honour ctx (the pipeline puts the sink's timeout on it) and must
// never put a secret (routing key, webhook URL, token) in its error.
type Sink interface {
	Name() string
	Send(ctx context.Context, a Alert) error
}

// resender is implemented by sinks that want firing alerts re-sent
// periodically (Alertmanager resolves alerts that stop arriving).
type resender interface{ resends() bool }

// permanentError marks a delivery that retrying cannot fix (a 4xx other
// than 429): the retry stage stops at once.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func isPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// maxResponseBytes bounds what is read of a sink's reply.
const maxResponseBytes = 64 << 10

// postJSON sends body to url. label names the destination in errors in
// place of the URL, which may itself be a secret (Slack).
func postJSON(ctx context.Context, c *http.Client, url, label string, body any, header http.Header) error {
	b, err := json.Marshal(body)
	if err != nil {
		return permanentError{fmt.Errorf("%s: encode: %w", label, err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return permanentError{fmt.Errorf("%s: invalid request", label)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vantage-aggregator")
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		// *url.Error carries the URL: report only its cause class.
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", label, ctx.Err())
		}
		var ue interface{ Timeout() bool }
		if errors.As(err, &ue) && ue.Timeout() {
			return fmt.Errorf("%s: request timed out", label)
		}
		return fmt.Errorf("%s: request failed: %s", label, stripURL(err))
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	msg := strings.TrimSpace(string(reply))
	if len(msg) > 200 {
		msg = msg[:200]
	}
	err = fmt.Errorf("%s: HTTP %d: %s", label, resp.StatusCode, msg)
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests {
		return permanentError{err}
	}
	return err
}

// stripURL returns the innermost error text, without the URL that
// *url.Error prefixes.
func stripURL(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

// Alertmanager posts to Alertmanager's API v2. Firing alerts carry an
// endsAt a few resend intervals ahead and are re-sent periodically, so
// Alertmanager keeps them open while Vantage is alive; a resolution carries
// endsAt = now.
type Alertmanager struct {
	name, url   string
	client      *http.Client
	resend      time.Duration
	generator   string
	now         func() time.Time
	bearerToken string

	mu   sync.Mutex
	last map[string]map[string]string // labels last sent per alert key
}

// NewAlertmanager returns a sink posting to base + "/api/v2/alerts".
func NewAlertmanager(name, base, generatorURL, token string, resend time.Duration, c *http.Client, now func() time.Time) *Alertmanager {
	return &Alertmanager{name: name, url: strings.TrimRight(base, "/") + "/api/v2/alerts", client: c, resend: resend,
		generator: generatorURL, now: now, bearerToken: token, last: map[string]map[string]string{}}
}

// Name implements Sink.
func (s *Alertmanager) Name() string { return s.name }

func (s *Alertmanager) resends() bool { return true }

type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Send implements Sink.
func (s *Alertmanager) Send(ctx context.Context, a Alert) error {
	ends := a.EndsAt
	if a.Firing() {
		ends = s.now().Add(3 * s.resend)
	}
	var h http.Header
	if s.bearerToken != "" {
		h = http.Header{"Authorization": {"Bearer " + s.bearerToken}}
	}
	batch := []amAlert{{Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.StartsAt, EndsAt: ends, GeneratorURL: s.generator}}
	// Alertmanager identifies an alert by its labels: when an incident's
	// labels change (a journey joins it), the old label set is resolved in
	// the same request instead of lingering until its endsAt.
	s.mu.Lock()
	prev, had := s.last[a.Key]
	s.mu.Unlock()
	if had && !sameLabels(prev, a.Labels) {
		batch = append(batch, amAlert{Labels: prev, Annotations: a.Annotations, StartsAt: a.StartsAt, EndsAt: s.now(), GeneratorURL: s.generator})
	}
	if err := postJSON(ctx, s.client, s.url, "alertmanager "+s.name, batch, h); err != nil {
		return err
	}
	s.mu.Lock()
	if a.Firing() {
		s.last[a.Key] = a.Labels
	} else {
		delete(s.last, a.Key)
	}
	s.mu.Unlock()
	return nil
}

func sameLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// PagerDuty sends Events API v2 trigger and resolve events with a
// deterministic dedup_key, so a re-sent trigger updates the same incident.
type PagerDuty struct {
	name, url, routingKey string
	client                *http.Client
}

// NewPagerDuty returns a PagerDuty sink; routingKey is a secret.
func NewPagerDuty(name, url, routingKey string, c *http.Client) *PagerDuty {
	return &PagerDuty{name: name, url: url, routingKey: routingKey, client: c}
}

// Name implements Sink.
func (s *PagerDuty) Name() string { return s.name }

type pdLink struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

type pdPayload struct {
	Summary       string            `json:"summary"`
	Source        string            `json:"source"`
	Severity      string            `json:"severity"`
	Timestamp     string            `json:"timestamp,omitempty"`
	Component     string            `json:"component,omitempty"`
	Group         string            `json:"group,omitempty"`
	Class         string            `json:"class,omitempty"`
	CustomDetails map[string]string `json:"custom_details,omitempty"`
}

type pdEvent struct {
	RoutingKey  string     `json:"routing_key"`
	EventAction string     `json:"event_action"`
	DedupKey    string     `json:"dedup_key"`
	Payload     *pdPayload `json:"payload,omitempty"`
	Links       []pdLink   `json:"links,omitempty"`
}

// Send implements Sink.
func (s *PagerDuty) Send(ctx context.Context, a Alert) error {
	ev := pdEvent{RoutingKey: s.routingKey, DedupKey: a.DedupKey(), EventAction: "resolve"}
	if a.Firing() {
		ev.EventAction = "trigger"
		sev := map[string]string{"critical": "critical", "warning": "warning", "info": "info"}[a.Severity()]
		if sev == "" {
			sev = "error"
		}
		details := map[string]string{}
		for k, v := range a.Labels {
			details[k] = v
		}
		for k, v := range a.Annotations {
			details[k] = v
		}
		ev.Payload = &pdPayload{Summary: truncate(a.Annotations[AnnSummary], 1000), Source: "vantage/" + a.Labels["regions"],
			Severity: sev, Timestamp: a.StartsAt.UTC().Format(time.RFC3339), Component: a.Labels["components"],
			Group: a.Labels["journey"], Class: a.Labels["alertname"], CustomDetails: details}
		if rb := a.Annotations[AnnRunbook]; rb != "" {
			ev.Links = append(ev.Links, pdLink{Href: rb, Text: "Runbook"})
		}
	}
	return postJSON(ctx, s.client, s.url, "pagerduty "+s.name, ev, nil)
}

// Slack posts one readable message per change to an incoming webhook,
// whose URL is a secret.
type Slack struct {
	name, webhookURL string
	client           *http.Client
}

// NewSlack returns a Slack sink.
func NewSlack(name, webhookURL string, c *http.Client) *Slack {
	return &Slack{name: name, webhookURL: webhookURL, client: c}
}

// Name implements Sink.
func (s *Slack) Name() string { return s.name }

// SlackText renders the message: status, alert, summary, then one line
// each for scope and regions, step, error, runbook and trace.
func SlackText(a Alert) string {
	var b strings.Builder
	icon, word := ":red_circle:", "FIRING"
	if a.Severity() != "critical" {
		icon = ":large_orange_circle:"
	}
	if !a.Firing() {
		icon, word = ":large_green_circle:", "RESOLVED"
	}
	fmt.Fprintf(&b, "%s *%s* %s: %s\n", icon, word, a.Labels["alertname"], slackEscape(a.Annotations[AnnSummary]))
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "*%s:* %s\n", k, v)
		}
	}
	line("Scope", a.Labels["scope"])
	line("Regions", a.Labels["regions"])
	journeys := a.Labels["journey"]
	if journeys == "" {
		journeys = a.Annotations[AnnJourneys]
	}
	line("Journeys", journeys)
	line("Since", a.Annotations[AnnFirstFailingSlot])
	line("Step", slackEscape(a.Annotations[AnnFailingStep]))
	if e := a.Annotations[AnnSampleError]; e != "" {
		line("Error", "`"+strings.ReplaceAll(slackEscape(e), "`", "'")+"`")
	}
	if rb := a.Annotations[AnnRunbook]; rb != "" {
		line("Runbook", "<"+rb+"|runbook>")
	}
	line("Trace", a.Annotations[AnnTraceID])
	return strings.TrimRight(b.String(), "\n")
}

func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Send implements Sink.
func (s *Slack) Send(ctx context.Context, a Alert) error {
	return postJSON(ctx, s.client, s.webhookURL, "slack "+s.name, map[string]string{"text": SlackText(a)}, nil)
}

// Webhook posts WebhookPayload (documented in the README) to a URL.
type Webhook struct {
	name, url, token string
	client           *http.Client
}

// NewWebhook returns a webhook sink; token, when set, is sent as a bearer token.
func NewWebhook(name, url, token string, c *http.Client) *Webhook {
	return &Webhook{name: name, url: url, token: token, client: c}
}

// Name implements Sink.
func (s *Webhook) Name() string { return s.name }

// WebhookPayload is the generic webhook's body, version 1.
type WebhookPayload struct {
	Version     string            `json:"version"`
	Status      string            `json:"status"`
	Key         string            `json:"key"`
	DedupKey    string            `json:"dedup_key"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"starts_at"`
	EndsAt      *time.Time        `json:"ends_at,omitempty"`
}

// Send implements Sink.
func (s *Webhook) Send(ctx context.Context, a Alert) error {
	p := WebhookPayload{Version: "1", Status: a.Status(), Key: a.Key, DedupKey: a.DedupKey(), Labels: a.Labels,
		Annotations: a.Annotations, StartsAt: a.StartsAt}
	if !a.Firing() {
		e := a.EndsAt
		p.EndsAt = &e
	}
	var h http.Header
	if s.token != "" {
		h = http.Header{"Authorization": {"Bearer " + s.token}}
	}
	return postJSON(ctx, s.client, s.url, "webhook "+s.name, p, h)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

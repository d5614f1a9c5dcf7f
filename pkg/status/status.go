// Package status owns what people and dashboards read from the aggregator:
// the HTML status page (journeys × regions coloured by verdict, open
// incidents, latest failures, fleet members), the JSON API
// (/api/v1/status, /api/v1/alerts) and the derived metrics in Prometheus
// text form (/metrics). It reads through Provider and decides nothing.
package status

import (
	"crypto/subtle"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vantage-fleet/vantage/pkg/verdict"
)

//go:embed page.html
var pageFS embed.FS

// Options configure the handler.
type Options struct {
	// Token, when set, is required as "Authorization: Bearer <token>" (the
	// HTML page also accepts ?token= so that a wall screen can open it).
	Token string
	// Refresh is the page's auto-refresh period (10s when zero).
	Refresh time.Duration
	// Title heads the page ("Vantage" when empty).
	Title string
	// Now is the clock for "ago" texts (time.Now when nil).
	Now func() time.Time
}

// Handler serves the page, the JSON API and /metrics.
type Handler struct {
	p    Provider
	opts Options
	page *template.Template
	mux  *http.ServeMux
}

// NewHandler returns the handler reading from p.
func NewHandler(p Provider, opts Options) *Handler {
	if opts.Refresh <= 0 {
		opts.Refresh = 10 * time.Second
	}
	if opts.Title == "" {
		opts.Title = "Vantage"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{p: p, opts: opts, mux: http.NewServeMux()}
	h.page = template.Must(template.New("page.html").Funcs(template.FuncMap{
		"ago":   func(t time.Time) string { return ago(opts.Now(), t) },
		"join":  strings.Join,
		"split": func(s string) string { return strings.ReplaceAll(s, ",", ", ") },
		"pct":   func(f float64) int { return int(f*100 + 0.5) },
		"short": func(s string, n int) string {
			if len(s) > n {
				return s[:n] + "…"
			}
			return s
		},
		"stamp": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("15:04:05Z")
		},
	}).ParseFS(pageFS, "page.html"))
	h.mux.HandleFunc("GET /{$}", h.serveHTML)
	h.mux.HandleFunc("GET /api/v1/status", h.serveStatus)
	h.mux.HandleFunc("GET /api/v1/alerts", h.serveAlerts)
	h.mux.HandleFunc("GET /metrics", h.serveMetrics)
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.opts.Token != "" && !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vantage"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) authorized(r *http.Request) bool {
	got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if got == "" && r.URL.Path == "/" {
		got = r.URL.Query().Get("token")
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(h.opts.Token)) == 1
}

// StatusDoc is the body of GET /api/v1/status.
type StatusDoc struct {
	GeneratedAt time.Time        `json:"generated_at"`
	Status      verdict.Snapshot `json:"status"`
}

// AlertsDoc is the body of GET /api/v1/alerts.
type AlertsDoc struct {
	GeneratedAt time.Time `json:"generated_at"`
	Alerts      []Alert   `json:"alerts"`
}

func (h *Handler) serveStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, StatusDoc{GeneratedAt: h.opts.Now().UTC(), Status: h.p.Snapshot()})
}

func (h *Handler) serveAlerts(w http.ResponseWriter, r *http.Request) {
	a := h.p.Alerts()
	if a == nil {
		a = []Alert{}
	}
	writeJSON(w, AlertsDoc{GeneratedAt: h.opts.Now().UTC(), Alerts: a})
}

func (h *Handler) serveMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write(Metrics(h.p.Snapshot(), h.p.DetectionLatency()))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// view is what page.html renders.
type view struct {
	Title     string
	Refresh   int
	Now       time.Time
	Regions   []string
	Rows      []row
	Incidents []Alert
	Fleet     []fleetRegion
	Failures  []verdict.Sample
	Counts    map[string]int
	Healthy   bool
}

type row struct {
	verdict.JourneyView
	Cells []cellView
}

type cellView struct {
	Region string
	verdict.CellView
	Present bool
}

type fleetRegion struct {
	Region  string
	Probers []string
}

func (h *Handler) serveHTML(w http.ResponseWriter, r *http.Request) {
	s := h.p.Snapshot()
	v := view{Title: h.opts.Title, Refresh: int(h.opts.Refresh / time.Second), Now: h.opts.Now().UTC(), Regions: s.Regions}
	for _, j := range s.Journeys {
		rw := row{JourneyView: j}
		for _, reg := range s.Regions {
			c, ok := j.Cells[reg]
			rw.Cells = append(rw.Cells, cellView{Region: reg, CellView: c, Present: ok})
			if ok && c.LastFail != nil && c.State != verdict.StateOK {
				v.Failures = append(v.Failures, *c.LastFail)
			}
		}
		v.Rows = append(v.Rows, rw)
	}
	sort.Slice(v.Failures, func(a, b int) bool { return v.Failures[a].Slot.After(v.Failures[b].Slot) })
	if len(v.Failures) > 20 {
		v.Failures = v.Failures[:20]
	}
	for _, a := range h.p.Alerts() {
		if a.Status == "firing" {
			v.Incidents = append(v.Incidents, a)
		}
	}
	sort.SliceStable(v.Incidents, func(a, b int) bool { return sevRank(v.Incidents[a]) < sevRank(v.Incidents[b]) })
	regions := map[string]bool{}
	for _, r := range s.Regions {
		regions[r] = true
	}
	for r := range s.Members {
		regions[r] = true
	}
	for _, r := range sortedSet(regions) {
		v.Fleet = append(v.Fleet, fleetRegion{Region: r, Probers: s.Members[r]})
	}
	v.Healthy = len(v.Incidents) == 0
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	if err := h.page.Execute(w, v); err != nil {
		http.Error(w, "render failed", http.StatusInternalServerError)
	}
}

func sevRank(a Alert) int {
	switch a.Labels["severity"] {
	case "critical":
		return 0
	case "warning":
		return 1
	}
	return 2
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return itoa(int(d/time.Second)) + "s ago"
	case d < time.Hour:
		return itoa(int(d/time.Minute)) + "m ago"
	case d < 48*time.Hour:
		return itoa(int(d/time.Hour)) + "h ago"
	}
	return itoa(int(d/(24*time.Hour))) + "d ago"
}

func itoa(n int) string { return strconv.Itoa(n) }

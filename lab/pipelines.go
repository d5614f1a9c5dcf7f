package lab

// This file is the core shared by the three CI simulators (Bitbucket
// Pipelines in pipelines_bitbucket.go, GitHub Actions in pipelines_github.go,
// GitLab CI in pipelines_gitlab.go): the run state machine driven by a clock,
// the configuration that tests change at runtime, request budgets (429),
// authentication and faults. Each simulator renders the runs in its
// product's JSON shape, following ../shared/reference/bitbucket-and-ci-apis.md.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CIOutcome is how a simulated run ends when nobody stops it, named as
// Bitbucket names its completed results. The GitHub and GitLab simulators
// map it to their own conclusions.
type CIOutcome string

// The outcomes of a simulated run.
const (
	CISuccessful CIOutcome = "SUCCESSFUL"
	CIFailed     CIOutcome = "FAILED"
	CIError      CIOutcome = "ERROR"
	CIStopped    CIOutcome = "STOPPED"
	CIExpired    CIOutcome = "EXPIRED"
)

// CIFault is a misbehaviour of a CI simulator's API, set at runtime.
type CIFault int

// The API faults.
const (
	// CIFaultNone answers normally.
	CIFaultNone CIFault = iota
	// CIFaultSilent accepts requests and never answers them (until the
	// client gives up or the simulator is closed).
	CIFaultSilent
	// CIFaultTruncated cuts every JSON body in half.
	CIFaultTruncated
	// CIFaultMalformed answers with a body that is not JSON.
	CIFaultMalformed
)

// CISimConfig configures a CI simulator. Zero values are usable: no auth
// budget, instant queue and run, success.
type CISimConfig struct {
	// Repository is the one repository the simulator serves: "ws/repo"
	// (Bitbucket), "owner/repo" (GitHub), a project path or ID (GitLab).
	Repository string
	// Token is the bearer token (or GitLab PRIVATE-TOKEN) every request must
	// carry. BasicUser and BasicPassword, when set, are also accepted.
	Token                    string
	BasicUser, BasicPassword string
	// QueueTime is how long a new run stays PENDING; RunTime how long it
	// then runs. Outcome is how it ends.
	QueueTime, RunTime time.Duration
	Outcome            CIOutcome
	// Steps names the run's steps (Bitbucket /steps/). Default build, test.
	Steps []string
	// TriggerDelay is how long after NotifyPush the pushed commit's run
	// appears.
	TriggerDelay time.Duration
	// RequestBudget is how many requests each BudgetWindow allows before
	// the simulator answers 429; 0 is unlimited. BudgetWindow defaults to 1h.
	RequestBudget int
	BudgetWindow  time.Duration
	// RetryAfter, when positive, is sent as Retry-After (whole seconds,
	// rounded up) with every 429.
	RetryAfter time.Duration
	// OmitStepDuration leaves duration_in_seconds out of Bitbucket steps,
	// as the published spec snapshot does.
	OmitStepDuration bool
	// NoRunDetails makes the GitHub simulator answer every dispatch with
	// 204 and no run, as GitHub did before "return_run_details".
	NoRunDetails bool
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// ciMaxRequestBody bounds a request body the simulators read.
const ciMaxRequestBody = 64 << 10

// ciRun is one simulated pipeline run. Its state is derived from the clock
// by advance, so a test clock can drive it without timers.
type ciRun struct {
	number    int64
	uuid      string // Bitbucket: "{…}"
	branch    string
	sha       string
	pattern   string // custom selector pattern or workflow
	push      bool   // started by a push rather than the API
	variables map[string]string
	created   time.Time // also when it becomes visible
	readyAt   time.Time // leaves PENDING at
	run       time.Duration
	outcome   CIOutcome
	steps     []string

	started, completed time.Time // zero until reached
	result             CIOutcome
}

// ciPhase is a run's coarse state.
type ciPhase int

const (
	ciPending ciPhase = iota
	ciRunning
	ciCompleted
)

func (r *ciRun) phase() ciPhase {
	switch {
	case !r.completed.IsZero():
		return ciCompleted
	case !r.started.IsZero():
		return ciRunning
	}
	return ciPending
}

// ciCore is the state every CI simulator shares. Its exported methods are
// the test and lab controls; they are safe for concurrent use.
type ciCore struct {
	mu       sync.Mutex
	cfg      CISimConfig
	runs     []*ciRun
	stops    []string
	fault    CIFault
	stall    bool
	winStart time.Time
	used     int
	limited  int
	released int
	admitted int
	closed   chan struct{}
	once     sync.Once
}

func newCICore(cfg CISimConfig) *ciCore {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Outcome == "" {
		cfg.Outcome = CISuccessful
	}
	if len(cfg.Steps) == 0 {
		cfg.Steps = []string{"build", "test"}
	}
	if cfg.BudgetWindow <= 0 {
		cfg.BudgetWindow = time.Hour
	}
	return &ciCore{cfg: cfg, closed: make(chan struct{})}
}

// SetOutcome sets how runs created from now on end.
func (c *ciCore) SetOutcome(o CIOutcome) {
	c.mu.Lock()
	c.cfg.Outcome = o
	c.mu.Unlock()
}

// SetTimes sets the queue and run times of runs created from now on.
func (c *ciCore) SetTimes(queue, run time.Duration) {
	c.mu.Lock()
	c.cfg.QueueTime, c.cfg.RunTime = queue, run
	c.mu.Unlock()
}

// SetTriggerDelay sets how long after NotifyPush a push's run appears.
func (c *ciCore) SetTriggerDelay(d time.Duration) {
	c.mu.Lock()
	c.cfg.TriggerDelay = d
	c.mu.Unlock()
}

// SetQueueStall holds every pending run in PENDING while on. When turned
// off, stalled runs leave the queue no earlier than now.
func (c *ciCore) SetQueueStall(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	for _, r := range c.runs {
		c.advance(r, now)
	}
	c.stall = on
	if !on {
		for _, r := range c.runs {
			if r.phase() == ciPending && r.readyAt.Before(now) {
				r.readyAt = now
			}
		}
	}
}

// SetFault sets the API's fault (CIFaultNone to heal it).
func (c *ciCore) SetFault(f CIFault) {
	c.mu.Lock()
	c.fault = f
	c.mu.Unlock()
}

// SetRequestBudget allows n requests per window (0: unlimited) and starts a
// new window.
func (c *ciCore) SetRequestBudget(n int, window time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg.RequestBudget = n
	if window > 0 {
		c.cfg.BudgetWindow = window
	}
	c.winStart, c.used = c.cfg.Now(), 0
}

// NotifyPush starts a run for a commit pushed to branch, as the product
// does on push, visible TriggerDelay later. The lab's git server calls it
// for every branch update; a deletion (an all-zero sha) starts nothing.
func (c *ciCore) NotifyPush(branch, sha string) {
	if strings.Trim(sha, "0") == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.newRun(branch, sha, "", nil, c.cfg.TriggerDelay)
	r.push = true
}

// Stops returns the IDs of the runs stopped through the API, in order
// (Bitbucket UUIDs with braces, GitHub and GitLab numeric IDs).
func (c *ciCore) Stops() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.stops...)
}

// Runs returns how many runs exist, including ones not yet visible.
func (c *ciCore) Runs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.runs)
}

// RateLimited returns how many requests were answered 429.
func (c *ciCore) RateLimited() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.limited
}

// Abandoned returns how many requests held by CIFaultSilent ended because
// the client went away (rather than the simulator closing).
func (c *ciCore) Abandoned() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.released
}

// Requests returns how many requests passed faults, budget and auth.
func (c *ciCore) Requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.admitted
}

// Close releases every request held by CIFaultSilent.
func (c *ciCore) Close() {
	c.once.Do(func() { close(c.closed) })
}

// newRun records a run; the caller holds mu.
func (c *ciCore) newRun(branch, sha, pattern string, vars map[string]string, delay time.Duration) *ciRun {
	now := c.cfg.Now()
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	if sha == "" {
		sum := make([]byte, 20)
		_, _ = rand.Read(sum)
		sha = hex.EncodeToString(sum)
	}
	r := &ciRun{
		number:    int64(len(c.runs) + 1),
		uuid:      "{" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32] + "}",
		branch:    branch,
		sha:       sha,
		pattern:   pattern,
		variables: vars,
		created:   now.Add(delay),
		run:       c.cfg.RunTime,
		outcome:   c.cfg.Outcome,
		steps:     append([]string(nil), c.cfg.Steps...),
	}
	r.readyAt = r.created.Add(c.cfg.QueueTime)
	c.runs = append(c.runs, r)
	return r
}

// advance moves r along its state machine up to now; the caller holds mu.
func (c *ciCore) advance(r *ciRun, now time.Time) {
	if r.phase() == ciPending && !c.stall && !now.Before(r.readyAt) {
		r.started = r.readyAt
	}
	if r.phase() == ciRunning && !now.Before(r.started.Add(r.run)) {
		r.completed, r.result = r.started.Add(r.run), r.outcome
	}
}

// visible returns the runs that exist at now, advanced; the caller holds mu.
func (c *ciCore) visible(now time.Time) []*ciRun {
	var out []*ciRun
	for _, r := range c.runs {
		if !now.Before(r.created) {
			c.advance(r, now)
			out = append(out, r)
		}
	}
	return out
}

// stop stops r at now and records it; it reports false when r had
// already completed. The caller holds mu.
func (c *ciCore) stop(r *ciRun, id string, now time.Time) bool {
	c.advance(r, now)
	if r.phase() == ciCompleted {
		return false
	}
	r.completed, r.result = now, CIStopped
	c.stops = append(c.stops, id)
	return true
}

// admit applies faults, the request budget and authentication. It returns
// false when it has answered the request itself. limitHeaders are the
// product's rate-limit headers; deny writes the product's 401 or 429.
func (c *ciCore) admit(w http.ResponseWriter, r *http.Request, authOK func(*http.Request, CISimConfig) bool,
	deny func(w http.ResponseWriter, status int, msg string), limitHeaders func(h http.Header, limit int)) bool {
	c.mu.Lock()
	fault := c.fault
	cfg := c.cfg
	c.mu.Unlock()
	if fault == CIFaultSilent {
		// Read the body first: only then does net/http watch the connection
		// and cancel the request's context when the client goes away.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, ciMaxRequestBody))
		select {
		case <-r.Context().Done():
			c.mu.Lock()
			c.released++
			c.mu.Unlock()
		case <-c.closed:
		}
		return false
	}
	if cfg.RequestBudget > 0 {
		c.mu.Lock()
		now := c.cfg.Now()
		if c.winStart.IsZero() || now.Sub(c.winStart) >= c.cfg.BudgetWindow {
			c.winStart, c.used = now, 0
		}
		c.used++
		over := c.used > c.cfg.RequestBudget
		near := c.used*5 >= c.cfg.RequestBudget*4
		if over {
			c.limited++
		}
		c.mu.Unlock()
		limitHeaders(w.Header(), cfg.RequestBudget)
		if near {
			w.Header().Set("X-RateLimit-NearLimit", "true")
		}
		if over {
			if cfg.RetryAfter > 0 {
				secs := int((cfg.RetryAfter + time.Second - 1) / time.Second)
				w.Header().Set("Retry-After", strconv.Itoa(secs))
			}
			deny(w, http.StatusTooManyRequests, "Rate limit for this resource has been exceeded")
			return false
		}
	}
	if !authOK(r, cfg) {
		deny(w, http.StatusUnauthorized, "Authentication failed")
		return false
	}
	c.mu.Lock()
	c.admitted++
	c.mu.Unlock()
	return true
}

// bearerOrBasic accepts the configured bearer token or basic credentials.
func bearerOrBasic(r *http.Request, cfg CISimConfig) bool {
	if cfg.Token != "" && r.Header.Get("Authorization") == "Bearer "+cfg.Token {
		return true
	}
	if u, p, ok := r.BasicAuth(); ok && cfg.BasicPassword != "" && u == cfg.BasicUser && p == cfg.BasicPassword {
		return true
	}
	return cfg.Token == "" && cfg.BasicPassword == ""
}

// writeJSON writes v with status, damaged as the current fault says.
func (c *ciCore) writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	c.mu.Lock()
	fault := c.fault
	c.mu.Unlock()
	switch fault {
	case CIFaultTruncated:
		body = body[:len(body)/2]
	case CIFaultMalformed:
		body = []byte("<html><body>502 Bad Gateway</body></html>")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// readBody decodes a bounded JSON request body into v.
func ciReadBody(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, ciMaxRequestBody+1))
	if err != nil {
		return err
	}
	if len(b) > ciMaxRequestBody {
		return errBodyTooLarge
	}
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, v)
}

type ciError string

func (e ciError) Error() string { return string(e) }

const errBodyTooLarge = ciError("request body too large")

// ciTime formats a time as the APIs do; the zero time is omitted (nil).
func ciTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ciPage reads page and pagelen (1-based page, pagelen ≤ max).
func ciPage(r *http.Request, def, max int) (page, pagelen int, msg string) {
	page, pagelen = 1, def
	if v := r.URL.Query().Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, "page must be a positive integer"
		}
		page = n
	}
	if v := r.URL.Query().Get("pagelen"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > max {
			return 0, 0, "pagelen must be between 1 and " + strconv.Itoa(max)
		}
		pagelen = n
	}
	return page, pagelen, ""
}

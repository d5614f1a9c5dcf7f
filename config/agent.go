// Package config owns the TOML schema of the prober and the aggregator, its
// defaults (in one place, Defaults), strict decoding, secret references and
// validation. The structs below are the documentation: every field says
// what it does, its unit and its default. It does no network I/O.
package config

// Config is a prober agent's whole configuration file.
type Config struct {
	// Agent describes this prober.
	Agent Agent `toml:"agent"`
	// Gossip configures fleet membership; without it the agent runs alone,
	// owning every journey of its region.
	Gossip *Gossip `toml:"gossip"`
	// Export lists where Results go; each export keeps its own position.
	Export []Export `toml:"export"`
	// Defaults supplies journey fields that a journey leaves unset.
	Defaults JourneyDefaults `toml:"defaults"`
	// Journey lists the journeys this agent may run.
	Journey []Journey `toml:"journey"`

	// path is the file the config came from, for messages.
	path string
	// secrets holds every resolved secret value, for redaction.
	secrets []string
}

// Path returns the file the config was loaded from.
func (c *Config) Path() string { return c.path }

// SecretValues returns every resolved secret, for report.NewRedactor.
func (c *Config) SecretValues() []string { return append([]string(nil), c.secrets...) }

// Agent describes the prober itself.
type Agent struct {
	// Name identifies the agent in results and gossip; it must be stable
	// across restarts. Default: the host name.
	Name string `toml:"name"`
	// Region is where the agent runs ("eu-west", "us-east"). Required.
	Region string `toml:"region"`
	// DataDir holds the spool and journey caches. Default: "/var/lib/vantage".
	DataDir string `toml:"data_dir"`
	// Listen is the address of /healthz, /readyz and /metrics. Default
	// "127.0.0.1:9464"; "" disables the endpoints.
	Listen string `toml:"listen"`
	// MaxConcurrent bounds journeys running at once on this agent. Default 16.
	MaxConcurrent int `toml:"max_concurrent"`
	// StopGrace is how long a stop waits for runs in flight. Default "30s".
	StopGrace Duration `toml:"stop_grace"`
}

// JourneyDefaults are applied to every journey that leaves a field unset.
type JourneyDefaults struct {
	Schedule string   `toml:"schedule"`
	Timeout  Duration `toml:"timeout"`
	Mode     string   `toml:"mode"`
	Runbook  string   `toml:"runbook"`
}

// Journey modes.
const (
	ModeOnePerRegion = "one-per-region"
	ModeEveryAgent   = "every-agent"
)

// Journey is one configured user journey. Exactly the sub-table of its kind
// is set ([journey.http], [journey.git], …).
type Journey struct {
	// Name is unique in the fleet; it names the journey in results and alerts.
	Name string `toml:"name"`
	// Kind selects the implementation: "http", "git", "hg" or "pipelines".
	Kind string `toml:"kind"`
	// Schedule is a cron expression (seconds optional, UTC) or "@every 30s".
	Schedule string `toml:"schedule"`
	// Timeout is the journey's deadline; it must not exceed the interval.
	Timeout Duration `toml:"timeout"`
	// Mode is "one-per-region" (default: one live agent per region runs it)
	// or "every-agent".
	Mode string `toml:"mode"`
	// Components name the product parts the journey exercises; journeys
	// that share one and fail together form one incident.
	Components []string `toml:"components"`
	// Runbook is the URL put in this journey's alerts.
	Runbook string `toml:"runbook"`
	// Disabled keeps the journey in the file without running it.
	Disabled bool `toml:"disabled"`

	HTTP      *HTTPJourney      `toml:"http"`
	Git       *GitJourney       `toml:"git"`
	Hg        *HgJourney        `toml:"hg"`
	Pipelines *PipelinesJourney `toml:"pipelines"`

	// Interval is the schedule's nominal interval, computed at load.
	Interval Duration `toml:"-"`
}

// Kinds lists the journey kinds the schema knows.
var Kinds = []string{"http", "git", "hg", "pipelines"}

package config

import (
	"fmt"
	"os"
	"strings"

	"github.com/vantage-fleet/vantage/pkg/schedule"
)

// Built-in defaults, in one place.
const (
	DefaultDataDir       = "/var/lib/vantage"
	DefaultListen        = "127.0.0.1:9464"
	DefaultMaxConcurrent = 16
	DefaultSchedule      = "@every 1m"
	DefaultMode          = ModeOnePerRegion
)

// Default timings.
var (
	DefaultStopGrace = Dur(30e9)
	DefaultTimeout   = Dur(30e9)
)

// Load reads, decodes, defaults, resolves and validates a prober config.
// On failure the error is Problems (every problem, FILE:LINE: KEY: message)
// or a plain error when the file cannot be read at all.
func Load(path string) (*Config, error) {
	return load(path, os.LookupEnv)
}

// LoadBytes is Load for a config held in memory; name is used in messages.
func LoadBytes(name string, b []byte, lookup func(string) (string, bool)) (*Config, error) {
	var c Config
	if len(b) > maxConfigBytes {
		return nil, fmt.Errorf("%s: config is larger than %d bytes", name, maxConfigBytes)
	}
	p, err := decodeBytes(name, b, &c)
	if err != nil {
		return nil, err
	}
	return finish(&c, name, p, lookup)
}

func load(path string, lookup func(string) (string, bool)) (*Config, error) {
	var c Config
	p, err := decodeFile(path, &c)
	if err != nil {
		return nil, err
	}
	return finish(&c, path, p, lookup)
}

func finish(c *Config, path string, p *problems, lookup func(string) (string, bool)) (*Config, error) {
	c.path = path
	var err error
	c.secrets, err = complete(c, p, lookup)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// loadable is a decoded config file: the prober's or the aggregator's.
type loadable interface {
	applyDefaults()
	validate(p *problems)
}

// complete applies defaults, resolves secrets and validates c, in that
// order; it returns the resolved secret values, or every problem found.
func complete(c loadable, p *problems, lookup func(string) (string, bool)) ([]string, error) {
	c.applyDefaults()
	secrets := resolveSecrets(c, p, lookup)
	c.validate(p)
	return secrets, p.err()
}

func (c *Config) applyDefaults() {
	a := &c.Agent
	if a.Name == "" {
		a.Name, _ = os.Hostname()
	}
	if a.DataDir == "" {
		a.DataDir = DefaultDataDir
	}
	if a.MaxConcurrent == 0 {
		a.MaxConcurrent = DefaultMaxConcurrent
	}
	if a.StopGrace.IsZero() {
		a.StopGrace = DefaultStopGrace
	}
	for i := range c.Export {
		if c.Export[i].Name == "" {
			c.Export[i].Name = fmt.Sprintf("%s-%d", c.Export[i].Type, i)
		}
	}
	d := c.Defaults
	if d.Schedule == "" {
		d.Schedule = DefaultSchedule
	}
	if d.Timeout.IsZero() {
		d.Timeout = DefaultTimeout
	}
	if d.Mode == "" {
		d.Mode = DefaultMode
	}
	for i := range c.Journey {
		j := &c.Journey[i]
		if j.Schedule == "" {
			j.Schedule = d.Schedule
		}
		if j.Timeout.IsZero() {
			j.Timeout = d.Timeout
		}
		if j.Mode == "" {
			j.Mode = d.Mode
		}
		if j.Runbook == "" {
			j.Runbook = d.Runbook
		}
	}
	if c.Gossip != nil {
		c.Gossip.applyDefaults()
		c.Gossip.defaultName(a.Name)
	}
}

func (c *Config) validate(p *problems) {
	if strings.TrimSpace(c.Agent.Region) == "" {
		p.add("agent.region", "is required and must not be empty")
	}
	if c.Agent.Name == "" {
		p.add("agent.name", "is required (no host name to default to)")
	}
	if c.Agent.MaxConcurrent < 0 {
		p.add("agent.max_concurrent", "must be positive")
	}
	for i := range c.Export {
		c.Export[i].validate(p, fmt.Sprintf("export[%d]", i))
	}
	validateExportNames(p, c.Export)
	if c.Gossip != nil {
		c.Gossip.validate(p, "gossip")
	}
	names := map[string]int{}
	for i := range c.Journey {
		j := &c.Journey[i]
		key := fmt.Sprintf("journey[%d]", i)
		if j.Name == "" {
			p.add(key+".name", "is required")
		} else if first, dup := names[j.Name]; dup {
			p.add(key+".name", fmt.Sprintf("duplicate journey name %q (first defined as journey[%d])", j.Name, first))
		} else {
			names[j.Name] = i
		}
		j.validate(p, key)
	}
}

func (j *Journey) validate(p *problems, key string) {
	known := false
	for _, k := range Kinds {
		known = known || j.Kind == k
	}
	if j.Kind == "" {
		p.add(key+".kind", "is required ("+strings.Join(Kinds, ", ")+")")
	} else if !known {
		p.add(key+".kind", fmt.Sprintf("unknown kind %q (want one of %s)", j.Kind, strings.Join(Kinds, ", ")))
	}
	if j.Mode != ModeOnePerRegion && j.Mode != ModeEveryAgent {
		p.add(key+".mode", fmt.Sprintf("unknown mode %q (want %q or %q)", j.Mode, ModeOnePerRegion, ModeEveryAgent))
	}
	s, err := schedule.Parse(j.Schedule)
	if err != nil {
		p.add(key+".schedule", err.Error())
	} else {
		j.Interval = Dur(s.Interval())
		if j.Timeout.D > s.Interval() {
			p.add(key+".timeout", fmt.Sprintf("timeout %s is longer than the schedule interval %s", j.Timeout.D, s.Interval()))
		}
	}
	if j.Timeout.D == 0 && j.Timeout.problem() == "" {
		p.add(key+".timeout", "must be positive")
	}
	for _, c := range j.Components {
		if strings.TrimSpace(c) == "" {
			p.add(key+".components", "component names must not be empty")
		}
	}
	subs := map[string]bool{"http": j.HTTP != nil, "git": j.Git != nil, "hg": j.Hg != nil, "pipelines": j.Pipelines != nil}
	for kind, set := range subs {
		if set && kind != j.Kind {
			p.add(key+"."+kind, fmt.Sprintf("[journey.%s] given for a journey of kind %q", kind, j.Kind))
		}
	}
	if known && !subs[j.Kind] {
		p.add(key, fmt.Sprintf("kind %q needs a [journey.%s] table", j.Kind, j.Kind))
	}
	switch {
	case j.HTTP != nil && j.Kind == "http":
		j.HTTP.validate(p, key+".http", j)
	case j.Git != nil && j.Kind == "git":
		j.Git.validate(p, key+".git", j)
	case j.Hg != nil && j.Kind == "hg":
		j.Hg.validate(p, key+".hg", j)
	case j.Pipelines != nil && j.Kind == "pipelines":
		j.Pipelines.validate(p, key+".pipelines", j)
	}
}

func (e *Export) validate(p *problems, key string) {
	switch e.Type {
	case "jsonl":
	case "":
		p.add(key+".type", "is required (\"jsonl\" or \"otlp\")")
	default:
		if !e.validateKind(p, key) {
			p.add(key+".type", fmt.Sprintf("unknown export type %q (want \"jsonl\" or \"otlp\")", e.Type))
		}
	}
}

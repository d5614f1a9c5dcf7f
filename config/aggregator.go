package config

import (
	"os"
)

// AggregatorConfig is the aggregator's whole configuration file.
type AggregatorConfig struct {
	// Aggregator describes this aggregator.
	Aggregator AggregatorSection `toml:"aggregator"`
	// Ingest configures the OTLP receivers (see config/ingest.go).
	Ingest Ingest `toml:"ingest"`
	// Gossip joins the fleet as role "aggregator" to learn which probers
	// are alive; without it "blind" and "results missing" cannot be told apart.
	Gossip *Gossip `toml:"gossip"`
	// Verdict holds the classification thresholds (see config/verdict.go).
	Verdict Verdict `toml:"verdict"`
	// Alerts configures the notification sinks (see config/alerts.go).
	Alerts Alerts `toml:"alerts"`

	path    string
	secrets []string
}

// AggregatorSection describes the aggregator itself.
type AggregatorSection struct {
	// Name identifies this aggregator in gossip and metrics. Default: host name.
	Name string `toml:"name"`
	// DataDir holds the durable state (dedup window, verdicts, open alerts).
	// Default "/var/lib/vantage-aggregator".
	DataDir string `toml:"data_dir"`
	// Listen serves the status page, the JSON API and /metrics. Default "127.0.0.1:8080".
	Listen string `toml:"listen"`
	// APIToken, when set, is required as a bearer token by the HTTP endpoints.
	APIToken Secret `toml:"api_token"`
}

// Path returns the file the config was loaded from.
func (c *AggregatorConfig) Path() string { return c.path }

// SecretValues returns every resolved secret, for report.NewRedactor.
func (c *AggregatorConfig) SecretValues() []string { return append([]string(nil), c.secrets...) }

// LoadAggregator reads, decodes, defaults, resolves and validates an
// aggregator config, like Load.
func LoadAggregator(path string) (*AggregatorConfig, error) {
	var c AggregatorConfig
	p, err := decodeFile(path, &c)
	if err != nil {
		return nil, err
	}
	return c.finish(path, p, os.LookupEnv)
}

// LoadAggregatorBytes is LoadAggregator for a config held in memory.
func LoadAggregatorBytes(name string, b []byte, lookup func(string) (string, bool)) (*AggregatorConfig, error) {
	var c AggregatorConfig
	p, err := decodeBytes(name, b, &c)
	if err != nil {
		return nil, err
	}
	return c.finish(name, p, lookup)
}

func (c *AggregatorConfig) finish(path string, p *problems, lookup func(string) (string, bool)) (*AggregatorConfig, error) {
	c.path = path
	var err error
	c.secrets, err = complete(c, p, lookup)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (c *AggregatorConfig) applyDefaults() {
	a := &c.Aggregator
	if a.Name == "" {
		a.Name, _ = os.Hostname()
	}
	if a.DataDir == "" {
		a.DataDir = "/var/lib/vantage-aggregator"
	}
	if a.Listen == "" {
		a.Listen = "127.0.0.1:8080"
	}
	c.Ingest.applyDefaults()
	if c.Gossip != nil {
		c.Gossip.applyDefaults()
		c.Gossip.defaultName(a.Name)
	}
	c.Verdict.applyDefaults()
	c.Alerts.applyDefaults()
}

func (c *AggregatorConfig) validate(p *problems) {
	c.Ingest.validate(p, "ingest")
	if c.Gossip != nil {
		c.Gossip.validate(p, "gossip")
	}
	c.Verdict.validate(p, "verdict")
	c.Alerts.validate(p, "alerts")
}

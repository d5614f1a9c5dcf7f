package config

// Alerts configures the aggregator's notification sinks.
type Alerts struct{}

func (a *Alerts) applyDefaults()                   {}
func (a *Alerts) validate(p *problems, key string) {}

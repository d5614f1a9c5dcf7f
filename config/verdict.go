package config

// Verdict holds the aggregator's classification thresholds.
type Verdict struct{}

func (v *Verdict) applyDefaults()                   {}
func (v *Verdict) validate(p *problems, key string) {}

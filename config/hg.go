package config

// HgJourney configures a kind = "hg" journey ([journey.hg]).
type HgJourney struct {
	// URL is the Mercurial repository over http(s).
	URL string `toml:"url"`
}

func (h *HgJourney) validate(p *problems, key string, j *Journey) {
	if h.URL == "" {
		p.add(key+".url", "is required")
	}
}

package config

// GitJourney configures a kind = "git" journey ([journey.git]).
type GitJourney struct {
	// URL is the repository to clone: https://… or ssh://….
	URL string `toml:"url"`
}

func (g *GitJourney) validate(p *problems, key string, j *Journey) {
	if g.URL == "" {
		p.add(key+".url", "is required")
	}
}

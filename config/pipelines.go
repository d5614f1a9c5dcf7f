package config

// PipelinesJourney configures a kind = "pipelines" journey ([journey.pipelines]).
type PipelinesJourney struct {
	// Provider is "bitbucket" (default), "github" or "gitlab".
	Provider string `toml:"provider"`
}

func (pj *PipelinesJourney) validate(p *problems, key string, j *Journey) {}

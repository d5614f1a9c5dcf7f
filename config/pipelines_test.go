package config

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

const pipelinesBase = `
[agent]
name = "eu-1"
region = "eu"

[[journey]]
name = "build"
kind = "pipelines"
schedule = "@every 5m"
timeout = "4m"
[journey.pipelines]
repository = "acme/app"
pipeline = "probe-pipeline"
bearer_token = "env:BB_TOKEN"
`

func TestPipelines_DefaultsApplied(t *testing.T) {
	c, err := LoadBytes("p.toml", []byte(pipelinesBase), env(map[string]string{"BB_TOKEN": "tok-canary"}))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Journey[0].Pipelines
	if p.Provider != PipelinesBitbucket || p.Mode != PipelinesModeTrigger || p.APIURL != "https://api.bitbucket.org" ||
		p.WebURL != "https://bitbucket.org" || p.Branch != "main" || p.PollInterval.D != 2*time.Second ||
		p.MaxPollInterval.D != 15*time.Second || p.RequestTimeout.D != 10*time.Second || p.StopTimeout.D != 5*time.Second ||
		p.RateLimitRetries != 5 || p.MaxBodyBytes != 1<<20 || p.BranchPrefix != "vantage-probe/" || p.PushUser != "x-token-auth" {
		t.Fatalf("defaults not applied: %+v", p)
	}
	if p.BearerToken.Value() != "tok-canary" {
		t.Fatal("token not resolved")
	}
}

func TestPipelines_Problems(t *testing.T) {
	cases := []struct{ name, extra, want string }{
		{"unknown provider", `provider = "jenkins"`, `journey[0].pipelines.provider: unknown provider "jenkins"`},
		{"unknown mode", `mode = "poll"`, `journey[0].pipelines.mode: unknown mode "poll"`},
		{"push needs a URL", `mode = "push"`, `journey[0].pipelines.push_url: is required with mode = "push"`},
		{"push URL without credentials", "mode = \"push\"\npush_url = \"https://u:p@git.example/a.git\"", `push_url: must not carry credentials`},
		{"ssh push needs a key and host verification", "mode = \"push\"\npush_url = \"ssh://git@git.example/a.git\"",
			`journey[0].pipelines.push_ssh_key_file: is required for an ssh:// push_url`},
		{"ssh push needs host verification", "mode = \"push\"\npush_url = \"ssh://git@git.example/a.git\"\npush_ssh_key_file = \"/k\"",
			`journey[0].pipelines.push_known_hosts: push_host_key or push_known_hosts is required`},
		{"poll longer than max", `poll_interval = "20s"`, `journey[0].pipelines.poll_interval: 20s is longer than max_poll_interval 15s`},
		{"bad api url", `api_url = "api.bitbucket.org"`, `journey[0].pipelines.api_url: must be an absolute http:// or https:// URL`},
		{"both auths", "basic_user = \"u\"\nbasic_password = \"env:BB_TOKEN\"", `journey[0].pipelines.bearer_token: set either a bearer token or basic auth, not both`},
		{"credentials in api url", `api_url = "https://u:p@api.bitbucket.org"`, `journey[0].pipelines.api_url: must not carry credentials`},
		{"integer duration", `stop_timeout = 5`, `journey[0].pipelines.stop_timeout: duration must be a string`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadBytes("p.toml", []byte(pipelinesBase+tc.extra+"\n"), env(map[string]string{"BB_TOKEN": "tok-canary"}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
			if strings.Contains(err.Error(), "tok-canary") {
				t.Fatalf("secret in error: %v", err)
			}
		})
	}
	src := strings.Replace(pipelinesBase, `repository = "acme/app"`, `repository = "acme"`, 1)
	src = strings.Replace(src, `bearer_token = "env:BB_TOKEN"`, ``, 1) + "provider = \"github\"\npipeline = \"\"\n"
	_, err := LoadBytes("p.toml", []byte(strings.Replace(src, `pipeline = "probe-pipeline"`, ``, 1)), env(nil))
	for _, want := range []string{`repository: must be "owner/repo"`, `pipeline: is required for GitHub`, `bearer_token: pipelines need credentials`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("want %q among all problems, got %v", want, err)
		}
	}
}

func TestExamples_PipelinesJourneysAreValid(t *testing.T) {
	for _, name := range []string{"examples/local.toml", "examples/bitbucket-cloud.toml"} {
		if _, err := os.Stat(name); err != nil {
			continue
		}
		_, err := load(name, func(string) (string, bool) { return "dummy-secret-value", true })
		var ps Problems
		if err != nil && !errors.As(err, &ps) {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range ps {
			if strings.Contains(p.Key, ".pipelines") {
				t.Errorf("%s", p)
			}
		}
	}
}

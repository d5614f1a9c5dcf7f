package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func loadHg(t *testing.T, table string) (*Config, error) {
	t.Helper()
	src := `
[agent]
name = "a"
region = "eu"
[[journey]]
name = "hg"
kind = "hg"
timeout = "20s"
schedule = "@every 1m"
[journey.hg]
` + table
	return LoadBytes("t.toml", []byte(src), func(k string) (string, bool) {
		if k == "HG_PASSWORD" {
			return "canary-secret", true
		}
		return "", false
	})
}

func TestHgJourney_Minimal_GetsDefaults(t *testing.T) {
	c, err := loadHg(t, `url = "https://hg.example.com/scratch"`)
	if err != nil {
		t.Fatal(err)
	}
	h := c.Journey[0].Hg
	if h.Driver != "native" || !*h.Verify || h.MaxChangesets != DefaultHgMaxChangesets ||
		h.VerifyTimeout.D.Seconds() != 10 || h.ProbeFile != DefaultHgProbeFile || *h.PushRetries != DefaultHgPushRetries {
		t.Fatalf("defaults not applied: %+v", h)
	}
}

func TestHgJourney_BadFields_AreReportedByKey(t *testing.T) {
	_, err := loadHg(t, `
url = "https://me:pw@hg.example.com/x?y=1"
driver = "python"
push = true
verify_timeout = "30s"
password = "env:HG_PASSWORD"
max_changesets = -1
push_retries = -1
`)
	if err == nil {
		t.Fatal("want problems")
	}
	for _, want := range []string{"journey[0].hg.url: must not carry credentials", "must not have a query",
		"journey[0].hg.driver", "journey[0].hg.verify_timeout", "journey[0].hg.password: is set but user is empty",
		"journey[0].hg.max_changesets", "journey[0].hg.push_retries: must be between 0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "canary-secret") {
		t.Fatal("secret value leaked into a config problem")
	}
}

func TestHgJourney_PasswordSecret_IsResolved(t *testing.T) {
	c, err := loadHg(t, `
url = "http://127.0.0.1:8000/"
user = "probe"
password = "env:HG_PASSWORD"
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Journey[0].Hg.Password.Value() != "canary-secret" {
		t.Fatal("password not resolved")
	}
}

func TestExamples_HgJourneysAreValid(t *testing.T) {
	for _, name := range []string{"examples/local.toml", "examples/self-hosted.toml", "examples/bitbucket-cloud.toml"} {
		if _, err := os.Stat(name); err != nil {
			continue
		}
		c, err := load(name, func(string) (string, bool) { return "dummy-secret-value", true })
		var ps Problems
		if err != nil && !errors.As(err, &ps) {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range ps {
			if strings.Contains(p.Key, ".hg") {
				t.Errorf("%s", p)
			}
		}
		if c != nil && name != "examples/bitbucket-cloud.toml" {
			found := false
			for _, j := range c.Journey {
				found = found || j.Kind == "hg"
			}
			if !found {
				t.Errorf("%s: no hg journey", name)
			}
		}
	}
}

func TestHgJourney_PushRetriesZero_DisablesRetries(t *testing.T) {
	c, err := loadHg(t, "url = \"https://hg.example.com/scratch\"\npush_retries = 0")
	if err != nil {
		t.Fatal(err)
	}
	if got := *c.Journey[0].Hg.PushRetries; got != 0 {
		t.Fatalf("push_retries = %d, want the explicit 0", got)
	}
}

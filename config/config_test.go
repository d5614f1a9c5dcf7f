package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const good = `
[agent]
name = "eu-1"
region = "eu"
data_dir = "/tmp/v"

[defaults]
schedule = "@every 30s"
timeout = "10s"

[[export]]
type = "jsonl"
path = "-"

[[journey]]
name = "api"
kind = "http"
components = ["https-edge"]
[journey.http]
bearer_token = "env:TOKEN"
[[journey.http.step]]
url = "https://api.example.com/2.0/user"
expect_status = [200]
`

func TestLoad_ValidConfigAppliesDefaults(t *testing.T) {
	c, err := LoadBytes("good.toml", []byte(good), env(map[string]string{"TOKEN": "tok-canary-123"}))
	if err != nil {
		t.Fatal(err)
	}
	j := c.Journey[0]
	if j.Schedule != "@every 30s" || j.Timeout.D.String() != "10s" || j.Mode != ModeOnePerRegion {
		t.Fatalf("defaults not applied: %+v", j)
	}
	if j.Interval.D.String() != "30s" {
		t.Fatalf("interval = %s", j.Interval.D)
	}
	if j.HTTP.BearerToken.Value() != "tok-canary-123" {
		t.Fatal("secret not resolved")
	}
	if got := c.SecretValues(); len(got) != 1 || got[0] != "tok-canary-123" {
		t.Fatalf("SecretValues = %v", got)
	}
}

func TestLoad_Problems(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string // each must appear, in order, in the error
	}{
		{"unknown key", good + "bogus = 1\n", []string{"good.toml:24: journey[0].http.step[0].bogus: unknown key"}},
		{"unknown top-level table key", strings.Replace(good, `data_dir = "/tmp/v"`, "data_dir = \"/tmp/v\"\ncolour = \"red\"", 1),
			[]string{"good.toml:6: agent.colour: unknown key"}},
		{"integer duration", strings.Replace(good, `timeout = "10s"`, "timeout = 10", 1),
			[]string{`good.toml:9: defaults.timeout: duration must be a string such as "10s", not the integer 10 (which would mean 10 nanoseconds)`}},
		{"missing secret names the reference", good, []string{"good.toml:20: journey[0].http.bearer_token: secret env:TOKEN: environment variable TOKEN is not set"}},
		{"inline secret", strings.Replace(good, `"env:TOKEN"`, `"hunter2hunter2"`, 1),
			[]string{`journey[0].http.bearer_token: secret must be a reference "env:NAME" or "file:/path"; inline secrets are not accepted`}},
		{"empty region", strings.Replace(good, `region = "eu"`, `region = ""`, 1), []string{"good.toml:4: agent.region: is required and must not be empty"}},
		{"unknown kind", strings.Replace(good, `kind = "http"`, `kind = "ftp"`, 1),
			[]string{`good.toml:17: journey[0].kind: unknown kind "ftp" (want one of http, git, hg, pipelines)`}},
		{"timeout over interval", strings.Replace(good, `timeout = "10s"`, `timeout = "45s"`, 1),
			[]string{"journey[0].timeout: timeout 45s is longer than the schedule interval 30s"}},
		{"bad schedule", strings.Replace(good, `schedule = "@every 30s"`, `schedule = "every day"`, 1),
			[]string{`journey[0].schedule: invalid cron expression "every day"`}},
		{"duplicate names, all problems at once", good + `
[[journey]]
name = "api"
kind = "http"
timeout = "1h"
[journey.http]
[[journey.http.step]]
url = "ftp://x"
`, []string{
			`good.toml:26: journey[1].name: duplicate journey name "api" (first defined as journey[0])`,
			"good.toml:28: journey[1].timeout: timeout 1h0m0s is longer than the schedule interval 30s",
			"good.toml:31: journey[1].http.step[0].url: must be an absolute http:// or https:// URL",
		}},
		{"bad HTTP method", strings.Replace(good, `expect_status = [200]`, "expect_status = [200]\nmethod = \"GE T\"", 1),
			[]string{`good.toml:24: journey[0].http.step[0].method: "GE T" is not an HTTP method (GET, POST, …)`}},
		{"syntax error", good + "x = [\n", []string{"good.toml:"}},
		{"wrong type", strings.Replace(good, `name = "eu-1"`, `name = 5`, 1), []string{"good.toml:3: agent.name: "}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lookup := env(map[string]string{"TOKEN": "x-canary"})
			if strings.Contains(tc.name, "missing secret") {
				lookup = env(nil)
			}
			_, err := LoadBytes("good.toml", []byte(tc.src), lookup)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			pos := 0
			for _, w := range tc.want {
				i := strings.Index(msg[pos:], w)
				if i < 0 {
					t.Fatalf("error lacks %q (in order):\n%s", w, msg)
				}
				pos += i + len(w)
			}
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error is not Problems: %T", err)
			}
		})
	}
}

func TestLoad_FileSecretAndCanaryNeverInErrors(t *testing.T) {
	dir := t.TempDir()
	sec := filepath.Join(dir, "tok")
	if err := os.WriteFile(sec, []byte("file-canary-xyz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(good, `"env:TOKEN"`, `"file:`+sec+`"`, 1)
	src = strings.Replace(src, `region = "eu"`, `region = ""`, 1) // force an error
	_, err := LoadBytes("c.toml", []byte(src), env(nil))
	if err == nil || strings.Contains(err.Error(), "file-canary") {
		t.Fatalf("want an error without the secret, got %v", err)
	}
	src = strings.Replace(src, `region = ""`, `region = "eu"`, 1)
	c, err := LoadBytes("c.toml", []byte(src), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if v := c.Journey[0].HTTP.BearerToken.Value(); v != "file-canary-xyz" {
		t.Fatalf("file secret = %q", v)
	}
}

func FuzzLoadBytes(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("[[journey]]\nname=1\n[journey.http]\n"))
	f.Add([]byte("a = \"\"\"\nx\n\"\"\"\n[b]\nc = [\n1,\n]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := LoadBytes("f.toml", b, env(map[string]string{"TOKEN": "t0k3n"}))
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
	})
}

func TestLoad_ScheduleForms(t *testing.T) {
	cases := map[string]string{
		`"@every 30s"`:     "30s",
		`"*/30 * * * * *"`: "30s",  // cron with a seconds field
		`"* * * * *"`:      "1m0s", // five fields: seconds omitted
		`"@hourly"`:        "1h0m0s",
	}
	for sched, interval := range cases {
		src := strings.Replace(good, `schedule = "@every 30s"`, "schedule = "+sched, 1)
		c, err := LoadBytes("s.toml", []byte(src), env(map[string]string{"TOKEN": "t0k3n"}))
		if err != nil {
			t.Errorf("%s: %v", sched, err)
			continue
		}
		if got := c.Journey[0].Interval.D.String(); got != interval {
			t.Errorf("%s: interval %s, want %s", sched, got, interval)
		}
	}
}

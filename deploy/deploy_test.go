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
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/lab/labtest"
	"github.com/vantage-fleet/vantage/pkg/fleet"
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
	for _, m := range []string{"vantage_journey_state{state=", "vantage_journey_duration_seconds_bucket", "vantage_step_duration_seconds_bucket", "cloud_region"} {
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

func TestDeploy_AmtoolAcceptsAlertmanagerConfig(t *testing.T) {
	amtool := labtest.NeedBinary(t, "amtool", "apt-get install -y prometheus-alertmanager")
	out, err := exec.Command(amtool, "check-config", "alertmanager/alertmanager.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("amtool: %v\n%s", err, out)
	}
}

// TestDeploy_ShippedTOMLValidates loads every shipped TOML the way `prober
// validate` and `aggregator validate` do. The gossip key file they name
// and TLS files exist only where they are deployed, so a copy points at
// test files; the env: secrets get dummy values.
func TestDeploy_ShippedTOMLValidates(t *testing.T) {
	tomls := files(t, ".toml")
	if len(tomls) < 6 {
		t.Fatalf("found only %d TOML files", len(tomls))
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "gossip.key")
	key, err := fleet.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, fleet.FormatKeys([][]byte{key}), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsDir := filepath.Join(dir, "tls")
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.crt", "tls.crt", "tls.key"} {
		if err := os.WriteFile(filepath.Join(tlsDir, f), []byte("placeholder for "+f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	envRef := regexp.MustCompile(`"env:([A-Z0-9_]+)"`)
	for _, p := range tomls {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range envRef.FindAllStringSubmatch(string(b), -1) {
			t.Setenv(m[1], "dummy-"+strings.ToLower(m[1]))
		}
		src := strings.ReplaceAll(string(b), "/etc/vantage/gossip/gossip.key", keyFile)
		src = strings.ReplaceAll(src, "/etc/vantage/tls/", tlsDir+"/")
		copyPath := filepath.Join(dir, strings.ReplaceAll(p, string(filepath.Separator), "_"))
		if err := os.WriteFile(copyPath, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(filepath.Base(p), "aggregator") {
			_, err = config.LoadAggregator(copyPath)
		} else {
			_, err = config.Load(copyPath)
		}
		if err != nil {
			t.Errorf("%s does not validate:\n%v", p, err)
		}
	}
}

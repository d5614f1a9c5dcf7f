package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func gossipConfig(t *testing.T, gossip string) (*Config, error) {
	t.Helper()
	return LoadBytes("g.toml", []byte("[agent]\nname = \"eu-1\"\nregion = \"eu\"\n\n[gossip]\n"+gossip), env(nil))
}

func keyFile(t *testing.T, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gossip.keys")
	if err := os.WriteFile(p, []byte("AAAAAAAAAAAAAAAAAAAAAA==\n"), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGossip_DefaultsApplied(t *testing.T) {
	c, err := gossipConfig(t, "fleet = \"prod\"\nkey_file = \""+keyFile(t, 0o600)+"\"\n")
	if err != nil {
		t.Fatal(err)
	}
	g := c.Gossip
	if g.Name != "eu-1" || g.Bind != DefaultGossipBind || g.Timings != "lan" || g.ConfirmRateLimit != DefaultConfirmRateLimit ||
		g.JoinBackoff != DefaultJoinBackoff || g.LeaveTimeout != DefaultLeaveTimeout {
		t.Fatalf("defaults not applied: %+v", g)
	}
}

func TestGossip_ProblemsNameTheKey(t *testing.T) {
	kf := keyFile(t, 0o600)
	for name, tc := range map[string]struct{ toml, key, want string }{
		"no fleet":          {"key_file = \"" + kf + "\"\n", "gossip.fleet", "is required"},
		"no key file":       {"fleet = \"f\"\n", "gossip.key_file", "is required"},
		"missing key file":  {"fleet = \"f\"\nkey_file = \"/nonexistent/k\"\n", "gossip.key_file", "cannot be read"},
		"key file is a dir": {"fleet = \"f\"\nkey_file = \"" + t.TempDir() + "\"\n", "gossip.key_file", "directory"},
		"bad bind":          {"fleet = \"f\"\nkey_file = \"" + kf + "\"\nbind = \"nope\"\n", "gossip.bind", "host:port"},
		"bad advertise":     {"fleet = \"f\"\nkey_file = \"" + kf + "\"\nadvertise = \"1.2.3.4:99999\"\n", "gossip.advertise", "invalid port"},
		"bad join":          {"fleet = \"f\"\nkey_file = \"" + kf + "\"\njoin = [\"ok.example:7946\", \"bad peer\"]\n", "gossip.join[1]", "not a host:port"},
		"bad preset":        {"fleet = \"f\"\nkey_file = \"" + kf + "\"\ntimings = \"moon\"\n", "gossip.timings", "unknown preset"},
		"timeout>interval":  {"fleet = \"f\"\nkey_file = \"" + kf + "\"\nprobe_interval = \"1s\"\nprobe_timeout = \"2s\"\n", "gossip.probe_timeout", "shorter"},
		"integer duration":  {"fleet = \"f\"\nkey_file = \"" + kf + "\"\nconfirm_rate_limit = 10\n", "gossip.confirm_rate_limit", "must be a string"},
		"long fleet label":  {"fleet = \"" + strings.Repeat("x", 256) + "\"\nkey_file = \"" + kf + "\"\n", "gossip.fleet", "255"},
		"suspicion too big": {"fleet = \"f\"\nkey_file = \"" + kf + "\"\nsuspicion_mult = 99\n", "gossip.suspicion_mult", "between"},
	} {
		_, err := gossipConfig(t, tc.toml)
		var ps Problems
		if !errors.As(err, &ps) {
			t.Errorf("%s: err %v, want Problems", name, err)
			continue
		}
		found := false
		for _, p := range ps {
			found = found || (p.Key == tc.key && strings.Contains(p.Msg, tc.want) && p.Line > 0)
		}
		if !found {
			t.Errorf("%s: problems %v, want %s: …%s… with a line", name, ps, tc.key, tc.want)
		}
	}
}

func TestGossip_AggregatorNameDefaultsToAggregatorName(t *testing.T) {
	c, err := LoadAggregatorBytes("a.toml", []byte("[aggregator]\nname = \"agg-1\"\n[gossip]\nfleet = \"prod\"\nkey_file = \""+keyFile(t, 0o600)+"\"\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Gossip.Name != "agg-1" {
		t.Fatalf("gossip name %q", c.Gossip.Name)
	}
}

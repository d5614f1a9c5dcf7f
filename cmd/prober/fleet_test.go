package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/pkg/fleet"
	"go.uber.org/goleak"
)

func TestKeygen_WritesPrivateKeyFileAndAppendsForRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gossip.keys")
	var out, errb bytes.Buffer
	if code := run([]string{"keygen", "-out", path}, &out, &errb); code != 0 {
		t.Fatalf("keygen: %d %s", code, errb.String())
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", st.Mode().Perm(), err)
	}
	first, err := fleet.ReadKeyFile(path)
	if err != nil || len(first) != 1 || len(first[0]) != 32 {
		t.Fatalf("keys %d, %v", len(first), err)
	}
	if code := run([]string{"keygen", "-out", path}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "exists") {
		t.Fatalf("overwrite allowed: %d %s", code, errb.String())
	}
	if code := run([]string{"keygen", "-out", path, "-append"}, &out, &errb); code != 0 {
		t.Fatalf("append: %d %s", code, errb.String())
	}
	both, err := fleet.ReadKeyFile(path)
	if err != nil || len(both) != 2 || !bytes.Equal(both[0], first[0]) {
		t.Fatalf("after append: %d keys (primary kept: %v), %v", len(both), err == nil && bytes.Equal(both[0], first[0]), err)
	}
	if strings.Contains(out.String(), string(first[0])) {
		t.Fatal("keygen printed key material")
	}
}

func TestMembers_PrintsRegionsNodesMismatchesAndOwners(t *testing.T) {
	// A probe memberlist started just before Shutdown may wait out its
	// timeout (up to one probe interval) before it returns.
	defer goleak.VerifyNone(t, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "gossip.keys")
	if code := run([]string{"keygen", "-out", keyPath}, io.Discard, io.Discard); code != 0 {
		t.Fatal("keygen failed")
	}
	keys, err := fleet.ReadKeyFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var peers []*fleet.Fleet
	for i, spec := range []struct{ name, region, digest string }{
		{"eu-1", "eu", "d1"}, {"eu-2", "eu", "d1"}, {"us-1", "us", "d2"},
	} {
		cfg := fleet.Config{Name: spec.name, Fleet: "demo", Bind: "127.0.0.1:0", Keys: keys, Logger: quiet,
			Meta: fleet.Meta{Role: fleet.RoleProber, Region: spec.region, Version: "v1", ConfigDigest: spec.digest}}
		if i > 0 {
			cfg.Join = []string{peers[0].Addr()}
		}
		f, err := fleet.New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close(time.Second)
		peers = append(peers, f)
	}
	conf := filepath.Join(dir, "prober.toml")
	toml := fmt.Sprintf(`
[agent]
name = "eu-9"
region = "eu"

[gossip]
fleet = "demo"
bind = "127.0.0.1:0"
join = [%q]
key_file = %q

[[journey]]
name = "api"
kind = "http"
[journey.http]
[[journey.http.step]]
url = "http://127.0.0.1:1/"
`, peers[0].Addr(), keyPath)
	if err := os.WriteFile(conf, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"members", "-config", conf, "-wait", "1s"}, &out, &errb); code != 0 {
		t.Fatalf("members: %d\n%s", code, errb.String())
	}
	text := out.String()
	t.Log("\n" + text)
	for _, want := range []string{"fleet demo: 3 live nodes, 2 regions", "eu-1", "eu-2", "us-1", "d2 *", "≠ local", "JOURNEY", "api"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	// The owner line names one eu prober and the us prober.
	var ownerLine string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "api ") {
			ownerLine = l
		}
	}
	if !strings.Contains(ownerLine, "us-1") || !(strings.Contains(ownerLine, "eu-1") || strings.Contains(ownerLine, "eu-2")) {
		t.Errorf("owner line %q", ownerLine)
	}
	if strings.Contains(text, ".members.") && !strings.Contains(text, "seen by") {
		t.Errorf("the observer lists itself:\n%s", text)
	}
	// The observer left: the peers no longer list it.
	deadline := time.Now().Add(5 * time.Second)
	for len(peers[0].Snapshot().Members) != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("observer still a member: %v", peers[0].Snapshot().Members)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReloadGossipKeys_RotatesTheLiveKeyring(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "gossip.keys")
	k1, _ := fleet.NewKey()
	k2, _ := fleet.NewKey()
	if err := os.WriteFile(keyPath, fleet.FormatKeys([][]byte{k1}), 0o600); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	agent, err := fleet.New(context.Background(), fleet.Config{Name: "agent", Fleet: "demo", Bind: "127.0.0.1:0", Keys: [][]byte{k1}, KeyFile: keyPath,
		Meta: fleet.Meta{Role: fleet.RoleProber, Region: "eu"}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close(time.Second)
	// Step 2 of a rotation in one go: the new key first, the old one kept.
	if err := os.WriteFile(keyPath, fleet.FormatKeys([][]byte{k2, k1}), 0o600); err != nil {
		t.Fatal(err)
	}
	reloadGossipKeys(agent, quiet) // what a SIGHUP does in `prober run`
	// A node that knows only the new key gets in once the agent uses it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		newcomer, err := fleet.New(context.Background(), fleet.Config{Name: "newcomer", Fleet: "demo", Bind: "127.0.0.1:0", Keys: [][]byte{k2},
			Join: []string{agent.Addr()}, JoinBackoff: time.Hour, Meta: fleet.Meta{Role: fleet.RoleProber, Region: "us"}, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		n := len(newcomer.Snapshot().Members)
		newcomer.Close(time.Second)
		if n == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a node with only the new key never got in after SIGHUP")
		}
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/lab"
	"github.com/vantage-fleet/vantage/lab/labtest"
	"github.com/vantage-fleet/vantage/pkg/fleet"
)

// TestRun_FirstSlotCarriesTheRegionPhaseOffset: an agent of region eu
// joining a fleet that has region ap runs its slots at slot + interval/2
// (eu is the second of two regions), the very first one included. Planned
// before joining, the first slot ran at offset 0; in a rolling restart the
// peers then left the region's next slot to the restarted agent, which had
// planned past it (a missed slot, found by the chaos roll).
func TestRun_FirstSlotCarriesTheRegionPhaseOffset(t *testing.T) {
	api := lab.NewHTTPAPI()
	srv := httptest.NewServer(api)
	defer srv.Close()
	t.Setenv("PROBER_TEST_TOKEN", "canary-phase-77a1")
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
	peer, err := fleet.New(context.Background(), fleet.Config{Name: "ap-1", Fleet: "phase", Bind: "127.0.0.1:0", Keys: keys,
		Logger: quiet, Meta: fleet.Meta{Role: fleet.RoleProber, Region: "ap", Version: "v1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close(time.Second)

	conf := strings.Replace(localConfig(t, srv.URL, "", "@every 2s", "a"), `name = "t-1"
region = "local"`, `name = "eu-1"
region = "eu"`, 1) + fmt.Sprintf(`
[gossip]
fleet = "phase"
bind = "127.0.0.1:0"
join = [%q]
key_file = %q
`, peer.Addr(), keyPath)
	path := writeFile(t, "c.toml", conf)

	var stdout, logs labtest.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int)
	go func() { exit <- runAgent(ctx, path, make(chan struct{}), &stdout, newLogger(&logs)) }()
	defer func() {
		cancel()
		<-exit
	}()
	type res struct {
		Slot    time.Time `json:"slot"`
		Start   time.Time `json:"start"`
		Trigger string    `json:"trigger"`
	}
	var first res
	waitFor(t, "a scheduled result", func() bool {
		for _, line := range strings.Split(stdout.String(), "\n") {
			if json.Unmarshal([]byte(line), &first) == nil && first.Trigger == "schedule" {
				return true
			}
		}
		return false
	})
	// A run never starts before its fire time, so this holds however slow
	// the machine is.
	if off := first.Start.Sub(first.Slot); off < time.Second-10*time.Millisecond {
		t.Fatalf("the first slot %s started %s after its slot; want at least the region offset 1s\n%s",
			first.Slot.Format(time.RFC3339Nano), off, logs.String())
	}
}

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/lab/labtest"
	"github.com/vantage-fleet/vantage/pkg/fleet"
)

// TestServeBinary_SIGHUPReloadsGossipKeysAndKeepsServing drives the real
// binary: a key rotation step (SIGHUP) must reload the key file, not kill
// the aggregator (SIGHUP's default action); a bad file is logged and
// changes nothing; SIGTERM still stops it cleanly.
func TestServeBinary_SIGHUPReloadsGossipKeysAndKeepsServing(t *testing.T) {
	bin := labtest.BuildHere(t, "aggregator")
	dir := t.TempDir()
	k1, err := fleet.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := fleet.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "gossip.keys")
	if err := os.WriteFile(keyFile, fleet.FormatKeys([][]byte{k1}), 0o600); err != nil {
		t.Fatal(err)
	}
	addrs := make([]string, 4)
	for i := range addrs {
		l := lis(t)
		addrs[i] = l.Addr().String()
		l.Close()
	}
	conf := writeConfig(t, fmt.Sprintf(`[aggregator]
name = "a"
data_dir = %q
listen = %q
[ingest]
grpc = %q
http = %q
[gossip]
fleet = "hup-test"
bind = %q
key_file = %q
`, filepath.Join(dir, "data"), addrs[0], addrs[1], addrs[2], addrs[3], keyFile))

	var stderr labtest.Buffer
	cmd := exec.Command(bin, "serve", "-config", conf)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
	}()
	waitLog := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(stderr.String(), want) {
			select {
			case err := <-exited:
				stopped = true
				t.Fatalf("the aggregator exited (%v) while waiting for %s\n%s", err, what, stderr.String())
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 20s\n%s", what, stderr.String())
			}
		}
	}
	waitLog("the start", `"msg":"aggregator serving"`)

	// Rotation step 1: append the new key, SIGHUP.
	if err := os.WriteFile(keyFile, fleet.FormatKeys([][]byte{k1, k2}), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog("the reload", `"msg":"gossip keys reloaded"`)

	// A broken file is refused and the aggregator keeps running.
	if err := os.WriteFile(keyFile, []byte("not base64 at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog("the refused reload", `"msg":"gossip key reload failed; keeping the current keys"`)
	if strings.Contains(stderr.String(), "not base64 at all") {
		t.Errorf("the key file's content reached the log:\n%s", stderr.String())
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20s of SIGTERM")
	}
}

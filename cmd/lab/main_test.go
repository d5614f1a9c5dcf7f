package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vantage-fleet/vantage/lab"
	"github.com/vantage-fleet/vantage/lab/labtest"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestServeAndFaultCLI_RoundTripThroughTheControlAPI(t *testing.T) {
	labtest.NeedBinary(t, "git", "apt-get install -y git")
	labtest.NeedBinary(t, "hg", "apt-get install -y mercurial")
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuf{}
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"serve", "-regions", "eu,us", "-agents-per-region", "1", "-dir", dir,
			"-state", state, "-control", "127.0.0.1:0"}, logs, logs)
	}()
	var s lab.State
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(state)
		if err == nil && json.Unmarshal(b, &s) == nil {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("no state file; logs:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(s.Edges) != 2 || s.Edges[0].Name != "eu-1" || s.Edges[1].Region != "us" || s.Edges[0].HgURL == "" {
		t.Fatalf("state: %+v", s)
	}
	hgRepo := filepath.Join(dir, "hg", "repo", ".hg")
	if _, err := os.Stat(hgRepo); err != nil {
		t.Fatalf("no hg repository: %v", err)
	}

	code, out, errOut := cli(t, "fault", "add", "-control", s.ControlURL, "-kind", "http_error",
		"-region", "eu", "-protocol", "git-http", "-status", "502", "-rate", "0.5")
	if code != 0 {
		t.Fatalf("fault add: %d %s", code, errOut)
	}
	var added lab.Fault
	if err := json.Unmarshal([]byte(out), &added); err != nil || added.ID == "" || added.Status != 502 ||
		added.Region != "eu" || added.Rate != 0.5 {
		t.Fatalf("fault add answered %q (%v)", out, err)
	}
	if code, _, _ := cli(t, "fault", "add", "-control", s.ControlURL, "-kind", "replica_lag", "-delay", "3s"); code != 0 {
		t.Fatal("adding replica_lag failed")
	}
	_, out, _ = cli(t, "fault", "list", "-control", s.ControlURL)
	var list []lab.Fault
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 2 || list[1].Delay != 3*time.Second {
		t.Fatalf("fault list: %q (%v)", out, err)
	}
	if code, _, _ := cli(t, "fault", "clear", "-control", s.ControlURL, "-id", added.ID); code != 0 {
		t.Fatal("clear -id failed")
	}
	if code, _, errOut := cli(t, "fault", "clear", "-control", s.ControlURL, "-id", added.ID); code != 1 || !strings.Contains(errOut, "no fault") {
		t.Fatalf("clearing a missing fault: %d %q", code, errOut)
	}
	if code, _, _ := cli(t, "fault", "clear", "-control", s.ControlURL); code != 0 {
		t.Fatal("clear failed")
	}
	_, out, _ = cli(t, "fault", "list", "-control", s.ControlURL)
	if strings.TrimSpace(out) != "[]" {
		t.Fatalf("faults left after clear: %s", out)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d:\n%s", code, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state file left behind: %v", err)
	}
	if code, _, _ := cli(t, "fault", "list", "-control", s.ControlURL); code != 1 {
		t.Fatal("control API still answers after serve stopped")
	}
	// hg serve (a child process group) is gone with the lab.
	if out, err := exec.Command("pgrep", "-f", filepath.Join(dir, "hg", "repo")).Output(); err == nil {
		t.Fatalf("hg serve still running after serve stopped: %s", out)
	}
}

func TestFaultCLI_RejectsMalformedFlagsWithoutCallingTheAPI(t *testing.T) {
	for _, args := range [][]string{
		{"fault", "add", "-control", "http://127.0.0.1:1", "-kind", "meteor"},
		{"fault", "add", "-control", "http://127.0.0.1:1"},
		{"fault", "add", "-control", "http://127.0.0.1:1", "-kind", "latency"},
		{"fault", "add", "-control", "http://127.0.0.1:1", "-kind", "http_error", "-rate", "2"},
		{"fault", "add", "-control", "ftp://x", "-kind", "refuse"},
		{"fault", "add", "-control", "http://127.0.0.1:1", "-kind", "refuse", "-protocol", "smtp"},
		{"fault", "explode"},
		{"serve", "-agents-per-region", "0"},
		{"nonsense"},
	} {
		code, _, errOut := cli(t, args...)
		if code != 2 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	if code, out, _ := cli(t, "version"); code != 0 || !strings.HasPrefix(out, "lab ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

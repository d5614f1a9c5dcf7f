package main

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/vantage-fleet/vantage/lab/labtest"

	"github.com/vantage-fleet/vantage/lab"
)

// TestRunBinary_SIGHUPReloadsAndSIGTERMStopsGracefully drives the real
// binary with real signals.
func TestRunBinary_SIGHUPReloadsAndSIGTERMStopsGracefully(t *testing.T) {
	bin := labtest.BuildHere(t, "prober")
	srv := httptest.NewServer(lab.NewHTTPAPI())
	defer srv.Close()
	t.Setenv("PROBER_TEST_TOKEN", "canary-sig-31f0")
	path := writeFile(t, "c.toml", localConfig(t, srv.URL, "127.0.0.1:0", "@every 1s", "a"))

	var stdout, stderr labtest.Buffer
	cmd := exec.Command(bin, "run", "-config", path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
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
	waitFor(t, "a result", func() bool { return strings.Contains(stdout.String(), `"journey":"a"`) })

	if err := os.WriteFile(path, []byte(localConfig(t, srv.URL, "127.0.0.1:0", "@every 1s", "b")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the reload", func() bool { return strings.Contains(stderr.String(), `"msg":"config reloaded"`) })
	waitFor(t, "a result of b", func() bool { return strings.Contains(stdout.String(), `"journey":"b"`) })

	cmd.Process.Signal(syscall.SIGTERM)
	err := <-exited
	stopped = true
	if err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), `"prober stopped","graceful":true`) {
		t.Fatalf("no graceful stop:\n%s", stderr.String())
	}
	if strings.Contains(stdout.String()+stderr.String(), "canary-sig") {
		t.Fatal("secret leaked")
	}
}

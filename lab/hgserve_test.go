package lab

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/vantage-fleet/vantage/lab/labtest"
)

func TestHgServe_AnswersDirectlyAndThroughHandler_AndStopsOnClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	labtest.NeedBinary(t, "hg", "apt-get install -y mercurial")
	s, err := StartHgServe(context.Background(), HgServeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Fatalf("URL %s is not on loopback", s.URL)
	}
	front := httptest.NewServer(s.Handler())
	for _, base := range []string{s.URL, front.URL + "/"} {
		resp, err := http.Get(base + "?cmd=heads")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// An empty repository's only head is the null revision.
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != strings.Repeat("0", 40) {
			t.Fatalf("%s: %d %q", base, resp.StatusCode, body)
		}
	}
	front.Close()
	http.DefaultClient.CloseIdleConnections()
	pid := s.cmd.Process.Pid
	s.Close()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("hg serve (pid %d) still exists after Close: %v", pid, err)
	}
	if _, err := os.Stat(s.Repo); !os.IsNotExist(err) {
		t.Fatalf("temporary repository %s not removed: %v", s.Repo, err)
	}
}

package lab

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ctlClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func newTestEdges(t *testing.T) (*FaultTable, *Edge, *Edge, string) {
	t.Helper()
	echo := net.Listener(nil)
	var err error
	echo, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	t.Cleanup(func() { echo.Close() })
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "product:"+r.URL.Path) })
	p := &Product{Routes: []Route{
		{Prefix: "/git/", Protocol: ProtoGitHTTP, Handler: ok},
		{Prefix: "/hg/", Protocol: ProtoHg, Handler: ok},
	}, SSHAddr: echo.Addr().String()}
	ft := NewFaultTable()
	eu, err := StartEdge("eu-1", "eu", p, ft)
	if err != nil {
		t.Fatal(err)
	}
	us, err := StartEdge("us-1", "us", p, ft)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eu.Close(); us.Close() })
	ctl := httptest.NewServer(ControlHandler(ft, func() []*Edge { return []*Edge{eu, us} }))
	t.Cleanup(ctl.Close)
	return ft, eu, us, ctl.URL
}

func get(t *testing.T, addr, path string) (int, string, error) {
	t.Helper()
	c := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func addFault(t *testing.T, ctl, body string) string {
	t.Helper()
	resp, err := ctlClient.Post(ctl+"/faults", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("add fault %s: %d %s", body, resp.StatusCode, b)
	}
	return string(b)
}

func TestEdge_RegionalHTTPErrorHitsOnlyThatRegionAndProtocol(t *testing.T) {
	_, eu, us, ctl := newTestEdges(t)
	addFault(t, ctl, `{"kind":"http_error","region":"eu","protocol":"git-http","status":503}`)
	if code, _, _ := get(t, eu.HTTPAddr, "/git/repo/info/refs"); code != 503 {
		t.Fatalf("eu git: %d, want 503", code)
	}
	if code, body, _ := get(t, eu.HTTPAddr, "/hg/repo"); code != 200 || body != "product:/hg/repo" {
		t.Fatalf("eu hg: %d %q, want untouched", code, body)
	}
	if code, _, _ := get(t, us.HTTPAddr, "/git/repo/info/refs"); code != 200 {
		t.Fatalf("us git: %d, want 200", code)
	}
	req, _ := http.NewRequest(http.MethodDelete, ctl+"/faults", nil)
	resp, err := ctlClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("clear: %v %v", err, resp)
	}
	resp.Body.Close()
	if code, _, _ := get(t, eu.HTTPAddr, "/git/repo/info/refs"); code != 200 {
		t.Fatalf("eu git after clear: %d", code)
	}
}

func TestEdge_GlobalRefuseResetsConnections(t *testing.T) {
	ft, eu, _, _ := newTestEdges(t)
	if _, err := ft.Add(Fault{Kind: FaultRefuse}); err != nil {
		t.Fatal(err)
	}
	_, _, err := get(t, eu.HTTPAddr, "/git/x")
	if err == nil || !(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "reset")) {
		t.Fatalf("want a reset connection, got %v", err)
	}
	// The reset may arrive while connecting or on the first read.
	c, err := net.Dial("tcp", eu.SSHAddr)
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("ssh edge: want a reset, got %v", err)
		}
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	_, err = c.Read(make([]byte, 1))
	if err == nil {
		t.Fatal("ssh edge answered under a refuse fault")
	}
}

func TestEdge_StallHoldsUntilClientDeadline(t *testing.T) {
	ft, eu, _, _ := newTestEdges(t)
	ft.Add(Fault{Kind: FaultStall, Edge: "eu-1", Protocol: ProtoHg})
	_, _, err := get(t, eu.HTTPAddr, "/hg/repo")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("want a client timeout, got %v", err)
	}
	c, err := net.Dial("tcp", eu.SSHAddr) // ssh untouched by an hg fault
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || !bytes.Equal(buf, []byte("ping")) {
		t.Fatalf("ssh proxy: %q %v", buf, err)
	}
}

func TestEdge_LatencyDelaysSSH(t *testing.T) {
	ft, eu, _, _ := newTestEdges(t)
	ft.Add(Fault{Kind: FaultLatency, Region: "eu", Protocol: ProtoGitSSH, Delay: 300 * time.Millisecond})
	c, err := net.Dial("tcp", eu.SSHAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	// Within 100 ms nothing comes back; by 2 s the echo does.
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c.Read(make([]byte, 4)); err == nil {
		t.Fatal("echo came back before the injected latency")
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("no echo after the latency: %v", err)
	}
}

func TestControl_RejectsBadFaults(t *testing.T) {
	ft, _, _, ctl := newTestEdges(t)
	for _, body := range []string{`{"kind":"meteor"}`, `{"kind":"latency"}`, `{"kind":"http_error","status":200}`,
		`{"kind":"refuse","protocol":"ftp"}`, `{"kind":"refuse","colour":"red"}`, `not json`, `{"kind":"latency","delay":"soon"}`} {
		resp, err := ctlClient.Post(ctl+"/faults", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "error") {
			t.Errorf("%s: %d %s", body, resp.StatusCode, b)
		}
	}
	if n := len(ft.List()); n != 0 {
		t.Fatalf("bad faults changed state: %d active", n)
	}
	_ = context.Background
}

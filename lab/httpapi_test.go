package lab

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHTTPAPI_FaultBreaksAndHealsEveryPathButFault(t *testing.T) {
	srv := httptest.NewServer(NewHTTPAPI())
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	post := func(q string) int {
		t.Helper()
		resp, err := http.Post(srv.URL+"/fault?"+q, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code, body := get("/api/2.0/repositories/ws/app"); code != 200 || !strings.Contains(body, `"full_name":"ws/app"`) {
		t.Fatalf("api: %d %s", code, body)
	}
	if code := post("status=503"); code != 200 {
		t.Fatalf("set fault: %d", code)
	}
	if code, _ := get("/healthz"); code != 503 {
		t.Fatalf("healthz under fault: %d", code)
	}
	if code, body := get("/fault"); code != 200 || !strings.Contains(body, `"status":503`) {
		t.Fatalf("fault state: %d %s", code, body)
	}
	if code := post("status=abc"); code != 400 {
		t.Fatalf("bad fault accepted: %d", code)
	}
	if code := post("status=503&delay=1h"); code != 400 {
		t.Fatalf("delay over the bound accepted: %d", code)
	}
	post("status=0")
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz after clear: %d", code)
	}
}

package http

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// journeyTOML wraps the [journey.http] body of one journey in a valid config.
func journeyTOML(timeout, httpBody string) string {
	return fmt.Sprintf(`
[agent]
name = "t-1"
region = "eu"
[[journey]]
name = "j"
kind = "http"
schedule = "@every 10s"
timeout = %q
[journey.http]
%s
`, timeout, httpBody)
}

// runJourney loads src, builds the journey and runs it once, returning the
// Result and everything logged while it ran.
func runJourney(t *testing.T, src string, envVars map[string]string) (report.Result, string) {
	t.Helper()
	c, err := config.LoadBytes("t.toml", []byte(src), func(k string) (string, bool) { v, ok := envVars[k]; return v, ok })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	red := report.NewRedactor(c.SecretValues()...)
	j, err := New(&c.Journey[0], probes.Env{Agent: c.Agent, Log: log, Redact: red})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r := &probes.Runner{Agent: "t-1", Region: "eu", Redact: red, Log: log}
	res := r.Execute(context.Background(), j, probes.Spec{Journey: &c.Journey[0], Slot: time.Unix(100, 0), Trigger: report.TriggerManual})
	return res, logs.String()
}

func stepAttr(s report.Step, key string) (any, bool) {
	for _, kv := range s.Attrs {
		if string(kv.Key) == key {
			return kv.Value.AsInterface(), true
		}
	}
	return nil, false
}

func writePEM(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// api is a small product: a login that returns a token, and an item that
// needs it.
func api(t *testing.T) nethttp.Handler {
	mux := nethttp.NewServeMux()
	mux.HandleFunc("POST /login", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"data":{"session":"s e/1","items":[{"state":"ok","n":3,"on":true}]}}`)
	})
	mux.HandleFunc("GET /items/{session}", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if r.PathValue("session") != "s e/1" {
			nethttp.Error(w, "bad session "+r.PathValue("session"), nethttp.StatusForbidden)
			return
		}
		if r.Host != "api.example.test" || r.Header.Get("X-Trace") != "t-s e/1" {
			nethttp.Error(w, "bad host or header", nethttp.StatusBadRequest)
			return
		}
		w.Header().Set("X-Version", "v2.3")
		fmt.Fprint(w, `{"state":"ok"}`)
	})
	return mux
}

func TestHTTP_MultiStepOverTLSWithCapture_Passes(t *testing.T) {
	srv := httptest.NewTLSServer(api(t))
	defer srv.Close()
	ca := writePEM(t, "ca.pem", "CERTIFICATE", srv.Certificate().Raw)
	res, _ := runJourney(t, journeyTOML("5s", fmt.Sprintf(`
ca_file = %q
[[journey.http.step]]
name = "login"
method = "POST"
url = "%s/login"
json_equals = { "data.items.0.state" = "ok", "data.items.0.n" = "3", "data.items.0.on" = "true" }
capture = { session = "data.session" }
cert_min_days = 30
[[journey.http.step]]
name = "item"
url = "%s/items/${session}"
headers = { Host = "api.example.test", X-Trace = "t-${session}" }
header_equals = { "X-Version" = "v2.3" }
header_matches = { "X-Version" = '^v2\.' }
body_contains = ['"ok"']
body_matches = ['state.*ok']
`, ca, srv.URL, srv.URL)), nil)
	if res.Status != report.StatusPass {
		t.Fatalf("status %s %s: %s", res.Status, res.ErrorType, res.Error)
	}
	if len(res.Steps) != 2 || res.Steps[0].Name != "login" || res.Steps[1].Name != "item" {
		t.Fatalf("steps: %+v", res.Steps)
	}
	if len(res.Attrs) != 2 || res.Attrs[1].Value.AsString() != "127.0.0.1" {
		t.Errorf("journey attrs: %v", res.Attrs)
	}
	first := res.Steps[0]
	for _, k := range []string{"vantage.http.phase.dns_ms", "vantage.http.phase.connect_ms", "vantage.http.phase.tls_ms",
		"vantage.http.phase.ttfb_ms", "vantage.http.phase.transfer_ms", "url.full", "vantage.tls.cert.days_left"} {
		if _, ok := stepAttr(first, k); !ok {
			t.Errorf("step login lacks %s: %v", k, first.Attrs)
		}
	}
	if v, _ := stepAttr(first, "http.response.status_code"); v != int64(200) {
		t.Errorf("status code attr = %v", v)
	}
	if v, _ := stepAttr(first, "http.response.body.size"); v.(int64) < 50 {
		t.Errorf("body size attr = %v", v)
	}
	if v, _ := stepAttr(first, "vantage.http.phase.tls_ms"); v.(float64) <= 0 {
		t.Errorf("TLS phase not measured: %v", v)
	}
}

func TestHTTP_EachFailedCheck_HasItsErrorType(t *testing.T) {
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/ok", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("X-Version", "v1")
		fmt.Fprint(w, `{"state":"degraded","list":[1]}`)
	})
	mux.HandleFunc("/status/{code}", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		var code int
		fmt.Sscan(r.PathValue("code"), &code)
		w.WriteHeader(code)
	})
	mux.HandleFunc("/big", func(w nethttp.ResponseWriter, r *nethttp.Request) { w.Write(make([]byte, 4096)) })
	mux.HandleFunc("/redirect", func(w nethttp.ResponseWriter, r *nethttp.Request) { nethttp.Redirect(w, r, "/ok", nethttp.StatusFound) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	u := srv.URL
	cases := []struct {
		name, step, extra string
		want              report.ErrorType
	}{
		{"status 401 is auth", `url = "` + u + `/status/401"`, "", report.ErrAuth},
		{"status 403 is auth", `url = "` + u + `/status/403"`, "", report.ErrAuth},
		{"status 429 is rate_limited", `url = "` + u + `/status/429"`, "", report.ErrRateLimited},
		{"status 404 is http_4xx", `url = "` + u + `/status/404"`, "", report.ErrHTTP4xx},
		{"status 503 is http_5xx", `url = "` + u + `/status/503"`, "", report.ErrHTTP5xx},
		{"unexpected 2xx is assertion", `url = "` + u + `/ok"` + "\nexpect_status = [201]", "", report.ErrAssertion},
		{"header equals", `url = "` + u + `/ok"` + "\nheader_equals = { X-Version = \"v2\" }", "", report.ErrAssertion},
		{"header matches", `url = "` + u + `/ok"` + "\nheader_matches = { X-Version = '^v2' }", "", report.ErrAssertion},
		{"body contains", `url = "` + u + `/ok"` + "\nbody_contains = ['\"healthy\"']", "", report.ErrAssertion},
		{"body matches", `url = "` + u + `/ok"` + "\nbody_matches = ['state\":\\s*\"ok']", "", report.ErrAssertion},
		{"JSON path value", `url = "` + u + `/ok"` + "\njson_equals = { state = \"ok\" }", "", report.ErrAssertion},
		{"JSON path missing", `url = "` + u + `/ok"` + "\njson_equals = { \"list.5\" = \"1\" }", "", report.ErrAssertion},
		{"cert days without TLS", `url = "` + u + `/ok"` + "\ncert_min_days = 1", "", report.ErrAssertion},
		{"body over the bound", `url = "` + u + `/big"`, "max_body_bytes = 1024", report.ErrProtocol},
		{"redirect not followed", `url = "` + u + `/redirect"`, "max_redirects = 0", report.ErrAssertion},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := runJourney(t, journeyTOML("5s", tc.extra+"\n[[journey.http.step]]\n"+tc.step+"\n"), nil)
			if res.Status != report.StatusFail || res.ErrorType != tc.want {
				t.Fatalf("got %s/%s (%s), want fail/%s", res.Status, res.ErrorType, res.Error, tc.want)
			}
			if res.Steps[0].ErrorType != tc.want {
				t.Fatalf("step error type %s, want %s", res.Steps[0].ErrorType, tc.want)
			}
		})
	}
}

func TestHTTP_RedirectPolicy_FollowsByDefaultAndStopsAtZero(t *testing.T) {
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/ok", func(w nethttp.ResponseWriter, r *nethttp.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("/redirect", func(w nethttp.ResponseWriter, r *nethttp.Request) { nethttp.Redirect(w, r, "/ok", nethttp.StatusFound) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	res, _ := runJourney(t, journeyTOML("5s", "[[journey.http.step]]\nurl = \""+srv.URL+"/redirect\"\nbody_contains = [\"ok\"]\n"), nil)
	if res.Status != report.StatusPass {
		t.Fatalf("default policy: %s %s", res.Status, res.Error)
	}
	if v, _ := stepAttr(res.Steps[0], "vantage.http.redirects"); v != int64(1) {
		t.Fatalf("redirects attr = %v", v)
	}
	res, _ = runJourney(t, journeyTOML("5s", "max_redirects = 0\n[[journey.http.step]]\nurl = \""+srv.URL+"/redirect\"\nexpect_status = [302]\n"), nil)
	if res.Status != report.StatusPass {
		t.Fatalf("max_redirects = 0 with expect 302: %s %s", res.Status, res.Error)
	}
}

func TestHTTP_CertificateExpiringSoon_IsAssertion(t *testing.T) {
	srv := httptest.NewTLSServer(api(t))
	defer srv.Close()
	ca := writePEM(t, "ca.pem", "CERTIFICATE", srv.Certificate().Raw)
	days := int(time.Until(srv.Certificate().NotAfter).Hours()/24) + 10
	res, _ := runJourney(t, journeyTOML("5s", fmt.Sprintf("ca_file = %q\n[[journey.http.step]]\nmethod = \"POST\"\nurl = \"%s/login\"\ncert_min_days = %d\n", ca, srv.URL, days)), nil)
	if res.ErrorType != report.ErrAssertion || !strings.Contains(res.Error, "certificate expires in") {
		t.Fatalf("got %s %s", res.ErrorType, res.Error)
	}
}

func TestHTTP_UntrustedCertificate_IsTLS(t *testing.T) {
	srv := httptest.NewTLSServer(api(t))
	defer srv.Close()
	res, _ := runJourney(t, journeyTOML("5s", "[[journey.http.step]]\nurl = \""+srv.URL+"/login\"\n"), nil)
	if res.Status != report.StatusFail || res.ErrorType != report.ErrTLS {
		t.Fatalf("got %s/%s: %s", res.Status, res.ErrorType, res.Error)
	}
}

// certPair issues a certificate for cn signed by parent (self-signed when
// parent is nil) and returns it with its key.
func certPair(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: isCA, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key, der
}

func TestHTTP_ClientCertificate_IsPresentedForMTLS(t *testing.T) {
	ca, caKey, _ := certPair(t, "client-ca", nil, nil, true)
	_, key, der := certPair(t, "prober", ca, caKey, false)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv := httptest.NewUnstartedServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		fmt.Fprint(w, "hello "+r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	defer srv.Close()
	srvCA := writePEM(t, "srv.pem", "CERTIFICATE", srv.Certificate().Raw)
	certFile := writePEM(t, "client.pem", "CERTIFICATE", der)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	src := journeyTOML("5s", fmt.Sprintf("ca_file = %q\nclient_cert = %q\nclient_key = \"env:CLIENT_KEY\"\n[[journey.http.step]]\nurl = \"%s/\"\nbody_contains = [\"hello prober\"]\n", srvCA, certFile, srv.URL))
	res, _ := runJourney(t, src, map[string]string{"CLIENT_KEY": keyPEM})
	if res.Status != report.StatusPass {
		t.Fatalf("mTLS: %s %s %s", res.Status, res.ErrorType, res.Error)
	}
	// Without the client certificate the server refuses the handshake.
	src = journeyTOML("5s", fmt.Sprintf("ca_file = %q\n[[journey.http.step]]\nurl = \"%s/\"\n", srvCA, srv.URL))
	res, _ = runJourney(t, src, nil)
	if res.Status != report.StatusFail || res.ErrorType != report.ErrTLS {
		t.Fatalf("without client cert: %s %s %s", res.Status, res.ErrorType, res.Error)
	}
}

func TestHTTP_ServerThatNeverAnswers_IsTimeoutAtTheDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c // held open, never answered
		}
	}()
	defer func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	}()
	// Over https the silence falls in the TLS handshake, over http in the
	// wait for the response.
	for _, scheme := range []string{"http", "https"} {
		res, _ := runJourney(t, journeyTOML("300ms", "[[journey.http.step]]\nurl = \""+scheme+"://"+ln.Addr().String()+"/\"\n"), nil)
		if res.Status != report.StatusFail || res.ErrorType != report.ErrTimeout {
			t.Fatalf("%s: got %s/%s: %s", scheme, res.Status, res.ErrorType, res.Error)
		}
		if res.Duration < 300*time.Millisecond {
			t.Fatalf("%s: ended before its deadline: %s", scheme, res.Duration)
		}
	}
}

func TestHTTP_RefusedPort_IsConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res, _ := runJourney(t, journeyTOML("2s", "[[journey.http.step]]\nurl = \"http://"+addr+"/\"\n"), nil)
	if res.Status != report.StatusFail || res.ErrorType != report.ErrConnect {
		t.Fatalf("got %s/%s: %s", res.Status, res.ErrorType, res.Error)
	}
}

func TestHTTP_UnknownHost_IsDNS(t *testing.T) {
	res, _ := runJourney(t, journeyTOML("5s", "[[journey.http.step]]\nurl = \"http://no-such-host.invalid/\"\n"), nil)
	if res.Status != report.StatusFail || res.ErrorType != report.ErrDNS {
		t.Fatalf("got %s/%s: %s", res.Status, res.ErrorType, res.Error)
	}
}

func TestHTTP_CanarySecretInBearerAndURL_NeverInResultJSONOrLogs(t *testing.T) {
	const canary = "canary-Tok3n-5e3f9a"
	var sawBearer bool
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		sawBearer = r.Header.Get("Authorization") == "Bearer "+canary
		if r.URL.Path == "/deny" {
			w.WriteHeader(nethttp.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, path := range []string{"/ok", "/deny"} {
		// The canary is pasted into the URL (userinfo, query and path) and
		// configured as the bearer token.
		u := fmt.Sprintf("http://probe:%s@%s%s?token=%s&x=%s", canary, host, path, canary, canary)
		src := journeyTOML("5s", "bearer_token = \"env:API_TOKEN\"\n[[journey.http.step]]\nurl = \""+u+"\"\n")
		res, logs := runJourney(t, src, map[string]string{"API_TOKEN": canary})
		if !sawBearer {
			t.Fatal("server did not receive the bearer token")
		}
		if path == "/deny" && res.ErrorType != report.ErrAuth {
			t.Fatalf("deny: got %s %s", res.ErrorType, res.Error)
		}
		js, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(fmt.Sprintf("%+v", res), canary) || strings.Contains(string(js), canary) || strings.Contains(logs, canary) {
			t.Fatalf("canary leaked on %s:\nresult %s\nlogs %s", path, js, logs)
		}
		if v, _ := stepAttr(res.Steps[0], "url.full"); !strings.Contains(v.(string), report.Mask) {
			t.Fatalf("url.full not redacted: %v", v)
		}
	}
}

func FuzzLookup(f *testing.F) {
	f.Add([]byte(`{"data":{"items":[{"state":"ok"}]}}`), "data.items.0.state")
	f.Add([]byte(`[1,2,{"a":null}]`), "2.a")
	f.Add([]byte(`"x"`), "a.b")
	f.Fuzz(func(t *testing.T, body []byte, path string) {
		doc, err := decodeJSON(body)
		if err != nil {
			return
		}
		_, _ = lookup(doc, path)
	})
}

func TestHTTP_BasicAuthFromSecret_IsSent(t *testing.T) {
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "probe-bot" || p != "pw-canary-9d" {
			w.WriteHeader(nethttp.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "welcome")
	}))
	defer srv.Close()
	src := journeyTOML("5s", "basic_user = \"probe-bot\"\nbasic_password = \"env:PW\"\n[[journey.http.step]]\nurl = \""+srv.URL+"/\"\n")
	res, logs := runJourney(t, src, map[string]string{"PW": "pw-canary-9d"})
	if res.Status != report.StatusPass {
		t.Fatalf("got %s/%s: %s", res.Status, res.ErrorType, res.Error)
	}
	res, logs = runJourney(t, src, map[string]string{"PW": "wrong-password"})
	if res.ErrorType != report.ErrAuth {
		t.Fatalf("wrong password: got %s/%s: %s", res.Status, res.ErrorType, res.Error)
	}
	if strings.Contains(logs, "wrong-password") {
		t.Fatal("password in logs")
	}
}

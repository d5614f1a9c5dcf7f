package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// HTTPJourney configures a kind = "http" journey ([journey.http]): one or
// more requests made in order, each with assertions. Values captured from a
// JSON response are substituted as ${name} in later steps' URL, headers and
// body.
type HTTPJourney struct {
	// Step lists the requests ([[journey.http.step]]), at least one.
	Step []HTTPStep `toml:"step"`
	// BasicUser and BasicPassword set HTTP basic auth on every step.
	BasicUser     string `toml:"basic_user"`
	BasicPassword Secret `toml:"basic_password"`
	// BearerToken sets "Authorization: Bearer …" on every step.
	BearerToken Secret `toml:"bearer_token"`
	// CAFile is a PEM bundle trusted instead of the system roots.
	CAFile string `toml:"ca_file"`
	// ClientCert and ClientKey are a PEM client certificate and key for mTLS.
	ClientCert string `toml:"client_cert"`
	ClientKey  Secret `toml:"client_key"`
	// InsecureSkipVerify disables TLS verification (logged at every start).
	InsecureSkipVerify bool `toml:"insecure_skip_verify"`
	// MaxRedirects is how many redirects a step follows; 0 follows none,
	// so the step sees the 3xx itself (expect_status = [302]). Default 10.
	MaxRedirects *int `toml:"max_redirects"`
	// MaxBodyBytes bounds how much of a response body is read; a larger
	// body fails the step as "protocol". Default 1 MiB.
	MaxBodyBytes int64 `toml:"max_body_bytes"`
}

// HTTPStep is one request of an HTTP journey and what its response must satisfy.
type HTTPStep struct {
	// Name names the step in results. Default "step-N".
	Name string `toml:"name"`
	// Method defaults to GET.
	Method string `toml:"method"`
	// URL is required; ${name} is replaced by a captured value.
	URL string `toml:"url"`
	// Headers are sent with the request (${name} substituted). "Host" sets
	// the request's host name, to probe one edge by address under the
	// product's name. Authorization comes from the journey's auth settings.
	Headers map[string]string `toml:"headers"`
	// Body is the request body (${name} substituted).
	Body string `toml:"body"`
	// ExpectStatus lists accepted status codes. Default: any 2xx.
	ExpectStatus []int `toml:"expect_status"`
	// HeaderEquals requires each header to equal the value exactly.
	HeaderEquals map[string]string `toml:"header_equals"`
	// HeaderMatches requires each header to match the regular expression.
	HeaderMatches map[string]string `toml:"header_matches"`
	// BodyContains requires each string to appear in the body.
	BodyContains []string `toml:"body_contains"`
	// BodyMatches requires each regular expression to match the body.
	BodyMatches []string `toml:"body_matches"`
	// JSONEquals maps a JSON path ("data.items.0.state") to the value its
	// element must have, compared as text ("true", "3", "ok").
	JSONEquals map[string]string `toml:"json_equals"`
	// Capture maps a name to a JSON path; the value is usable as ${name}
	// in later steps.
	Capture map[string]string `toml:"capture"`
	// CertMinDays fails the step when the server certificate expires in
	// fewer days.
	CertMinDays int `toml:"cert_min_days"`
}

var httpMethod = regexp.MustCompile(`^[A-Za-z]{1,20}$`)

var captureName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (h *HTTPJourney) validate(p *problems, key string, j *Journey) {
	if len(h.Step) == 0 {
		p.add(key+".step", "at least one [[journey.http.step]] is required")
	}
	if h.BasicPassword.IsSet() && h.BearerToken.IsSet() {
		p.add(key+".bearer_token", "set either basic auth or a bearer token, not both")
	}
	if h.BasicPassword.IsSet() != (h.BasicUser != "") {
		p.add(key+".basic_user", "basic_user and basic_password go together")
	}
	if (h.ClientCert != "") != h.ClientKey.IsSet() {
		p.add(key+".client_cert", "client_cert and client_key go together")
	}
	if h.MaxRedirects != nil && *h.MaxRedirects < 0 {
		p.add(key+".max_redirects", "must not be negative")
	}
	if h.MaxBodyBytes < 0 {
		p.add(key+".max_body_bytes", "must not be negative")
	}
	captured := map[string]bool{}
	for i := range h.Step {
		s := &h.Step[i]
		sk := fmt.Sprintf("%s.step[%d]", key, i)
		if s.URL == "" {
			p.add(sk+".url", "is required")
		} else if u, err := url.Parse(strings.NewReplacer("${", "", "}", "").Replace(s.URL)); err != nil ||
			(u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add(sk+".url", "must be an absolute http:// or https:// URL")
		}
		if s.Method != "" && !httpMethod.MatchString(s.Method) {
			p.add(sk+".method", fmt.Sprintf("%q is not an HTTP method (GET, POST, …)", s.Method))
		}
		for _, code := range s.ExpectStatus {
			if code < 100 || code > 599 {
				p.add(sk+".expect_status", fmt.Sprintf("%d is not an HTTP status code", code))
			}
		}
		for name, re := range s.HeaderMatches {
			if _, err := regexp.Compile(re); err != nil {
				p.add(sk+".header_matches."+name, "invalid regular expression: "+err.Error())
			}
		}
		for _, re := range s.BodyMatches {
			if _, err := regexp.Compile(re); err != nil {
				p.add(sk+".body_matches", "invalid regular expression: "+err.Error())
			}
		}
		for _, ref := range captureRefs(s.URL + s.Body + fmt.Sprint(s.Headers)) {
			if !captured[ref] {
				p.add(sk, fmt.Sprintf("${%s} is not captured by an earlier step", ref))
			}
		}
		for name := range s.Capture {
			if !captureName.MatchString(name) {
				p.add(sk+".capture."+name, "capture names are letters, digits and _")
			}
			captured[name] = true
		}
		if s.CertMinDays < 0 {
			p.add(sk+".cert_min_days", "must not be negative")
		}
	}
}

var captureRef = regexp.MustCompile(`\$\{([^}]*)\}`)

func captureRefs(s string) []string {
	var out []string
	for _, m := range captureRef.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

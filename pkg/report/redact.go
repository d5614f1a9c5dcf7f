package report

import (
	"net/url"
	"regexp"
	"sort"
	"strings"

	"go.opentelemetry.io/otel/attribute"
)

// Mask replaces every redacted secret.
const Mask = "[REDACTED]"

// minSecretLen is the shortest secret value that is redacted by value; shorter
// values would mask ordinary words and digits all over a Result.
const minSecretLen = 4

// urlUserinfo matches the userinfo part of a URL ("scheme://user:pass@").
var urlUserinfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#@\s]*@`)

// sensitiveQuery matches query parameters that commonly carry credentials.
var sensitiveQuery = regexp.MustCompile(`(?i)([?&](?:access_token|token|private_token|password|passwd|secret|api_key|apikey|key|sig|signature)=)[^&#\s]*`)

// Redactor removes URL credentials and known secret values from strings.
// The zero value redacts URL credentials only. It is safe for concurrent use
// once built.
type Redactor struct {
	secrets []string // longest first, so that a secret containing another is masked whole
}

// NewRedactor returns a Redactor that also masks each of the given secret
// values (and their URL-escaped forms) wherever they appear.
func NewRedactor(secrets ...string) *Redactor {
	seen := map[string]bool{}
	var list []string
	add := func(s string) {
		if len(s) >= minSecretLen && !seen[s] {
			seen[s] = true
			list = append(list, s)
		}
	}
	for _, s := range secrets {
		add(s)
		add(url.QueryEscape(s))
		add(url.PathEscape(s))
		// A secret read from a file often ends with a newline; mask its lines too.
		for _, line := range strings.Split(s, "\n") {
			add(strings.TrimSpace(line))
		}
	}
	sort.Slice(list, func(i, j int) bool { return len(list[i]) > len(list[j]) })
	return &Redactor{secrets: list}
}

// String returns s with URL credentials and known secrets masked.
func (r *Redactor) String(s string) string {
	if s == "" {
		return s
	}
	if r != nil {
		for _, sec := range r.secrets {
			if strings.Contains(s, sec) {
				s = strings.ReplaceAll(s, sec, Mask)
			}
		}
	}
	// Cheap checks first: the regular expressions cost microseconds, and
	// most strings (every URL without userinfo) cannot match them.
	if strings.Contains(s, "://") && strings.Contains(s, "@") {
		s = urlUserinfo.ReplaceAllString(s, "${1}"+Mask+"@")
	}
	if strings.Contains(s, "=") {
		s = sensitiveQuery.ReplaceAllString(s, "${1}"+Mask)
	}
	return s
}

// Attrs returns attrs with every string value redacted. When nothing
// needs masking it returns attrs itself, without copying.
func (r *Redactor) Attrs(attrs []attribute.KeyValue) []attribute.KeyValue {
	var out []attribute.KeyValue // a copy, made at the first change
	set := func(i int, kv attribute.KeyValue) {
		if out == nil {
			out = append([]attribute.KeyValue(nil), attrs...)
		}
		out[i] = kv
	}
	for i, kv := range attrs {
		switch kv.Value.Type() {
		case attribute.STRING:
			v := kv.Value.AsString()
			if rv := r.String(v); rv != v {
				set(i, kv.Key.String(rv))
			}
		case attribute.STRINGSLICE:
			ss := kv.Value.AsStringSlice()
			changed := false
			for j := range ss {
				if rv := r.String(ss[j]); rv != ss[j] {
					ss[j], changed = rv, true
				}
			}
			if changed {
				set(i, kv.Key.StringSlice(ss))
			}
		}
	}
	if out == nil {
		return attrs
	}
	return out
}

// Result redacts, in place, every string that res can hold.
func (r *Redactor) Result(res *Result) {
	res.Journey = r.String(res.Journey)
	res.Error = r.String(res.Error)
	res.Runbook = r.String(res.Runbook)
	res.Attrs = r.Attrs(res.Attrs)
	for i := range res.Steps {
		res.Steps[i].Name = r.String(res.Steps[i].Name)
		res.Steps[i].Error = r.String(res.Steps[i].Error)
		res.Steps[i].Attrs = r.Attrs(res.Steps[i].Attrs)
	}
}

package pipelines

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
)

// api is the HTTP side every provider shares: authentication, a deadline
// per request, bounded bodies, waiting out 429 answers, and turning HTTP
// failures into classified errors. It never puts a credential in an error.
type api struct {
	hc         *http.Client
	base       string // scheme://host[/prefix], no trailing slash
	auth       func(*http.Request)
	headers    map[string]string
	maxBody    int64
	reqTimeout time.Duration
	retries    int
	// minBackoff and maxBackoff bound the exponential wait after a 429
	// that carries no Retry-After.
	minBackoff, maxBackoff time.Duration
	redact                 *report.Redactor
}

// response is a completed request: status, headers and the bounded body.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends method path (path already escaped, relative to base) with the
// query and a JSON body (nil for none). It returns the response when its
// status is one of ok; otherwise a classified error. 429 answers are
// waited out up to a.retries times in a row.
func (a *api) do(ctx context.Context, method, path string, query url.Values, body any, ok ...int) (*response, error) {
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, probes.Internal(fmt.Errorf("encoding the %s %s request: %w", method, path, err))
		}
		payload = b
	}
	target := a.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	backoff := a.minBackoff
	for attempt := 0; ; attempt++ {
		resp, err := a.once(ctx, method, target, path, payload)
		if err != nil {
			return nil, err
		}
		if resp.status == http.StatusTooManyRequests {
			if attempt >= a.retries {
				return nil, probes.Errorf(report.ErrRateLimited, "%s %s: rate limited (429) %d times in a row%s",
					method, path, attempt+1, rateLimitNote(resp.header))
			}
			wait, fromHeader := retryAfter(resp.header)
			if !fromHeader {
				wait = backoff
				backoff = min(backoff*2, a.maxBackoff)
			}
			if dl, has := ctx.Deadline(); has && time.Until(dl) < wait {
				return nil, probes.Errorf(report.ErrRateLimited, "%s %s: rate limited (429) and the wait of %s outlasts the journey deadline%s",
					method, path, wait, rateLimitNote(resp.header))
			}
			if err := sleep(ctx, wait); err != nil {
				return nil, probes.Errorf(report.ErrRateLimited, "%s %s: still rate limited (429) at the journey deadline", method, path)
			}
			continue
		}
		for _, s := range ok {
			if resp.status == s {
				return resp, nil
			}
		}
		return nil, a.statusError(method, path, resp)
	}
}

// once sends one request under its own timeout and reads the bounded body.
func (a *api) once(ctx context.Context, method, target, path string, payload []byte) (*response, error) {
	rctx, cancel := context.WithTimeout(ctx, a.reqTimeout)
	defer cancel()
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(rctx, method, target, rd)
	if err != nil {
		return nil, probes.Internal(fmt.Errorf("building %s %s: %w", method, path, err))
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range a.headers {
		req.Header.Set(k, v)
	}
	a.auth(req)
	res, err := a.hc.Do(req)
	if err != nil {
		return nil, a.transportError(ctx, rctx, method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, a.maxBody+1))
	if err != nil {
		return nil, a.transportError(ctx, rctx, method, path, err)
	}
	if int64(len(b)) > a.maxBody {
		return nil, probes.Errorf(report.ErrProtocol, "%s %s: response body is larger than %d bytes", method, path, a.maxBody)
	}
	return &response{status: res.StatusCode, header: res.Header, body: b}, nil
}

// transportError names a failed request. The request's own timeout is an
// API that does not answer (timeout); the journey's deadline is left
// unclassified so that the caller can tell a pipeline that outlived it.
func (a *api) transportError(ctx, rctx context.Context, method, path string, err error) error {
	// url.Error repeats the full URL; keep the path and the cause only.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded) {
		return probes.Errorf(report.ErrTimeout, "%s %s: no answer within the request timeout %s", method, path, a.reqTimeout)
	}
	return fmt.Errorf("%s %s: %w", method, path, err)
}

// statusError classifies an unexpected HTTP status, quoting the API's own
// message (bounded and redacted).
func (a *api) statusError(method, path string, r *response) error {
	msg := apiMessage(r.body)
	if msg != "" {
		msg = ": " + a.redact.String(msg)
	}
	t := report.ErrHTTP4xx
	switch {
	case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
		t = report.ErrAuth
	case r.status >= 500:
		t = report.ErrHTTP5xx
	case r.status < 400:
		t = report.ErrProtocol
	}
	return probes.Errorf(t, "%s %s: HTTP %d%s", method, path, r.status, msg)
}

// apiMessage extracts the error message of Bitbucket
// ({"type":"error","error":{"message":…}}), GitHub and GitLab
// ({"message":…}), bounded to a short line.
func apiMessage(body []byte) string {
	var e struct {
		Message json.RawMessage `json:"message"`
		Error   *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	msg := ""
	if e.Error != nil {
		msg = e.Error.Message
	} else if len(e.Message) > 0 {
		var s string
		if json.Unmarshal(e.Message, &s) == nil {
			msg = s
		} else {
			msg = string(e.Message) // GitLab sometimes sends an object
		}
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return msg
}

// retryAfter reads Retry-After (seconds or an HTTP date).
func retryAfter(h http.Header) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

// rateLimitNote names the limited resource from Bitbucket's headers.
func rateLimitNote(h http.Header) string {
	var parts []string
	if v := h.Get("X-RateLimit-Resource"); v != "" {
		parts = append(parts, "resource "+v)
	}
	if v := h.Get("X-RateLimit-Limit"); v != "" {
		parts = append(parts, "limit "+v)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// decode unmarshals a JSON body; malformed or truncated JSON is a protocol
// failure of the product.
func decode(method, path string, body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return probes.Errorf(report.ErrProtocol, "%s %s: malformed JSON response: %v", method, path, err)
	}
	return nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

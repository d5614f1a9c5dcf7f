// Package hg is the kind = "hg" journey: a Mercurial user's clone, pull,
// commit and push over HTTP(S), timed step by step. The "native" driver
// speaks the wire protocol itself (probes/hg/wire, store, revlog); the
// "cli" driver runs the hg binary for comparison.
package hg

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/report"
	"github.com/vantage-fleet/vantage/probes"
	"github.com/vantage-fleet/vantage/probes/hg/store"
	"github.com/vantage-fleet/vantage/probes/hg/wire"
)

// Kind is this journey kind's name in config.
const Kind = "hg"

// Journey runs one configured hg journey.
type Journey struct {
	cfg      config.HgJourney
	roots    *x509.CertPool
	name     string
	cacheDir string
	// beforePush, when set (tests), runs between building the changeset and
	// sending it (attempt counts from 1), so that agents can be made to race.
	beforePush func(ctx context.Context, attempt int)
}

// New is the kind's probes.Constructor.
func New(j *config.Journey, env probes.Env) (probes.Journey, error) {
	if j.Hg == nil {
		return nil, fmt.Errorf("journey %q: no [journey.hg] table", j.Name)
	}
	if env.DataDir == "" && j.Hg.Push {
		return nil, fmt.Errorf("journey %q: a push journey needs a data directory for its cache", j.Name)
	}
	jr := &Journey{cfg: *j.Hg, name: j.Name, cacheDir: filepath.Join(env.DataDir, "hg")}
	if j.Hg.CAFile != "" {
		pem, err := readCA(j.Hg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("journey %q: ca_file: %w", j.Name, err)
		}
		jr.roots = x509.NewCertPool()
		if !jr.roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("journey %q: ca_file %s holds no PEM certificate", j.Name, j.Hg.CAFile)
		}
	}
	return jr, nil
}

// maxCABytes bounds a CA bundle file.
const maxCABytes = 1 << 20

func readCA(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCABytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxCABytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxCABytes)
	}
	return b, nil
}

// Run performs the journey with the configured driver.
func (j *Journey) Run(ctx context.Context, run *probes.Run) error {
	run.Rec.SetAttrs(attribute.String("url.full", j.cfg.URL), attribute.String("vantage.hg.driver", j.cfg.Driver))
	if j.cfg.Driver == "cli" {
		return j.runCLI(ctx, run)
	}
	return j.runNative(ctx, run)
}

// httpClient builds a client whose transport bounds connect and response
// header times; the run's context bounds everything else.
func (j *Journey) httpClient(keepAlive bool) *http.Client {
	d := &net.Dialer{Timeout: j.cfg.ConnectTimeout.D}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   j.cfg.ConnectTimeout.D,
		TLSClientConfig:       &tls.Config{RootCAs: j.roots, MinVersion: tls.VersionTLS12},
		ResponseHeaderTimeout: j.cfg.ResponseTimeout.D,
		DisableKeepAlives:     !keepAlive,
		MaxIdleConnsPerHost:   2,
	}}
}

func (j *Journey) wireClient(hc *http.Client) *wire.Client {
	lim := wire.DefaultLimits()
	lim.MaxTotal = j.cfg.MaxBundleBytes
	return &wire.Client{URL: j.cfg.URL, HTTP: hc, User: j.cfg.User, Password: j.cfg.Password.Value(), Limits: lim}
}

// classify gives the errors of this kind their class; the rest (network,
// deadlines) is left to probes.Classify.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var he *wire.HTTPError
	var ae *wire.AbortError
	var re *wire.RemoteError
	switch {
	case errors.As(err, &he):
		switch {
		case he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden:
			return probes.Wrap(report.ErrAuth, err)
		case he.Status == http.StatusTooManyRequests:
			return probes.Wrap(report.ErrRateLimited, err)
		case he.Status >= 500:
			return probes.Wrap(report.ErrHTTP5xx, err)
		default:
			return probes.Wrap(report.ErrHTTP4xx, err)
		}
	case errors.Is(err, wire.ErrPushRaced), errors.As(err, &ae):
		return probes.Wrap(report.ErrPushRejected, err)
	case errors.Is(err, wire.ErrMalformed), errors.Is(err, store.ErrHashMismatch), errors.As(err, &re):
		return probes.Wrap(report.ErrProtocol, err)
	}
	return err
}

// raceLost reports whether a push failed only because another push moved
// the server's heads first: the one refusal worth a pull and a retry.
func raceLost(err error) bool { return errors.Is(err, wire.ErrPushRaced) }

// retryPush tells whether a push that ended with err on the given attempt
// (counting from 1) is retried: a lost race, retries left, time left.
func (j *Journey) retryPush(ctx context.Context, err error, attempt int) bool {
	return raceLost(err) && attempt <= *j.cfg.PushRetries && ctx.Err() == nil
}

// tooBig is the probe_error a scratch repository past max_changesets gets.
func (j *Journey) tooBig(n int) error {
	return probes.Internal(fmt.Errorf("scratch repository %s has %d changesets, past max_changesets = %d: "+
		"rotate it (create a fresh repository, point the journey's url at it, or raise max_changesets; "+
		"see README, \"Mercurial journeys\")", j.cfg.URL, n, j.cfg.MaxChangesets))
}

// probeContent is what a push writes into the probe file.
func probeContent(run *probes.Run, now time.Time) []byte {
	return []byte(fmt.Sprintf("vantage probe run %s\nagent %s region %s\nslot %s\nwritten %s\n",
		run.ID, run.Agent, run.Region, run.Slot.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339Nano)))
}

// verifyLoop polls visible until it reports true, or fails with stale_read
// after the configured verify_timeout.
func (j *Journey) verifyLoop(ctx context.Context, step *probes.StepTimer, node string, visible func(context.Context) (bool, error)) error {
	start := time.Now()
	deadline := start.Add(j.cfg.VerifyTimeout.D)
	attempts := 0
	for {
		attempts++
		ok, err := visible(ctx)
		if err != nil {
			return classify(err)
		}
		if ok {
			step.Set(attribute.Int("vantage.verify.attempts", attempts),
				attribute.Float64("vantage.verify.lag_seconds", time.Since(start).Seconds()))
			return nil
		}
		if time.Now().Add(j.cfg.VerifyInterval.D).After(deadline) {
			step.Set(attribute.Int("vantage.verify.attempts", attempts))
			return probes.Errorf(report.ErrStaleRead, "changeset %s not visible through a fresh request after %s", node, j.cfg.VerifyTimeout.D)
		}
		t := time.NewTimer(j.cfg.VerifyInterval.D)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

package config

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// Export is one destination for Results. Several exports may be
// configured; each keeps its own position in its own spool.
type Export struct {
	// Type is "jsonl" (one JSON Result per line) or "otlp".
	Type string `toml:"type"`
	// Name distinguishes exports in metrics and the spool. Default: the type
	// and index ("otlp-0"). Renaming an OTLP export starts a new, empty
	// spool position.
	Name string `toml:"name"`
	// Path is the jsonl file; "-" or "" is standard output.
	Path string `toml:"path"`

	// Endpoint is the OTLP receiver as "host:port" (otlp only, required).
	Endpoint string `toml:"endpoint"`
	// Protocol is "grpc" (default, port 4317 by convention) or "http"
	// (protobuf over HTTP, port 4318, paths /v1/logs, /v1/traces, /v1/metrics).
	Protocol string `toml:"protocol"`
	// TLS secures the link; TLS is on unless tls.insecure is set.
	TLS ExportTLS `toml:"tls"`
	// Headers are sent with every export request (e.g. a tenant ID). Put
	// credentials in BearerToken instead: header values are not secret.
	Headers map[string]string `toml:"headers"`
	// BearerToken, when set, is sent as "Authorization: Bearer …".
	BearerToken Secret `toml:"bearer_token"`
	// Gzip compresses export requests (less bandwidth, a little CPU).
	Gzip bool `toml:"gzip"`
	// SpoolMaxBytes bounds the spool of this export; when a new Result
	// would exceed it, the oldest Results are evicted (and counted).
	// Default 64 MiB (about 30 000 typical Results).
	SpoolMaxBytes int64 `toml:"spool_max_bytes"`
	// SpoolMaxAge evicts Results older than this (counted), so that an
	// endpoint down for days does not replay stale runs. Default "24h".
	SpoolMaxAge Duration `toml:"spool_max_age"`
	// BatchSize is the number of Results per export request. Default 256.
	BatchSize int `toml:"batch_size"`
	// Timeout bounds one export request. Default "10s".
	Timeout Duration `toml:"timeout"`
	// MaxBackoff caps the exponential backoff while the endpoint is down;
	// backoff starts at 250ms and doubles. Default "30s".
	MaxBackoff Duration `toml:"max_backoff"`
}

// ExportTLS configures TLS and mTLS of an OTLP export.
type ExportTLS struct {
	// Insecure sends plaintext (no TLS); for loopback and tests only.
	Insecure bool `toml:"insecure"`
	// CAFile is a PEM bundle of CAs to trust instead of the system pool.
	CAFile string `toml:"ca_file"`
	// CertFile is the client certificate (PEM) for mTLS; needs KeyFile.
	CertFile string `toml:"cert_file"`
	// KeyFile is the client key for mTLS, a secret reference ("file:/path").
	KeyFile Secret `toml:"key_file"`
	// ServerName overrides the name checked in the server certificate.
	ServerName string `toml:"server_name"`
}

// Export defaults.
const (
	DefaultSpoolMaxBytes = 64 << 20
	DefaultBatchSize     = 256
	maxBatchSize         = 10000
)

// Default export timings.
var (
	DefaultSpoolMaxAge   = Dur(24 * time.Hour)
	DefaultExportTimeout = Dur(10 * time.Second)
	DefaultMaxBackoff    = Dur(30 * time.Second)
)

func (e *Export) applyOTLPDefaults() {
	if e.Protocol == "" {
		e.Protocol = "grpc"
	}
	if e.SpoolMaxBytes == 0 {
		e.SpoolMaxBytes = DefaultSpoolMaxBytes
	}
	if e.SpoolMaxAge.IsZero() {
		e.SpoolMaxAge = DefaultSpoolMaxAge
	}
	if e.BatchSize == 0 {
		e.BatchSize = DefaultBatchSize
	}
	if e.Timeout.IsZero() {
		e.Timeout = DefaultExportTimeout
	}
	if e.MaxBackoff.IsZero() {
		e.MaxBackoff = DefaultMaxBackoff
	}
}

// validateKind validates export types beyond jsonl (and applies the OTLP
// defaults, which only make sense for a known type); it reports whether
// the type is known.
func (e *Export) validateKind(p *problems, key string) bool {
	if e.Type != "otlp" {
		return false
	}
	e.applyOTLPDefaults()
	if e.Endpoint == "" {
		p.add(key+".endpoint", "is required (\"host:port\" of the OTLP receiver)")
	} else if _, port, err := net.SplitHostPort(e.Endpoint); err != nil || port == "" {
		p.add(key+".endpoint", fmt.Sprintf("%q is not host:port", e.Endpoint))
	}
	if e.Protocol != "grpc" && e.Protocol != "http" {
		p.add(key+".protocol", fmt.Sprintf("unknown protocol %q (want \"grpc\" or \"http\")", e.Protocol))
	}
	if e.SpoolMaxBytes < 1<<20 {
		p.add(key+".spool_max_bytes", "must be at least 1048576 (1 MiB)")
	}
	if e.BatchSize < 1 || e.BatchSize > maxBatchSize {
		p.add(key+".batch_size", fmt.Sprintf("must be between 1 and %d", maxBatchSize))
	}
	for k, v := range e.Headers {
		if strings.EqualFold(k, "authorization") {
			p.add(key+".headers", "set the Authorization header through bearer_token (a secret reference), not headers")
		}
		if k == "" || strings.ContainsAny(k, " :\r\n") || strings.ContainsAny(v, "\r\n") {
			p.add(key+".headers", fmt.Sprintf("header %q is not a valid HTTP header", k))
		}
	}
	t := &e.TLS
	if t.Insecure && (t.CAFile != "" || t.CertFile != "" || t.KeyFile.IsSet()) {
		p.add(key+".tls.insecure", "plaintext export cannot use ca_file, cert_file or key_file")
	}
	if (t.CertFile != "") != t.KeyFile.IsSet() {
		p.add(key+".tls", "cert_file and key_file go together (mTLS)")
	}
	for _, f := range []struct{ k, path string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			p.add(key+".tls."+f.k, fmt.Sprintf("cannot read %s", f.path))
		}
	}
	if e.BearerToken.IsSet() && t.Insecure && !isLoopback(e.Endpoint) {
		p.add(key+".bearer_token", "would be sent in plaintext (tls.insecure) to a non-loopback endpoint")
	}
	return true
}

func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateExportNames rejects two exports with one name: OTLP exports
// name their spool queue, and two exports sharing a queue would delete
// each other's Results.
func validateExportNames(p *problems, exports []Export) {
	first := map[string]int{}
	for i, e := range exports {
		if j, dup := first[e.Name]; dup {
			p.add(fmt.Sprintf("export[%d].name", i), fmt.Sprintf("duplicate export name %q (first used by export[%d])", e.Name, j))
			continue
		}
		first[e.Name] = i
	}
}

package config

import (
	"fmt"
	"net"
	"os"
	"time"
)

// Ingest configures the aggregator's OTLP receivers.
type Ingest struct {
	// GRPC is the OTLP/gRPC listen address. Default "127.0.0.1:4317".
	GRPC string `toml:"grpc"`
	// HTTP is the OTLP/HTTP listen address (protobuf and JSON, gzip).
	// Default "127.0.0.1:4318".
	HTTP string `toml:"http"`
	// MaxRequestBytes bounds one export request, after decompression.
	// Default 8 MiB (a batch of about 4 000 Results).
	MaxRequestBytes int `toml:"max_request_bytes"`
	// BearerToken, when set, is required on every OTLP request
	// ("Authorization: Bearer …" header or gRPC metadata).
	BearerToken Secret `toml:"bearer_token"`
	// DedupWindow is how long a Result ID is remembered; a re-send within
	// it is dropped. It must cover the agents' spool_max_age so that a
	// replay after an outage is not counted twice. Default "24h".
	DedupWindow Duration `toml:"dedup_window"`
	// DedupMaxIDs bounds the IDs remembered (about 130 bytes each in
	// memory, 100 on disk; see the README). When full, the oldest ID is
	// forgotten early. Default 1000000 (~130 MiB).
	DedupMaxIDs int `toml:"dedup_max_ids"`
	// TLS serves both receivers over TLS when tls.cert_file is set.
	TLS IngestTLS `toml:"tls"`
	// Forward lists downstream OTLP endpoints that receive everything
	// ingested plus the aggregator's own metrics.
	Forward []Forward `toml:"forward"`
}

// IngestTLS configures TLS (and mTLS) of the OTLP receivers.
type IngestTLS struct {
	// CertFile is the server certificate chain (PEM); with KeyFile it
	// turns TLS on for both receivers.
	CertFile string `toml:"cert_file"`
	// KeyFile is the server key, a secret reference ("file:/path").
	KeyFile Secret `toml:"key_file"`
	// ClientCAFile, when set, requires every client to present a
	// certificate signed by one of these CAs (mTLS).
	ClientCAFile string `toml:"client_ca_file"`
}

// Forward is one downstream OTLP endpoint. A slow or dead downstream never
// blocks ingest: requests wait in a bounded queue and are dropped (counted)
// when it is full.
type Forward struct {
	// Name identifies the forward in metrics. Default "forward-N".
	Name string `toml:"name"`
	// Endpoint is "host:port". Required.
	Endpoint string `toml:"endpoint"`
	// Protocol is "grpc" (default) or "http".
	Protocol string `toml:"protocol"`
	// Insecure sends plaintext (no TLS).
	Insecure bool `toml:"insecure"`
	// Headers are sent with every request.
	Headers map[string]string `toml:"headers"`
	// QueueSize bounds the requests waiting for this downstream. Default 1024.
	QueueSize int `toml:"queue_size"`
	// Timeout bounds one forwarded request. Default "10s".
	Timeout Duration `toml:"timeout"`
}

// Ingest defaults.
const (
	DefaultMaxRequestBytes = 8 << 20
	DefaultDedupMaxIDs     = 1_000_000
	DefaultForwardQueue    = 1024
)

// DefaultDedupWindow is how long Result IDs are remembered.
var DefaultDedupWindow = Dur(24 * time.Hour)

func (in *Ingest) applyDefaults() {
	if in.GRPC == "" {
		in.GRPC = "127.0.0.1:4317"
	}
	if in.HTTP == "" {
		in.HTTP = "127.0.0.1:4318"
	}
	if in.MaxRequestBytes == 0 {
		in.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if in.DedupWindow.IsZero() {
		in.DedupWindow = DefaultDedupWindow
	}
	if in.DedupMaxIDs == 0 {
		in.DedupMaxIDs = DefaultDedupMaxIDs
	}
	for i := range in.Forward {
		f := &in.Forward[i]
		if f.Name == "" {
			f.Name = fmt.Sprintf("forward-%d", i)
		}
		if f.Protocol == "" {
			f.Protocol = "grpc"
		}
		if f.QueueSize == 0 {
			f.QueueSize = DefaultForwardQueue
		}
		if f.Timeout.IsZero() {
			f.Timeout = DefaultExportTimeout
		}
	}
}

func (in *Ingest) validate(p *problems, key string) {
	for _, a := range []struct{ k, v string }{{"grpc", in.GRPC}, {"http", in.HTTP}} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			p.add(key+"."+a.k, fmt.Sprintf("%q is not host:port", a.v))
		}
	}
	if in.GRPC == in.HTTP {
		p.add(key+".http", "must differ from ingest.grpc")
	}
	if in.MaxRequestBytes < 64<<10 || in.MaxRequestBytes > 256<<20 {
		p.add(key+".max_request_bytes", "must be between 65536 and 268435456")
	}
	if in.DedupWindow.D < time.Minute && in.DedupWindow.problem() == "" {
		p.add(key+".dedup_window", "must be at least 1m")
	}
	if in.DedupMaxIDs < 1000 {
		p.add(key+".dedup_max_ids", "must be at least 1000")
	}
	t := &in.TLS
	if (t.CertFile != "") != t.KeyFile.IsSet() {
		p.add(key+".tls", "cert_file and key_file go together")
	}
	if t.ClientCAFile != "" && t.CertFile == "" {
		p.add(key+".tls.client_ca_file", "mTLS needs the server's own cert_file and key_file")
	}
	for _, f := range []struct{ k, path string }{{"cert_file", t.CertFile}, {"client_ca_file", t.ClientCAFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			p.add(key+".tls."+f.k, fmt.Sprintf("cannot read %s", f.path))
		}
	}
	names := map[string]bool{}
	for i := range in.Forward {
		f := &in.Forward[i]
		fk := fmt.Sprintf("%s.forward[%d]", key, i)
		if names[f.Name] {
			p.add(fk+".name", fmt.Sprintf("duplicate forward name %q", f.Name))
		}
		names[f.Name] = true
		if _, _, err := net.SplitHostPort(f.Endpoint); err != nil {
			p.add(fk+".endpoint", fmt.Sprintf("%q is not host:port", f.Endpoint))
		}
		if f.Protocol != "grpc" && f.Protocol != "http" {
			p.add(fk+".protocol", fmt.Sprintf("unknown protocol %q (want \"grpc\" or \"http\")", f.Protocol))
		}
		if f.QueueSize < 1 || f.QueueSize > 1<<20 {
			p.add(fk+".queue_size", "must be between 1 and 1048576")
		}
	}
}

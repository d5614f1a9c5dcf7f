package export

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"

	"github.com/vantage-fleet/vantage/config"
)

// clients are the three OpenTelemetry OTLP exporters of one export.
type clients struct {
	logs    sdklog.Exporter
	traces  sdktrace.SpanExporter
	metrics sdkmetric.Exporter
}

// maxRequestBytes keeps export requests under the aggregator's default
// ingest limit.
const maxRequestBytes = 8 << 20

// newClients builds the exporters with the SDK's own retry turned off: the
// drain loop retries results from the spool with its own backoff, so a
// request is never held in memory across an outage; traces and metrics are
// best-effort and fail fast (cumulative metrics recover at the next export).
func newClients(e *config.Export) (clients, error) {
	tlsCfg, err := TLSConfig(e.TLS)
	if err != nil {
		return clients{}, err
	}
	headers := map[string]string{}
	for k, v := range e.Headers {
		headers[k] = v
	}
	if e.BearerToken.IsSet() {
		headers["Authorization"] = "Bearer " + e.BearerToken.Value()
	}
	ctx := context.Background()
	var c clients
	switch e.Protocol {
	case "grpc":
		headers = lowerKeys(headers)
		dial := grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: max(e.MaxBackoff.D, time.Second)},
			MinConnectTimeout: e.Timeout.D,
		})
		lo := []otlploggrpc.Option{otlploggrpc.WithEndpoint(e.Endpoint), otlploggrpc.WithHeaders(headers),
			otlploggrpc.WithTimeout(e.Timeout.D), otlploggrpc.WithRetry(otlploggrpc.RetryConfig{Enabled: false}),
			otlploggrpc.WithDialOption(dial), otlploggrpc.WithMaxRequestSize(maxRequestBytes)}
		to := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(e.Endpoint), otlptracegrpc.WithHeaders(headers),
			otlptracegrpc.WithTimeout(e.Timeout.D), otlptracegrpc.WithDialOption(dial), otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false})}
		mo := []otlpmetricgrpc.Option{otlpmetricgrpc.WithEndpoint(e.Endpoint), otlpmetricgrpc.WithHeaders(headers),
			otlpmetricgrpc.WithTimeout(e.Timeout.D), otlpmetricgrpc.WithDialOption(dial), otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: false})}
		if tlsCfg == nil {
			lo, to, mo = append(lo, otlploggrpc.WithInsecure()), append(to, otlptracegrpc.WithInsecure()), append(mo, otlpmetricgrpc.WithInsecure())
		} else {
			cr := credentials.NewTLS(tlsCfg)
			lo, to, mo = append(lo, otlploggrpc.WithTLSCredentials(cr)), append(to, otlptracegrpc.WithTLSCredentials(cr)), append(mo, otlpmetricgrpc.WithTLSCredentials(cr))
		}
		if e.Gzip {
			lo, to, mo = append(lo, otlploggrpc.WithCompressor("gzip")), append(to, otlptracegrpc.WithCompressor("gzip")), append(mo, otlpmetricgrpc.WithCompressor("gzip"))
		}
		if c.logs, err = otlploggrpc.New(ctx, lo...); err != nil {
			return c, err
		}
		if c.traces, err = otlptracegrpc.New(ctx, to...); err != nil {
			return c, err
		}
		c.metrics, err = otlpmetricgrpc.New(ctx, mo...)
	case "http":
		lo := []otlploghttp.Option{otlploghttp.WithEndpoint(e.Endpoint), otlploghttp.WithHeaders(headers),
			otlploghttp.WithTimeout(e.Timeout.D), otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}),
			otlploghttp.WithMaxRequestSize(maxRequestBytes)}
		to := []otlptracehttp.Option{otlptracehttp.WithEndpoint(e.Endpoint), otlptracehttp.WithHeaders(headers), otlptracehttp.WithTimeout(e.Timeout.D),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false})}
		mo := []otlpmetrichttp.Option{otlpmetrichttp.WithEndpoint(e.Endpoint), otlpmetrichttp.WithHeaders(headers), otlpmetrichttp.WithTimeout(e.Timeout.D),
			otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false})}
		if tlsCfg == nil {
			lo, to, mo = append(lo, otlploghttp.WithInsecure()), append(to, otlptracehttp.WithInsecure()), append(mo, otlpmetrichttp.WithInsecure())
		} else {
			lo, to, mo = append(lo, otlploghttp.WithTLSClientConfig(tlsCfg)), append(to, otlptracehttp.WithTLSClientConfig(tlsCfg)), append(mo, otlpmetrichttp.WithTLSClientConfig(tlsCfg))
		}
		if e.Gzip {
			lo = append(lo, otlploghttp.WithCompression(otlploghttp.GzipCompression))
			to = append(to, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
			mo = append(mo, otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
		}
		if c.logs, err = otlploghttp.New(ctx, lo...); err != nil {
			return c, err
		}
		if c.traces, err = otlptracehttp.New(ctx, to...); err != nil {
			return c, err
		}
		c.metrics, err = otlpmetrichttp.New(ctx, mo...)
	default:
		return c, fmt.Errorf("unknown protocol %q", e.Protocol)
	}
	return c, err
}

func lowerKeys(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		b := []byte(k)
		for i, ch := range b {
			if 'A' <= ch && ch <= 'Z' {
				b[i] = ch + 'a' - 'A'
			}
		}
		out[string(b)] = v
	}
	return out
}

// TLSConfig builds the client TLS config of an export: nil for plaintext
// (tls.insecure), else TLS 1.2+ with the configured CAs and, for mTLS,
// the client certificate. Errors never contain key material.
func TLSConfig(t config.ExportTLS) (*tls.Config, error) {
	if t.Insecure {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s: no PEM certificate found", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := os.ReadFile(t.CertFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file: %w", err)
		}
		pair, err := tls.X509KeyPair(cert, []byte(t.KeyFile.Value()))
		if err != nil {
			return nil, errors.New("tls: cert_file and key_file do not form a valid key pair")
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

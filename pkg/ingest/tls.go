package ingest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/vantage-fleet/vantage/config"
)

// ServerTLS builds the receivers' TLS config: nil when no certificate is
// configured (plaintext), TLS 1.2+ otherwise, and mTLS with a client CA.
// Errors never contain key material.
func ServerTLS(t config.IngestTLS) (*tls.Config, error) {
	if t.CertFile == "" {
		return nil, nil
	}
	certPEM, err := os.ReadFile(t.CertFile)
	if err != nil {
		return nil, fmt.Errorf("ingest.tls.cert_file: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, []byte(t.KeyFile.Value()))
	if err != nil {
		return nil, errors.New("ingest.tls: cert_file and key_file do not form a valid key pair")
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("ingest.tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ingest.tls.client_ca_file %s: no PEM certificate found", t.ClientCAFile)
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

package ingest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vantage-fleet/vantage/config"
	"github.com/vantage-fleet/vantage/pkg/telemetry"
)

// testPKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, and returns their paths and the client key PEM.
type testPKI struct {
	caFile, serverCert, clientCert string
	serverKey, clientKey           string
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write := func(name string, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(serial int64, usage x509.ExtKeyUsage) ([]byte, string) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(k)
		return der, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	}
	p := testPKI{caFile: write("ca.pem", "CERTIFICATE", caDER)}
	var der []byte
	der, p.serverKey = leaf(2, x509.ExtKeyUsageServerAuth)
	p.serverCert = write("server.pem", "CERTIFICATE", der)
	der, p.clientKey = leaf(3, x509.ExtKeyUsageClientAuth)
	p.clientCert = write("client.pem", "CERTIFICATE", der)
	return p
}

func TestIngest_MutualTLS_AgentWithCertificateDelivers_WithoutIsRefused(t *testing.T) {
	pki := newPKI(t)
	srvTLS, err := ServerTLS(config.IngestTLS{CertFile: pki.serverCert, KeyFile: config.SecretValue("file:k", pki.serverKey), ClientCAFile: pki.caFile})
	if err != nil {
		t.Fatal(err)
	}
	a := &aggregator{dir: t.TempDir(), reg: telemetry.NewRegistry(), store: NewStore(100), tls: srvTLS}
	a.start(t, "", "")
	t.Cleanup(a.stop)
	for i, proto := range []string{"grpc", "http"} {
		addr := map[string]string{"grpc": a.grpcAddr, "http": a.httpAddr}[proto]
		e := exportConfig(addr, proto)
		e.TLS = config.ExportTLS{CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: config.SecretValue("file:c", pki.clientKey)}
		ag := startAgent(t, t.TempDir(), e)
		if err := ag.exp.Put(context.Background(), run(i, "eu")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, proto+" result over mTLS", func() bool { return a.store.Accepted() == int64(i+1) })
		ag.close()
	}
	// Without a client certificate the handshake fails: nothing arrives.
	e := exportConfig(a.grpcAddr, "grpc")
	e.TLS = config.ExportTLS{CAFile: pki.caFile}
	ag := startAgent(t, t.TempDir(), e)
	ag.exp.Put(context.Background(), run(9, "eu"))
	waitFor(t, "failed attempts", func() bool { return ag.counter("vantage.agent.export.failures") >= 2 })
	if a.store.Accepted() != 2 || ag.exp.Stats().Entries != 1 {
		t.Fatalf("accepted %d, spooled %d: a client without certificate got through", a.store.Accepted(), ag.exp.Stats().Entries)
	}
}

package lab

import (
	"encoding/pem"
	"net"
	"net/http/httptest"
)

func certPEM(s *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

package proxy

import (
	"crypto/tls"
	"testing"
)

func testTLS(t testing.TB) *tls.Config {
	t.Helper()
	certPEM, keyPEM, err := SelfSigned([]string{"localhost"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

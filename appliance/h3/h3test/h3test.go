// Package h3test helps tests and benchmarks of HTTP/3: a self-signed
// certificate written to PEM files, a client that trusts it, and a pair of
// TCP and UDP sockets on the same loopback port (what an appliance with
// --h3 listens on).
package h3test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Cert is a self-signed certificate for 127.0.0.1, ::1 and localhost.
type Cert struct {
	CertFile, KeyFile string
	// Pool trusts the certificate.
	Pool *x509.CertPool
}

// WriteCert creates a certificate valid for a day and writes it to dir.
func WriteCert(dir string) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("h3test: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "fillcast test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("h3test: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("h3test: %w", err)
	}
	c := &Cert{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), Pool: x509.NewCertPool()}
	if err := os.WriteFile(c.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, fmt.Errorf("h3test: %w", err)
	}
	if err := os.WriteFile(c.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return nil, fmt.Errorf("h3test: %w", err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("h3test: %w", err)
	}
	c.Pool.AddCert(parsed)
	return c, nil
}

// ClientTLS returns a client TLS config that trusts c.
func (c *Cert) ClientTLS() *tls.Config { return &tls.Config{RootCAs: c.Pool} }

// ListenPair opens a TCP listener and a UDP socket on the same free port
// of 127.0.0.1, retrying when another process holds the UDP port.
func ListenPair() (net.Listener, *net.UDPConn, error) {
	var last error
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("h3test: %w", err)
		}
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ln.Addr().(*net.TCPAddr).Port})
		if err == nil {
			return ln, pc, nil
		}
		last = err
		ln.Close()
	}
	return nil, nil, errors.Join(errors.New("h3test: no free TCP+UDP port pair"), last)
}

// FreePort returns a port number free on 127.0.0.1 for both TCP and UDP
// at the time of the call, for a process that opens the sockets itself.
// The port is drawn at random from below the kernel's ephemeral range, so
// that a parallel test binding port 0 (or dialling out) cannot be handed
// the same port before the process binds it.
func FreePort() (int, error) {
	lo := ephemeralLow()
	var last error
	for range 50 {
		port := 10000 + mrand.IntN(lo-10000)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			last = err
			continue
		}
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		ln.Close()
		if err != nil {
			last = err
			continue
		}
		pc.Close()
		return port, nil
	}
	return 0, errors.Join(errors.New("h3test: no free port below the ephemeral range"), last)
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 11000 {
		return 32768
	}
	return n
}

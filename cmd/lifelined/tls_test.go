package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// certFiles writes a self-signed certificate for 127.0.0.1 and its key as
// PEM files, and returns their paths and a pool that trusts it.
func certFiles(t *testing.T) (cert, key string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lifelined test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return cert, key, pool
}

// TestTLS starts lifelined with --tls-cert/--tls-key and
// --mqtt-tls-cert/--mqtt-tls-key: the API answers over HTTPS only, and a
// terminal connects over TLS only.
func TestTLS(t *testing.T) {
	cert, key, pool := certFiles(t)
	m := NewMain()
	m.Config.HTTP, m.Config.MQTTListen, m.Config.DataDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	m.Config.AdminPassword = testAdminPassword
	m.Config.TLSCert, m.Config.TLSKey, m.Config.MQTTTLSCert, m.Config.MQTTTLSKey = cert, key, cert, key
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tlsConf := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}, Timeout: 5 * time.Second}
	addr := m.HTTPAddr().String()
	waitFor(t, 10*time.Second, "HTTPS", func() bool {
		resp, err := client.Get("https://" + addr + "/livez")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if resp, err := http.Get("http://" + addr + "/livez"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered on a TLS server")
		}
	}

	// A terminal over TLS, with credentials issued over HTTPS.
	s := &server{Main: m}
	token, err := func() (string, error) {
		var out struct{ Token string }
		_, err := requestJSONWith(client, "", "POST", "https://"+addr+"/api/v1/sessions", map[string]string{"username": "admin", "password": testAdminPassword}, &out)
		return out.Token, err
	}()
	if err != nil || token == "" {
		t.Fatalf("sign in over HTTPS: %v", err)
	}
	var c struct{ Password string }
	if _, err := requestJSONWith(client, token, "POST", "https://"+addr+"/api/v1/units/FS-01/credentials", nil, &c); err != nil || c.Password == "" {
		t.Fatalf("credentials over HTTPS: %v", err)
	}
	if s.MQTTURL()[:6] != "ssl://" {
		t.Fatalf("broker URL %s: want ssl://", s.MQTTURL())
	}
	secure := paho.NewClient(terminalOptions(s.MQTTURL(), "FS-01", c.Password).SetTLSConfig(tlsConf))
	if tok := secure.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("terminal over TLS: %v", tok.Error())
	}
	secure.Disconnect(0)
	plain := paho.NewClient(terminalOptions("tcp://"+s.MQTTURL()[len("ssl://"):], "FS-01", c.Password).SetConnectTimeout(2 * time.Second))
	if tok := plain.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		plain.Disconnect(0)
		t.Fatal("a terminal connected without TLS to a TLS broker")
	}
}

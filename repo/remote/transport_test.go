package remote_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
)

// testCA issues certificates for a test: a server's for 127.0.0.1 and a
// client's.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "otree test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate and key signed by the CA, as PEM, and as a
// tls.Certificate.
func (ca *testCA) issue(t *testing.T, serial int64, client bool) (certPEM, keyPEM []byte, tc tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "otree test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	if client {
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	tc, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM, tc
}

func writePEM(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pullWith(t *testing.T, url string, opts map[string]string) (*repo.Repo, error) {
	t.Helper()
	dst, err := repo.Init(filepath.Join(t.TempDir(), "dest"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	// A malformed option is refused here already.
	if _, err := remote.AddRemote(dst, remote.Remote{Name: "origin", URL: url}, remote.AddOptions{Set: opts}); err != nil {
		return dst, err
	}
	_, err = remote.Pull(context.Background(), dst, fastOpts("os/stable"))
	return dst, err
}

// tls-permissive accepts a certificate no trusted authority signed but,
// as OSTree's, not one for another host, whether the remote names it by
// name or by IP address; the refusal names the option and is not retried.
func TestPullTLSPermissiveChecksHost(t *testing.T) {
	o := newOrigin(t)
	want := o.commit("os/stable", tree, 1700000000)
	var h2 atomic.Int64
	serve := func(cert tls.Certificate) (*httptest.Server, *atomic.Int64) {
		var conns atomic.Int64
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor == 2 {
				h2.Add(1)
			}
			o.srv.Config.Handler.ServeHTTP(w, r)
		}))
		srv.EnableHTTP2 = true
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv, &conns
	}
	permissive := map[string]string{remote.KeyTLSPermissive: "true"}
	// Signed by an authority nobody trusts, for 127.0.0.1: accepted there.
	_, _, ipCert := newTestCA(t).issue(t, 2, false)
	srv, _ := serve(ipCert)
	dst, err := pullWith(t, srv.URL, permissive)
	if err != nil {
		t.Fatalf("pull with tls-permissive from the certificate's host: %v", err)
	}
	if got := mustRef(t, dst, "origin:os/stable"); got != want {
		t.Errorf("pulled %s, want %s", got, want)
	}
	if h2.Load() == 0 {
		t.Error("no HTTP/2 request with tls-permissive, which the server offers")
	}
	// The same server named localhost, which the certificate does not name.
	o.resetHits()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
	_, err = pullWith(t, "https://localhost:"+port, permissive)
	errContains(t, err, "localhost", remote.KeyTLSPermissive)
	// A certificate with no IP address, at 127.0.0.1, through the check
	// VerifyConnection cannot make alone.
	_, _, nameOnly := newTestCA(t).issue(t, 3, true)
	srv, conns := serve(nameOnly)
	_, err = pullWith(t, srv.URL, permissive)
	errContains(t, err, "127.0.0.1", remote.KeyTLSPermissive)
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for a refused certificate, want 1 (no retry)", n)
	}
	if n := o.objectHits(); n != 0 {
		t.Errorf("%d object requests reached a server whose certificate is for another host", n)
	}
}

// A remote's tls-ca-path trusts a private authority for the server's
// certificate, tls-client-cert-path and -key-path present a client
// certificate to a server that requires one, and tls-permissive accepts
// any certificate: OSTree's remote options. An untrusted server fails at
// once, naming the option to set.
func TestPullTLSOptions(t *testing.T) {
	o := newOrigin(t)
	want := o.commit("os/stable", tree, 1700000000)
	ca := newTestCA(t)
	_, _, serverCert := ca.issue(t, 2, false)
	clientCertPEM, clientKeyPEM, _ := ca.issue(t, 3, true)
	_, _, strangerCert := newTestCA(t).issue(t, 4, true)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	srv := httptest.NewUnstartedServer(o.srv.Config.Handler)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caPath := writePEM(t, "ca.pem", ca.pem)
	certPath, keyPath := writePEM(t, "client.pem", clientCertPEM), writePEM(t, "client.key", clientKeyPEM)

	o.resetHits()
	_, err := pullWith(t, srv.URL, nil)
	errContains(t, err, "certificate", remote.KeyTLSCAPath)
	if n := o.objectHits(); n != 0 {
		t.Errorf("%d object requests reached the handler without TLS", n)
	}
	_, err = pullWith(t, srv.URL, map[string]string{remote.KeyTLSCAPath: caPath})
	errContains(t, err, "certificate") // the server wants a client certificate
	dst, err := pullWith(t, srv.URL, map[string]string{remote.KeyTLSCAPath: caPath,
		remote.KeyTLSClientCertPath: certPath, remote.KeyTLSClientKeyPath: keyPath})
	if err != nil {
		t.Fatalf("pull with the CA and a client certificate: %v", err)
	}
	if got := mustRef(t, dst, "origin:os/stable"); got != want {
		t.Errorf("pulled %s, want %s", got, want)
	}
	checkFsck(t, dst)
	if _, err := pullWith(t, srv.URL, map[string]string{remote.KeyTLSPermissive: "true",
		remote.KeyTLSClientCertPath: certPath, remote.KeyTLSClientKeyPath: keyPath}); err != nil {
		t.Errorf("pull with tls-permissive: %v", err)
	}
	// A client certificate another authority signed is refused by the server.
	sc, sk := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: strangerCert.Certificate[0]}), []byte(nil)
	if k, ok := strangerCert.PrivateKey.(*ecdsa.PrivateKey); ok {
		der, _ := x509.MarshalECPrivateKey(k)
		sk = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	}
	_, err = pullWith(t, srv.URL, map[string]string{remote.KeyTLSCAPath: caPath,
		remote.KeyTLSClientCertPath: writePEM(t, "s.pem", sc), remote.KeyTLSClientKeyPath: writePEM(t, "s.key", sk)})
	if err == nil {
		t.Error("a client certificate of another authority was accepted")
	}
	for _, c := range []struct {
		opts map[string]string
		want string
	}{
		{map[string]string{remote.KeyTLSCAPath: filepath.Join(t.TempDir(), "none")}, "no such file"},
		{map[string]string{remote.KeyTLSCAPath: keyPath}, "holds no PEM certificate"},
		{map[string]string{remote.KeyTLSClientCertPath: certPath}, "go together"},
		{map[string]string{remote.KeyTLSPermissive: "yes"}, "not a boolean"},
		{map[string]string{remote.KeyProxy: "not a url"}, remote.KeyProxy},
		{map[string]string{remote.KeyUnconfiguredState: "ask IT for the update server"}, "ask IT for the update server"},
	} {
		_, err := pullWith(t, srv.URL, c.opts)
		errContains(t, err, "remote origin", c.want)
	}
}

// A remote's proxy option sends its requests through that HTTP proxy.
func TestPullProxyOption(t *testing.T) {
	o := newOrigin(t)
	want := o.commit("os/stable", tree, 1700000000)
	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() || !strings.HasPrefix(r.URL.String(), "http://example.invalid/") {
			http.Error(w, "not a proxy request for example.invalid: "+r.URL.String(), http.StatusBadRequest)
			return
		}
		proxied.Add(1)
		r.URL.Host = strings.TrimPrefix(o.srv.URL, "http://")
		r.RequestURI = ""
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			w.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(proxy.Close)
	dst, err := pullWith(t, "http://example.invalid/", map[string]string{remote.KeyProxy: proxy.URL})
	if err != nil {
		t.Fatalf("pull through the proxy: %v", err)
	}
	if got := mustRef(t, dst, "origin:os/stable"); got != want || proxied.Load() < 5 {
		t.Errorf("pulled %s through %d proxied requests; want %s, all requests proxied", got, proxied.Load(), want)
	}
}

// A server nobody answers at fails the pull with an error that names the
// URL once (Go's client repeats it in its own error) and still carries the
// client's *url.Error.
func TestPullUnreachableNamesURLOnce(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL + "/repo"
	srv.Close()
	_, err := pullWith(t, base, nil)
	var fe *remote.FetchError
	var ue *url.Error
	if !errors.As(err, &fe) || !errors.As(err, &ue) {
		t.Fatalf("pull from a closed port: %v, want a *FetchError wrapping a *url.Error", err)
	}
	if n := strings.Count(err.Error(), base); n != 1 || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q names %s %d times; want once, and the cause", err, base, n)
	}
}

// A remote's http2=false keeps its requests on HTTP/1.1 (OSTree's key, for
// servers whose HTTP/2 is broken); unset, HTTP/2 is used where the server
// offers it, as OSTree does.
func TestPullHTTP2Option(t *testing.T) {
	o := newOrigin(t)
	want := o.commit("os/stable", tree, 1700000000)
	ca := newTestCA(t)
	_, _, serverCert := ca.issue(t, 2, false)
	var h1, h2 atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			h2.Add(1)
		} else {
			h1.Add(1)
		}
		o.srv.Config.Handler.ServeHTTP(w, r)
	}))
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caPath := writePEM(t, "ca.pem", ca.pem)

	if _, err := pullWith(t, srv.URL, map[string]string{remote.KeyTLSCAPath: caPath}); err != nil {
		t.Fatal(err)
	}
	if h2.Load() == 0 {
		t.Errorf("without http2=false: %d HTTP/1 and no HTTP/2 requests, want HTTP/2", h1.Load())
	}
	h1.Store(0)
	h2.Store(0)
	dst, err := pullWith(t, srv.URL, map[string]string{remote.KeyTLSCAPath: caPath, remote.KeyHTTP2: "false"})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRef(t, dst, "origin:os/stable"); got != want {
		t.Errorf("pulled %s, want %s", got, want)
	}
	if h2.Load() != 0 || h1.Load() == 0 {
		t.Errorf("with http2=false: %d HTTP/2 and %d HTTP/1 requests, want HTTP/1 only", h2.Load(), h1.Load())
	}
	_, err = pullWith(t, srv.URL, map[string]string{remote.KeyHTTP2: "no"})
	errContains(t, err, "remote origin", remote.KeyHTTP2, "not a boolean")
}

// A remote's custom-backend names the program that fetches it: a pull
// fails naming it, before anything is fetched, as OSTree's does.
func TestPullCustomBackend(t *testing.T) {
	o := newOrigin(t)
	o.commit("os/stable", tree, 1700000000)
	o.resetHits()
	dst, err := pullWith(t, o.srv.URL, map[string]string{remote.KeyCustomBackend: "examplecorp-fetcher"})
	errContains(t, err, "remote origin", remote.KeyCustomBackend, "examplecorp-fetcher")
	if _, err := dst.ReadRef("origin:os/stable"); err == nil {
		t.Error("origin:os/stable was written")
	}
	if n := o.objectHits(); n != 0 {
		t.Errorf("%d objects fetched", n)
	}
}

// unconfigured-state and custom-backend stop pulls only: as in OSTree,
// the remote's refs and summary can still be listed, to see what it
// serves before setting it up.
func TestUnpullableRemoteListsRefs(t *testing.T) {
	o := newOrigin(t)
	want := o.commit("os/stable", tree, 1700000000)
	ctx := context.Background()
	for key, value := range map[string]string{remote.KeyUnconfiguredState: "ask IT for the update server", remote.KeyCustomBackend: "examplecorp-fetcher"} {
		dst, err := pullWith(t, o.srv.URL, map[string]string{key: value})
		errContains(t, err, "remote origin", key, value)
		refs, err := remote.RemoteRefs(ctx, dst, "origin", fastOpts())
		if err != nil || len(refs) != 1 || refs[0].Name != "os/stable" || refs[0].Commit != want {
			t.Errorf("%s: remote refs: %v, %v; want os/stable at %s", key, refs, err, want)
		}
		sum, err := remote.RemoteSummary(ctx, dst, "origin", fastOpts())
		if err != nil {
			t.Errorf("%s: remote summary: %v", key, err)
		} else if id, ok := sum.Lookup("os/stable"); !ok || id != want {
			t.Errorf("%s: remote summary lists os/stable at %s (%v), want %s", key, id, ok, want)
		}
	}
}

// gpg-verify, gpg-verify-summary or gpgkeypath ask for GPG signatures,
// which otree cannot check: rather than pull unchecked, remote add refuses
// them, and a pull from a remote whose config has them (written by hand,
// or by OSTree) fails naming the key before anything is fetched.
func TestPullRefusesGPGKeys(t *testing.T) {
	o := newOrigin(t)
	o.commit("os/stable", tree, 1700000000)
	for _, set := range []map[string]string{
		{remote.KeyGPGVerify: "true"},
		{remote.KeyGPGVerify: "1"},
		{remote.KeyGPGVerifySummary: "true"},
		{remote.KeyGPGKeyPath: "/etc/pki/example.gpg"},
		{remote.KeyGPGVerify: "true", remote.KeySignVerify: "true", remote.KeyVerificationKey: "x"},
	} {
		dst, err := pullWith(t, o.srv.URL, set)
		errContains(t, err, "remote origin", "GPG")
		if rms := remote.ListRemotes(dst); len(rms) != 0 {
			t.Errorf("remote add with %v added %+v", set, rms)
		}
	}
	// Written to the config by hand, or by OSTree: the pull refuses.
	ts := int64(1700000000)
	for k, v := range map[string]string{remote.KeyGPGVerify: "true", remote.KeyGPGVerifySummary: "1", remote.KeyGPGKeyPath: "/k.gpg"} {
		dst, err := pullWith(t, o.srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := dst.UpdateConfig(func(c *repo.Config) error {
			return c.Set(`remote "origin".`+k, v)
		}); err != nil {
			t.Fatal(err)
		}
		ts += 100
		o.commit("os/stable", tree, ts)
		o.resetHits()
		before := mustRef(t, dst, "origin:os/stable")
		_, err = remote.Pull(context.Background(), dst, fastOpts("os/stable"))
		errContains(t, err, "remote origin", k+"="+v, "GPG")
		if got := mustRef(t, dst, "origin:os/stable"); got != before {
			t.Errorf("%s=%s: origin:os/stable moved to %s", k, v, got)
		}
		if n := o.objectHits(); n != 0 {
			t.Errorf("%s=%s: %d objects fetched", k, v, n)
		}
	}
	// gpg-verify=false (what OSTree's remote add --no-gpg-verify writes),
	// with or without a key path, pulls.
	if _, err := pullWith(t, o.srv.URL, map[string]string{remote.KeyGPGVerify: "false", remote.KeyGPGVerifySummary: "0", remote.KeyGPGKeyPath: "/k.gpg"}); err != nil {
		t.Errorf("gpg-verify=false: %v", err)
	}

	// OSTree's remote add --gpg-import writes no key to the config, but
	// the keys to check with beside it, in NAME.trustedkeys.gpg: with
	// gpg-verify unset the pull refuses, naming that file.
	dst, err := pullWith(t, o.srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	keyring := dst.Path("origin.trustedkeys.gpg")
	if err := os.WriteFile(keyring, []byte("imported keys"), 0o644); err != nil {
		t.Fatal(err)
	}
	ts += 100
	o.commit("os/stable", tree, ts)
	o.resetHits()
	before := mustRef(t, dst, "origin:os/stable")
	_, err = remote.Pull(context.Background(), dst, fastOpts("os/stable"))
	errContains(t, err, "remote origin", keyring, "GPG", remote.KeyGPGVerify+"=false")
	if got := mustRef(t, dst, "origin:os/stable"); got != before {
		t.Errorf("with %s: origin:os/stable moved to %s", keyring, got)
	}
	if n := o.objectHits(); n != 0 {
		t.Errorf("with %s: %d objects fetched", keyring, n)
	}
	// gpg-verify=false says to pull without them, as in OSTree.
	if err := dst.UpdateConfig(func(c *repo.Config) error {
		return c.Set(`remote "origin".`+remote.KeyGPGVerify, "false")
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Pull(context.Background(), dst, fastOpts("os/stable")); err != nil {
		t.Errorf("with %s and gpg-verify=false: %v", keyring, err)
	}
	// remote delete takes the keys with it, as OSTree's does: a remote
	// added again under the name pulls.
	if err := remote.DeleteRemote(dst, "origin"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(keyring); err == nil {
		t.Errorf("remote delete left %s", keyring)
	}
	if _, err := remote.AddRemote(dst, remote.Remote{Name: "origin", URL: o.srv.URL}, remote.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Pull(context.Background(), dst, fastOpts("os/stable")); err != nil {
		t.Errorf("a remote added again after its delete: %v", err)
	}
}

// A password in a remote's url (or contenturl) is sent to the server but
// shown as *** in errors and logs, which others than the admin read, as
// OSTree hides it.
func TestPullHidesURLPassword(t *testing.T) {
	o := newOrigin(t)
	want := o.commit("os/stable", tree, 1700000000)
	o.fault = func(w http.ResponseWriter, req *http.Request, _ int) bool {
		if u, p, ok := req.BasicAuth(); !ok || u != "u" || p != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return true
		}
		return false
	}
	host := strings.TrimPrefix(o.srv.URL, "http://")
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pull := func(url, content string) error {
		t.Helper()
		dst, err := repo.Init(filepath.Join(t.TempDir(), "dest"), repo.InitOptions{Mode: repo.ModeBareUser})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dst.Close() })
		set := map[string]string{}
		if content != "" {
			set["contenturl"] = content
		}
		if _, err := remote.AddRemote(dst, remote.Remote{Name: "origin", URL: url}, remote.AddOptions{Set: set}); err != nil {
			t.Fatal(err)
		}
		opts := fastOpts("os/stable")
		opts.Logger = logger
		_, err = remote.Pull(context.Background(), dst, opts)
		if err == nil && mustRef(t, dst, "origin:os/stable") != want {
			t.Errorf("pull from %s: origin:os/stable is not %s", url, want)
		}
		return err
	}
	if err := pull("http://u:s3cret@"+host, ""); err != nil {
		t.Fatalf("pull with the right password: %v", err)
	}
	if err := pull("http://u:s3cret@"+host, "http://u:s3cret@"+host+"/"); err != nil {
		t.Fatalf("pull with the right password in url and contenturl: %v", err)
	}
	err := pull("http://u:wrong@"+host, "")
	if err == nil || !strings.Contains(err.Error(), "http://u:***@"+host+"/") {
		t.Errorf("pull with a wrong password: %v, want an error naming http://u:***@%s/", err, host)
	}
	err = pull("http://u:s3cret@"+host, "http://u:wrong@"+host+"/")
	if err == nil || !strings.Contains(err.Error(), "http://u:***@"+host+"/objects/") {
		t.Errorf("pull with a wrong contenturl password: %v, want an error naming http://u:***@%s/objects/", err, host)
	}
	if !strings.Contains(logs.String(), "u:***@") {
		t.Errorf("the log names no URL:\n%s", logs.String())
	}
	for _, s := range []string{err.Error(), logs.String()} {
		if strings.Contains(s, "s3cret") || strings.Contains(s, "wrong") {
			t.Errorf("a password is shown:\n%s", s)
		}
	}
}

// connectProxy is an HTTP proxy that tunnels CONNECT requests, unless
// refuse returns a status to answer instead; it counts the CONNECTs.
func connectProxy(t *testing.T, refuse func(*http.Request) int) (addr string, connects *atomic.Int64) {
	t.Helper()
	connects = new(atomic.Int64)
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		connects.Add(1)
		if code := refuse(r); code != 0 {
			w.Header().Set("Proxy-Authenticate", `Basic realm="test"`)
			w.WriteHeader(code)
			return
		}
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
		down, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		if n := buf.Reader.Buffered(); n > 0 {
			b, _ := buf.Reader.Peek(n)
			up.Write(b)
		}
		go func() { io.Copy(up, down); up.Close() }()
		io.Copy(down, up)
		down.Close()
	}))
	t.Cleanup(p.Close)
	return strings.TrimPrefix(p.URL, "http://"), connects
}

// A proxy that refuses the tunnel to an https server fails the pull with
// an error naming the proxy, its password hidden, and its answer; a
// refusal is not retried, a proxy's 5xx is. A remote's proxy may be a bare
// HOST:PORT, an HTTP proxy, as OSTree takes it.
func TestPullProxyRefusal(t *testing.T) {
	o := newOrigin(t)
	want := o.commit("os/stable", tree, 1700000000)
	srv := httptest.NewUnstartedServer(o.srv.Config.Handler)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("u:s3cret"))
	var status atomic.Int64 // the proxy's answer to every CONNECT, when set
	addr, connects := connectProxy(t, func(r *http.Request) int {
		if s := status.Load(); s != 0 {
			return int(s)
		}
		if r.Header.Get("Proxy-Authorization") != auth {
			return http.StatusProxyAuthRequired
		}
		return 0
	})
	tlsOpts := map[string]string{remote.KeyTLSPermissive: "true"}
	with := func(proxy string) map[string]string {
		m := map[string]string{remote.KeyProxy: proxy}
		for k, v := range tlsOpts {
			m[k] = v
		}
		return m
	}

	dst, err := pullWith(t, srv.URL, with("http://u:s3cret@"+addr))
	if err != nil {
		t.Fatalf("pull through the proxy with its password: %v", err)
	}
	if got := mustRef(t, dst, "origin:os/stable"); got != want {
		t.Errorf("pulled %s, want %s", got, want)
	}

	connects.Store(0)
	dst, err = pullWith(t, srv.URL, with("http://u:wrong@"+addr))
	errContains(t, err, srv.URL+"/config", "proxy http://u:***@"+addr+" answered 407 Proxy Authentication Required")
	var pe *remote.ProxyError
	if !errors.As(err, &pe) || pe.Status != http.StatusProxyAuthRequired {
		t.Errorf("error %v: want a *remote.ProxyError with status 407", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error %q shows the proxy's password", err)
	}
	if n := connects.Load(); n != 1 {
		t.Errorf("the refused CONNECT was made %d times, want once", n)
	}
	checkNothingMoved(t, dst)

	status.Store(http.StatusBadGateway)
	connects.Store(0)
	_, err = pullWith(t, srv.URL, with(addr))
	errContains(t, err, "proxy http://"+addr+" answered 502")
	if n := connects.Load(); n != remote.DefaultAttempts {
		t.Errorf("a proxy answering 502 got %d CONNECTs, want %d (retried)", n, remote.DefaultAttempts)
	}

	status.Store(0)
	if _, err := pullWith(t, srv.URL, with("u:s3cret@"+addr)); err != nil {
		t.Errorf("pull through a proxy given as USER:PASSWORD@HOST:PORT: %v", err)
	}
	for _, bad := range []string{"ftp://u:s3cret@" + addr, "http://u:s3cret@" + addr + ":x"} {
		_, err := pullWith(t, srv.URL, with(bad))
		errContains(t, err, remote.KeyProxy, "u:***@")
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("proxy %s: error %q shows the password", bad, err)
		}
	}
}

// A certificate error the remote's tls-ca-path cannot mend (expired, for
// another host) gets no hint to set it, and one it did not mend names the
// file that was tried.
func TestPullTLSErrorHints(t *testing.T) {
	o := newOrigin(t)
	o.commit("os/stable", tree, 1700000000)
	ca := newTestCA(t)
	caPath := writePEM(t, "ca.pem", ca.pem)
	otherPath := writePEM(t, "other.pem", newTestCA(t).pem)
	serve := func(cert tls.Certificate) string {
		srv := httptest.NewUnstartedServer(o.srv.Config.Handler)
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.URL
	}
	_, _, good := ca.issue(t, 2, false)
	goodURL := serve(good)
	_, err := pullWith(t, goodURL, map[string]string{remote.KeyTLSCAPath: otherPath})
	errContains(t, err, "unknown authority", "no authority in "+remote.KeyTLSCAPath+" "+otherPath)

	// The same authority's certificate, but for another host.
	_, _, c := ca.issue(t, 3, false)
	x, _ := x509.ParseCertificate(c.Certificate[0])
	tmpl := *x
	tmpl.IPAddresses = []net.IP{net.ParseIP("192.0.2.1")}
	wrongHost := reissue(t, ca, &tmpl, c)
	tmpl = *x
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
	expired := reissue(t, ca, &tmpl, c)
	for name, cert := range map[string]tls.Certificate{"for another host": wrongHost, "expired": expired} {
		_, err := pullWith(t, serve(cert), map[string]string{remote.KeyTLSCAPath: caPath})
		if err == nil {
			t.Errorf("a certificate %s was accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "set the remote's") || strings.Contains(err.Error(), "no authority") {
			t.Errorf("certificate %s: error %q blames the authority", name, err)
		}
	}
}

// reissue signs tmpl with ca for the key of c.
func reissue(t *testing.T, ca *testCA, tmpl *x509.Certificate, c tls.Certificate) tls.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, c.PrivateKey.(*ecdsa.PrivateKey).Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: c.PrivateKey}
}

// A remote URL that does not parse is refused without showing its
// password.
func TestInvalidRemoteURLHidesPassword(t *testing.T) {
	_, err := pullWith(t, "https://u:s3cret@127.0.0.1:x/repo", nil)
	errContains(t, err, "https://u:***@127.0.0.1:x/repo")
	if err != nil && strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q shows the password", err)
	}
}

// A contenturl written into the config of a remote whose url is not
// http(s), which remote add refuses, fails the pull without showing its
// password.
func TestContentURLOfFileRemoteHidesPassword(t *testing.T) {
	dst, err := repo.Init(filepath.Join(t.TempDir(), "dest"), repo.InitOptions{Mode: repo.ModeBareUser})
	if err != nil {
		t.Fatal(err)
	}
	dst.Close()
	cfg := filepath.Join(dst.Path(), "config")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	o := newOrigin(t)
	o.commit("os/stable", tree, 1700000000)
	b = append(b, "\n[remote \"origin\"]\nurl=file://"+o.r.Path()+"\ngpg-verify=false\ncontenturl=https://u:s3cret@example.invalid/c\n"...)
	if err := os.WriteFile(cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if dst, err = repo.Open(dst.Path()); err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	_, err = remote.Pull(context.Background(), dst, fastOpts("os/stable"))
	errContains(t, err, "contenturl https://u:***@example.invalid/c")
	if err != nil && strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q shows the password", err)
	}
}

// A client key that does not match its certificate is refused naming both
// files.
func TestClientKeyMismatchNamesFiles(t *testing.T) {
	ca := newTestCA(t)
	certPEM, _, _ := ca.issue(t, 2, true)
	_, keyPEM, _ := ca.issue(t, 3, true)
	certPath, keyPath := writePEM(t, "c.pem", certPEM), writePEM(t, "k.pem", keyPEM)
	_, err := pullWith(t, "https://127.0.0.1:1/repo", map[string]string{remote.KeyTLSClientCertPath: certPath, remote.KeyTLSClientKeyPath: keyPath})
	errContains(t, err, certPath, keyPath, "does not match")
}

// A server that wants a client certificate, or refuses the one given,
// fails the pull at once (one connection: retrying cannot help), naming
// the options to set or the certificate refused.
func TestPullClientCertRefused(t *testing.T) {
	o := newOrigin(t)
	o.commit("os/stable", tree, 1700000000)
	ca := newTestCA(t)
	_, _, serverCert := ca.issue(t, 2, false)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	srv := httptest.NewUnstartedServer(o.srv.Config.Handler)
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caPath := writePEM(t, "ca.pem", ca.pem)
	strangerCert, strangerKey, _ := newTestCA(t).issue(t, 3, true)
	certPath := writePEM(t, "stranger.pem", strangerCert)
	for _, c := range []struct {
		opts map[string]string
		want string
	}{
		{map[string]string{}, "set the remote's " + remote.KeyTLSClientCertPath + " and " + remote.KeyTLSClientKeyPath},
		{map[string]string{remote.KeyTLSClientCertPath: certPath, remote.KeyTLSClientKeyPath: writePEM(t, "stranger.key", strangerKey)},
			"refused the client certificate in " + remote.KeyTLSClientCertPath + " " + certPath},
	} {
		c.opts[remote.KeyTLSCAPath] = caPath
		conns.Store(0)
		dst, err := pullWith(t, srv.URL, c.opts)
		errContains(t, err, srv.URL+"/config", c.want)
		if n := conns.Load(); n != 1 {
			t.Errorf("%d connections, want 1 (no retry)", n)
		}
		checkNothingMoved(t, dst)
	}
}

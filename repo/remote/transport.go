package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Remote options that shape how otree talks to a server, OSTree's keys.
const (
	// KeyTLSCAPath names a PEM file of certificate authorities that are
	// trusted for the server's certificate, instead of the system's.
	KeyTLSCAPath = "tls-ca-path"
	// KeyTLSClientCertPath and KeyTLSClientKeyPath name the PEM client
	// certificate and its key presented to servers that ask for one.
	KeyTLSClientCertPath = "tls-client-cert-path"
	KeyTLSClientKeyPath  = "tls-client-key-path"
	// KeyTLSPermissive, when true, accepts a server certificate no trusted
	// authority signed, or one expired; it must still be for the host
	// named, as in OSTree (save an IP address reached through a proxy:
	// see permissiveHostCheck). Only for testing: objects are still
	// verified by their ids, but refs, summaries and unsigned commits
	// could then come from anyone.
	KeyTLSPermissive = "tls-permissive"
	// KeyProxy is the URL of an HTTP proxy for this remote, instead of the
	// one the environment names (http_proxy, https_proxy, no_proxy).
	KeyProxy = "proxy"
	// KeyUnconfiguredState, when set, makes every pull from the remote
	// fail with its text: a remote an installer writes for the admin to
	// set up first. Its refs and summary can still be listed, as in
	// OSTree.
	KeyUnconfiguredState = "unconfigured-state"
	// KeyCustomBackend, when set, names the program that fetches the
	// remote's commits in otree's stead: every pull from the remote
	// fails, naming it, as OSTree's does (its refs and summary can still
	// be listed).
	KeyCustomBackend = "custom-backend"
	// KeyHTTP2, when false, keeps requests to the remote on HTTP/1.1,
	// for servers whose HTTP/2 is broken (default true).
	KeyHTTP2 = "http2"
	// KeyLowSpeedLimit and KeyLowSpeedTime fail a transfer slower on
	// average than KeyLowSpeedLimit bytes a second over KeyLowSpeedTime
	// seconds (PullOptions.LowSpeedLimit; OSTree's pull options of these
	// names). A limit of 0 turns the check off.
	KeyLowSpeedLimit = "low-speed-limit-bytes"
	KeyLowSpeedTime  = "low-speed-time-seconds"
)

// Defaults of the low-speed check, OSTree's.
const (
	defaultLowSpeedLimit = 1000
	defaultLowSpeedTime  = 30 * time.Second
)

// withLowSpeed sets the low-speed check of opts from rm's keys where the
// caller left it unset.
func withLowSpeed(rm *Remote, opts *PullOptions) error {
	for _, k := range []string{KeyLowSpeedLimit, KeyLowSpeedTime} {
		n, set, err := lowSpeedKey(rm.Options, k)
		if err != nil {
			return err
		}
		if !set {
			continue
		}
		switch {
		case k == KeyLowSpeedLimit && opts.LowSpeedLimit == 0:
			opts.LowSpeedLimit = n
			if n == 0 {
				opts.LowSpeedLimit = -1
			}
		case k == KeyLowSpeedTime && opts.LowSpeedTime == 0:
			opts.LowSpeedTime = time.Duration(n) * time.Second
		}
	}
	return nil
}

// lowSpeedKey parses the low-speed key k of keys, reporting whether it is
// set.
func lowSpeedKey(keys map[string]string, k string) (n int64, set bool, err error) {
	v := keys[k]
	if v == "" {
		return 0, false, nil
	}
	n, err = strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 || k == KeyLowSpeedTime && n == 0 {
		return 0, false, fmt.Errorf("%s=%q: want a whole number of %s", k, v, map[string]string{KeyLowSpeedLimit: "bytes (0 for no limit)", KeyLowSpeedTime: "seconds, 1 or more"}[k])
	}
	return n, true, nil
}

// checkTransportKeys checks the form of a remote's TLS, proxy, HTTP/2 and
// low-speed keys
// (the files they name are read when the remote is used), returning the
// proxy URL if one is set.
func checkTransportKeys(keys map[string]string) (proxy *url.URL, err error) {
	if (keys[KeyTLSClientCertPath] == "") != (keys[KeyTLSClientKeyPath] == "") {
		return nil, fmt.Errorf("%s and %s go together", KeyTLSClientCertPath, KeyTLSClientKeyPath)
	}
	for _, k := range []string{KeyLowSpeedLimit, KeyLowSpeedTime} {
		if _, _, err := lowSpeedKey(keys, k); err != nil {
			return nil, err
		}
	}
	for _, k := range []string{KeyTLSPermissive, KeyHTTP2} {
		switch v := keys[k]; v {
		case "", "false", "0", "true", "1":
		default:
			return nil, fmt.Errorf("%s=%q is not a boolean (want true or false)", k, v)
		}
	}
	if p := keys[KeyProxy]; p != "" {
		return parseProxy(p)
	}
	return nil, nil
}

// parseProxy parses the value of a remote's proxy key. A bare HOST:PORT
// is an HTTP proxy, as OSTree (through curl) and Go's http_proxy take it.
// Errors show the value with its password, if any, hidden.
func parseProxy(p string) (*url.URL, error) {
	raw := p
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%s %q: want a URL such as http://proxy.example:3128", KeyProxy, shownRawURL(p))
	}
	switch u.Scheme {
	case "http", "https", "socks5", "socks5h":
	default:
		// Go's transport would speak HTTP to it whatever the scheme says.
		return nil, fmt.Errorf("%s %q: scheme %s is not supported (want http, https, socks5 or socks5h)", KeyProxy, shownURL(u), u.Scheme)
	}
	return u, nil
}

// checkPullable refuses a pull from rm when its config says otree is not
// to fetch its commits: unconfigured-state or custom-backend. As in
// OSTree, they stop pulls only: the remote's refs and summary can still
// be listed.
func checkPullable(rm *Remote) error {
	if msg := rm.Options[KeyUnconfiguredState]; msg != "" {
		return fmt.Errorf("remote %s: %s: %s", rm.Name, KeyUnconfiguredState, msg)
	}
	if b := rm.Options[KeyCustomBackend]; b != "" {
		return fmt.Errorf("remote %s: %s=%s: the remote is fetched by that program, not by otree", rm.Name, KeyCustomBackend, b)
	}
	return nil
}

// withTransport makes opts.Client use the TLS, proxy and HTTP/2 settings
// of rm, when it has any, on a copy of its transport.
func withTransport(rm *Remote, opts *PullOptions) error {
	proxy, err := checkTransportKeys(rm.Options)
	if err != nil {
		return err
	}
	var set []string
	for _, k := range []string{KeyTLSCAPath, KeyTLSClientCertPath, KeyTLSClientKeyPath, KeyTLSPermissive, KeyProxy} {
		if rm.Options[k] != "" {
			set = append(set, k)
		}
	}
	noHTTP2 := rm.Options[KeyHTTP2] == "false" || rm.Options[KeyHTTP2] == "0"
	if noHTTP2 {
		set = append(set, KeyHTTP2)
	}
	if len(set) == 0 {
		return nil
	}
	base, ok := opts.Client.Transport.(*http.Transport)
	if opts.Client.Transport == nil {
		base, ok = http.DefaultTransport.(*http.Transport), true
	}
	if !ok {
		return fmt.Errorf("%s are set, but the pull's client has a transport of its own", strings.Join(set, ", "))
	}
	tr := base.Clone()
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{}
	}
	c := tr.TLSClientConfig
	if p := rm.Options[KeyTLSCAPath]; p != "" {
		pem, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("%s: %w", KeyTLSCAPath, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s: %s holds no PEM certificate", KeyTLSCAPath, p)
		}
		c.RootCAs = pool
	}
	if certPath, keyPath := rm.Options[KeyTLSClientCertPath], rm.Options[KeyTLSClientKeyPath]; certPath != "" {
		cert, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			return fmt.Errorf("%s %s, %s %s: %w", KeyTLSClientCertPath, certPath, KeyTLSClientKeyPath, keyPath, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if v := rm.Options[KeyTLSPermissive]; v == "true" || v == "1" {
		c.InsecureSkipVerify = true
		c.VerifyConnection = func(cs tls.ConnectionState) error { return permissiveHostCheck(cs, cs.ServerName) }
		permissiveDialer(tr)
	}
	if proxy != nil {
		tr.Proxy = http.ProxyURL(proxy)
		tr.OnProxyConnectResponse = proxyRefusal
	}
	if noHTTP2 {
		var p http.Protocols
		p.SetHTTP1(true)
		tr.Protocols = &p
		// The clone may carry the h2 set-up of the transport it came
		// from, which would still offer h2 in the TLS handshake.
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		c.NextProtos = slices.DeleteFunc(slices.Clone(c.NextProtos), func(p string) bool { return p == "h2" })
	}
	client := *opts.Client
	client.Transport = tr
	opts.Client = &client
	return nil
}

// permissiveHostCheck is the check tls-permissive leaves in place: the
// server's certificate, signed by any authority or none, must still be for
// host, as OSTree's curl fetcher keeps checking it. An empty host is not
// checked: the handshake does not tell an IP address to VerifyConnection,
// which only permissiveDialer's connections know.
func permissiveHostCheck(cs tls.ConnectionState, host string) error {
	if host == "" || len(cs.PeerCertificates) == 0 {
		return nil
	}
	if err := cs.PeerCertificates[0].VerifyHostname(host); err != nil {
		// A CertificateVerificationError, so the fetch is not retried.
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates,
			Err: fmt.Errorf("%w (%s accepts a certificate no trusted authority signed, not one for another host)", err, KeyTLSPermissive)}
	}
	return nil
}

// permissiveDialer makes tr's own TLS connections (those not tunnelled
// through a proxy) check the host the way permissiveHostCheck does, IP
// addresses included, which VerifyConnection alone cannot: Go sends no
// server name for an IP address, so the check is given the dialled host.
// A transport with a TLS dialer of its own keeps it.
func permissiveDialer(tr *http.Transport) {
	if tr.DialTLSContext != nil {
		return // the caller's transport dials TLS its own way
	}
	dial := tr.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		// Read now: the transport adds h2 to NextProtos on first use.
		cfg := tr.TLSClientConfig.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return permissiveHostCheck(cs, cfg.ServerName) }
		if d := tr.TLSHandshakeTimeout; d > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		return tc, nil
	}
}

// errTLSHint is added to a failed request's error when no authority
// trusted signed the server's certificate, naming the option that trusts
// one. An expired certificate or one for another host gets no hint: no
// authority helps there.
var errTLSHint = errors.New("(set the remote's " + KeyTLSCAPath + " to a PEM file of the authority that signed the server's certificate)")

// tlsError adds to err, a failed verification of a server's certificate,
// the option that would trust it; caPath is the remote's tls-ca-path.
func tlsError(err error, caPath string) error {
	if !errors.As(err, new(x509.UnknownAuthorityError)) {
		return err
	}
	if caPath != "" {
		return fmt.Errorf("%w (no authority in %s %s signed it)", err, KeyTLSCAPath, caPath)
	}
	return fmt.Errorf("%w %w", err, errTLSHint)
}

// clientCertError tells whether err is a server's TLS alert about the
// client's certificate: it wants one, or refuses the one given. Retrying
// cannot help, so it returns err with the options to look at, certPath
// being the remote's tls-client-cert-path. Go's alert type is unexported:
// its text is what there is to match.
func clientCertError(err error, certPath string) (error, bool) {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "remote error" || oe.Err == nil {
		return err, false
	}
	switch oe.Err.Error() {
	case "tls: certificate required", "tls: bad certificate", "tls: unknown certificate authority",
		"tls: certificate expired", "tls: certificate revoked", "tls: unsupported certificate", "tls: certificate unknown":
	default:
		return err, false
	}
	if certPath == "" {
		return fmt.Errorf("%w (the server wants a client certificate: set the remote's %s and %s)", err, KeyTLSClientCertPath, KeyTLSClientKeyPath), true
	}
	return fmt.Errorf("%w (the server refused the client certificate in %s %s)", err, KeyTLSClientCertPath, certPath), true
}

// ProxyError is a proxy's refusal (any answer but 200) of the CONNECT
// that tunnels a request to an https server through it.
type ProxyError struct {
	Proxy  string // the proxy's URL, its password (if any) shown as ***
	Status int    // the proxy's HTTP status, 407 when it wants credentials
	Text   string // the status line's text, "407 Proxy Authentication Required"
}

// Error names the proxy and its answer.
func (e *ProxyError) Error() string { return fmt.Sprintf("proxy %s answered %s", e.Proxy, e.Text) }

// proxyRefusal is the OnProxyConnectResponse of the transports a pull
// makes: Go's own error would be the bare status text, as if the server
// had answered, and would not tell a refusal from a transport error.
func proxyRefusal(_ context.Context, proxy *url.URL, _ *http.Request, resp *http.Response) error {
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	return &ProxyError{Proxy: shownURL(proxy), Status: resp.StatusCode, Text: resp.Status}
}

package remote_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/otree/otree/repo"
	"github.com/otree/otree/repo/remote"
)

// connCounter wraps the connections a dialer makes and counts those still
// open.
type connCounter struct{ open atomic.Int64 }

type countedConn struct {
	net.Conn
	c      *connCounter
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.c.open.Add(-1)
	}
	return c.Conn.Close()
}

func (cc *connCounter) dial(d func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cc.open.Add(1)
		return &countedConn{Conn: conn, c: cc}, nil
	}
}

// A pull, a listing of a remote's refs or summary, successful or not,
// leaves no connection open of the client it made for itself (or of the
// one it made for a remote's TLS options): nothing can reuse them once it
// returned, and in a process that pulls often each would hold a socket and
// two goroutines until the idle timeout. A client the caller gave keeps
// its connections for its next request. Connections are counted as the
// dialer makes them and as they are closed, so nothing waits on the
// server or a clock.
func TestPullClosesItsIdleConnections(t *testing.T) {
	var cc connCounter
	def := http.DefaultTransport
	tr := def.(*http.Transport).Clone()
	tr.DialContext = cc.dial((&net.Dialer{}).DialContext)
	// Pulls clone http.DefaultTransport for a client of their own.
	http.DefaultTransport = tr
	t.Cleanup(func() { http.DefaultTransport = def; tr.CloseIdleConnections() })

	o := newOrigin(t)
	o.commit("os/stable", tree, 1700000000)
	ctx := context.Background()
	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if n := cc.open.Load(); n != 0 {
			t.Errorf("%s left %d connections open", what, n)
		}
	}
	dest := newDest(t, repo.ModeBareUser, o.srv.URL)
	_, err := remote.Pull(ctx, dest, fastOpts("os/stable"))
	check("a pull", err)
	_, err = remote.Pull(ctx, dest, fastOpts("os/stable"))
	check("a pull with nothing to fetch", err)
	_, err = remote.Pull(ctx, dest, fastOpts("nonexistent"))
	if err == nil {
		t.Fatal("a pull of a missing branch succeeded")
	}
	check("a failed pull", nil)
	_, err = remote.RemoteRefs(ctx, dest, "origin", remote.PullOptions{})
	check("RemoteRefs", err)
	_, err = remote.RemoteSummary(ctx, dest, "origin", remote.PullOptions{})
	check("RemoteSummary", err)

	// A remote with TLS options gets a transport made for it.
	ca := newTestCA(t)
	_, _, serverCert := ca.issue(t, 2, false)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	srv := httptest.NewUnstartedServer(o.srv.Config.Handler)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, err = pullWith(t, srv.URL, map[string]string{remote.KeyTLSCAPath: writePEM(t, "ca.pem", ca.pem)})
	check("a pull over TLS", err)

	// The caller's own client keeps its pool.
	own := &http.Client{Transport: tr}
	opts := fastOpts("os/stable")
	opts.Client = own
	_, err = remote.Pull(ctx, newDest(t, repo.ModeBareUser, o.srv.URL), opts)
	if err != nil {
		t.Fatal(err)
	}
	if cc.open.Load() == 0 {
		t.Error("a pull closed the idle connections of the client it was given")
	}
}

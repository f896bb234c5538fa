package remote

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The low-speed check weighs the server's speed, not the reader's: a body
// the server sent at once, read slowly (a consumer writing to a slow disk,
// or one going through the kept bytes of a resumed download first), is not
// "too slow", while a server trickling its bytes still is.
func TestLowSpeedIgnoresSlowReader(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 64<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/trickle" {
			trickleBody(w, req, body[:200])
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	// 64 KiB a second over 1s; the reader takes 512 bytes every 10ms,
	// under 52 KiB a second.
	s := &httpSource{base: u, client: srv.Client(), timeout: 30 * time.Second, attempts: 1,
		lowLimit: 64 << 10, lowTime: time.Second, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var got int
	err = s.get(context.Background(), "fast", func(r io.Reader) error {
		buf := make([]byte, 512)
		for {
			n, err := r.Read(buf)
			got += n
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	if err != nil || got != len(body) {
		t.Errorf("a body sent at once and read slowly: %d of %d bytes, %v; want all, no error", got, len(body), err)
	}

	s.lowTime = 100 * time.Millisecond
	err = s.get(context.Background(), "trickle", func(r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "too slow") {
		t.Errorf("a trickling server: %v, want too slow", err)
	}
}

// trickleBody answers with b, one byte every 10ms (much less than the
// low-speed limit), until b ends or the client goes away.
func trickleBody(w http.ResponseWriter, req *http.Request, b []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	for i := range b {
		if _, err := w.Write(b[i : i+1]); err != nil {
			return
		}
		w.(http.Flusher).Flush()
		select {
		case <-time.After(10 * time.Millisecond):
		case <-req.Context().Done():
			return
		}
	}
}

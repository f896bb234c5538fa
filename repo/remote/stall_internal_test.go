package remote

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/otree/otree/repo"
)

// The stall timer counts only time spent waiting on the server: a reader
// that takes longer than the timeout to go through the kept bytes of a
// resumed download (a large object on a slow disk), or between reads of
// the body, does not make the request "time out", while a server that
// sends nothing still does.
func TestStallTimerIgnoresSlowReader(t *testing.T) {
	ctx := context.Background()
	r, err := repo.Init(filepath.Join(t.TempDir(), "repo"), repo.InitOptions{Mode: repo.ModeArchive})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	content := make([]byte, 2<<20) // random: zstd keeps its size
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(content)
	txn, err := r.Begin(ctx, repo.TxnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := txn.WriteFileStream(&repo.FileHeader{Type: repo.TypeRegular, Mode: 0o644, Size: uint64(len(content))}, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(r.ObjectPath(repo.KindFile, id))
	if err != nil {
		t.Fatal(err)
	}
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("X-Hang") != "" {
			select {
			case <-hang:
			case <-req.Context().Done():
			}
			return
		}
		http.ServeContent(w, req, "", time.Time{}, bytes.NewReader(raw))
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 300 * time.Millisecond
	s := &httpSource{base: u, client: srv.Client(), timeout: timeout, attempts: 1, lowLimit: -1,
		partialDir: t.TempDir(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	// Half the object kept from an earlier attempt.
	if err := os.WriteFile(filepath.Join(s.partialDir, id.String()+".file"), raw[:len(raw)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	// 64 KiB every 20ms: about 640ms for the kept megabyte, as long
	// again for the rest, each over the timeout.
	slow := func(h *repo.FileHeader, comp byte, payload io.Reader) error {
		buf := make([]byte, 64<<10)
		for {
			_, err := io.ReadFull(payload, buf)
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil
			}
			if err != nil {
				return err
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	start := time.Now()
	if err := s.openFile(ctx, id, slow); err != nil {
		t.Errorf("resumed object read slowly: %v (after %v), want no error", err, time.Since(start).Round(time.Millisecond))
	}
	if d := time.Since(start); d < 2*timeout {
		t.Errorf("the reader took %v, less than the timeout twice over: the test proves nothing", d)
	}

	// A server that sends nothing still times out.
	s.header = http.Header{"X-Hang": {"1"}}
	err = s.get(ctx, "hang", func(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err })
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("timed out")) {
		t.Errorf("a server sending nothing: %v, want timed out", err)
	}
}

package remote_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/otree/otree/internal/testnginx"
)

// nginx is a real HTTP server serving a directory on 127.0.0.1, run in the
// foreground as a child of the test.
type nginx struct {
	t    *testing.T
	URL  string
	dir  string // prefix: config, logs, pid, temp files
	seen int    // access log lines already returned by newRequests
}

// nginxRequest is one line of the access log.
type nginxRequest struct {
	Status int
	Bytes  int64 // body bytes sent
	Path   string
	Range  string
}

// startNginx serves root until the test ends. It skips the test when
// nginx is not installed.
func startNginx(t *testing.T, root string) *nginx {
	t.Helper()
	if _, err := os.Stat(testnginx.Binary); err != nil {
		t.Skip("nginx is not installed (Debian package nginx)")
	}
	dir := t.TempDir()
	port := testnginx.Start(t, root, dir, `$status $body_bytes_sent "$request" "$http_range"`)
	return &nginx{t: t, URL: fmt.Sprintf("http://127.0.0.1:%d", port), dir: dir}
}

// requests returns the access log lines written since the last call.
func (n *nginx) newRequests() []nginxRequest {
	n.t.Helper()
	f, err := os.Open(filepath.Join(n.dir, "access.log"))
	if err != nil {
		n.t.Fatal(err)
	}
	defer f.Close()
	var out []nginxRequest
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan(); i++ {
		if i < n.seen {
			continue
		}
		n.seen++
		// 206 786548 "GET /objects/ab/cd.file HTTP/1.1" "bytes=786548-"
		line := sc.Text()
		var req nginxRequest
		fields := strings.SplitN(line, " ", 3)
		quoted := strings.Split(fields[2], `"`)
		status, err1 := strconv.Atoi(fields[0])
		bytes, err2 := strconv.ParseInt(fields[1], 10, 64)
		parts := strings.Fields(quoted[1])
		if err1 != nil || err2 != nil || len(quoted) < 4 || len(parts) != 3 {
			n.t.Fatalf("access log line %q", line)
		}
		req.Status, req.Bytes, req.Path = status, bytes, parts[1]
		if quoted[3] != "-" {
			req.Range = quoted[3]
		}
		out = append(out, req)
	}
	return out
}

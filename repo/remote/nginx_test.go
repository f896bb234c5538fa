package remote_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nginxBinary is where Debian's nginx package installs the server (not on
// PATH for users other than root).
const nginxBinary = "/usr/sbin/nginx"

// nginx is a real HTTP server serving a directory on 127.0.0.1, run in the
// foreground as a child of the test.
type nginx struct {
	t    *testing.T
	URL  string
	dir  string // prefix: config, logs, pid, temp files
	cmd  *exec.Cmd
	seen int // access log lines already returned by newRequests
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
	if _, err := os.Stat(nginxBinary); err != nil {
		t.Skip("nginx is not installed (Debian package nginx)")
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	user := ""
	if os.Getuid() == 0 {
		// Workers would otherwise run as nobody, who cannot read the
		// test's private temporary directories.
		user = "user root;"
	}
	conf := fmt.Sprintf(`%s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log;
events { worker_connections 64; }
http {
	log_format plain '$status $body_bytes_sent "$request" "$http_range"';
	access_log %[2]s/access.log plain;
	client_body_temp_path %[2]s/tmp/body;
	proxy_temp_path %[2]s/tmp/proxy;
	fastcgi_temp_path %[2]s/tmp/fastcgi;
	uwsgi_temp_path %[2]s/tmp/uwsgi;
	scgi_temp_path %[2]s/tmp/scgi;
	default_type application/octet-stream;
	server {
		listen 127.0.0.1:%[3]d;
		root %[4]s;
	}
}
`, user, dir, port, root)
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n := &nginx{t: t, URL: fmt.Sprintf("http://127.0.0.1:%d", port), dir: dir}
	n.cmd = exec.Command(nginxBinary, "-p", dir, "-e", filepath.Join(dir, "error.log"),
		"-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;")
	n.cmd.Stdout, n.cmd.Stderr = os.Stderr, os.Stderr
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- n.cmd.Wait() }()
	t.Cleanup(func() {
		n.cmd.Process.Signal(syscall.SIGTERM) // fast shutdown: the master stops its workers
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			n.cmd.Process.Kill()
			<-exited
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return n
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %v\n%s", err, log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on port %d", port)
		}
	}
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

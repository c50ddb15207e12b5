package run

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-gw/sluice/bench/procstat"
)

// nginxConf is perf.md's reference configuration (perf-scripts/nginx.conf)
// with the bench's directories and ports.
const nginxConf = `pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
    access_log off;
    client_body_temp_path {{dir}}/tmp;
    proxy_temp_path {{dir}}/tmp;
    fastcgi_temp_path {{dir}}/tmp;
    uwsgi_temp_path {{dir}}/tmp;
    scgi_temp_path {{dir}}/tmp;
    upstream backend {
        server {{upstream}};
        keepalive 256;
        keepalive_requests 100000;
    }
    server {
        listen {{listen}} reuseport backlog=4096;
        keepalive_requests 100000;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering on;
        }
    }
}
`

type nginx struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startNginx starts nginx in the foreground with 2 workers (perf.md's
// unpinned setup) in front of upstream.
func startNginx(dir, upstream string) (*nginx, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		return nil, fmt.Errorf("nginx not installed (apt-get install nginx-light)")
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	listen := ln.Addr().String()
	ln.Close()
	conf := strings.NewReplacer("{{dir}}", dir, "{{upstream}}", strings.TrimPrefix(upstream, "http://"), "{{listen}}", listen).Replace(nginxConf)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-c", path, "-p", dir, "-g", "daemon off; worker_processes 2;")
	out, _ := os.Create(filepath.Join(dir, "nginx.out"))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ng := &nginx{url: "http://" + listen, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); out.Close(); close(ng.done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if resp, err := http.Get(ng.url + "/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return ng, nil
			}
		}
		select {
		case <-ng.done:
			return nil, fmt.Errorf("nginx exited at start; see %s", filepath.Join(dir, "error.log"))
		case <-ctx.Done():
			ng.stop()
			return nil, fmt.Errorf("nginx not answering on %s", listen)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pids returns the master and its workers.
func (n *nginx) pids() []int {
	return append([]int{n.cmd.Process.Pid}, procstat.Children(n.cmd.Process.Pid)...)
}

// stop sends SIGQUIT-free SIGTERM to the process group and waits.
func (n *nginx) stop() {
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.done
	}
}

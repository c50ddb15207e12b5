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

// refProxy is a reference proxy process measured beside the gateway:
// nginx, or bare Go httputil.ReverseProxy.
type refProxy struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startNginx starts nginx in the foreground with 2 workers (perf.md's
// unpinned setup) in front of upstream.
func startNginx(dir, upstream string) (*refProxy, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		return nil, fmt.Errorf("nginx not installed (apt-get install nginx-light)")
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	conf := strings.NewReplacer("{{dir}}", dir, "{{upstream}}", strings.TrimPrefix(upstream, "http://"), "{{listen}}", listen).Replace(nginxConf)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-c", path, "-p", dir, "-g", "daemon off; worker_processes 2;")
	return startRef("nginx", cmd, listen, filepath.Join(dir, "nginx.out"), "see "+filepath.Join(dir, "error.log"))
}

// startBareProxy starts bench/bareproxy on engine (httputil or fasthttp)
// in a process of its own, `sluice bench bareproxy -engine ENGINE`, in
// front of upstream.
func startBareProxy(dir, binary, upstream, engine string) (*refProxy, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, "bench", "bareproxy", "-engine", engine, "-addr", listen, "-upstream", upstream)
	out := filepath.Join(dir, engine+".out")
	return startRef("bare "+engine+" proxy", cmd, listen, out, "see "+out)
}

// freeAddr returns a loopback address with a port free at the moment.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startRef starts cmd, logging to logPath, and waits until it answers 200
// on listen.
func startRef(name string, cmd *exec.Cmd, listen, logPath, hint string) (*refProxy, error) {
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	rp := &refProxy{url: "http://" + listen, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); out.Close(); close(rp.done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if resp, err := http.Get(rp.url + "/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return rp, nil
			}
		}
		select {
		case <-rp.done:
			return nil, fmt.Errorf("%s exited at start; %s", name, hint)
		case <-ctx.Done():
			rp.stop()
			return nil, fmt.Errorf("%s not answering on %s; %s", name, listen, hint)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pids returns the process and its children (nginx's workers).
func (rp *refProxy) pids() []int {
	return append([]int{rp.cmd.Process.Pid}, procstat.Children(rp.cmd.Process.Pid)...)
}

// stop sends SIGTERM to the process group and waits.
func (rp *refProxy) stop() {
	_ = syscall.Kill(-rp.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-rp.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-rp.cmd.Process.Pid, syscall.SIGKILL)
		<-rp.done
	}
}

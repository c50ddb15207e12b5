package proxy

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/router"
)

// echo is a real upstream that reports what it received as JSON.
func echo(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "secret")
		_ = json.NewEncoder(w).Encode(map[string]any{"uri": r.RequestURI, "host": r.Host, "header": r.Header, "body": string(body)})
	}))
	t.Cleanup(srv.Close)
	return srv
}

type echoed struct {
	URI    string      `json:"uri"`
	Host   string      `json:"host"`
	Header http.Header `json:"header"`
	Body   string      `json:"body"`
}

func serviceFor(t testing.TB, rawURL string) *entity.Service {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(u.Host)
	n, _ := strconv.Atoi(port)
	return &entity.Service{ID: "svc-" + port, Protocol: "http", Host: host, Port: n, Retries: 0,
		ConnectTimeout: 2000, ReadTimeout: 2000, WriteTimeout: 2000, Enabled: true}
}

func route(id string, paths []string, strip bool, svc *entity.Service) router.Target {
	r := &entity.Route{ID: id, Paths: paths, StripPath: strip, PathHandling: "v0", Protocols: []string{"http", "https"}}
	if svc != nil {
		r.Service = &entity.Ref{ID: svc.ID}
	}
	return router.Target{Route: r, Service: svc}
}

// gateway starts the proxy under test on a real listener.
func gateway(t testing.TB, opts Options, targets ...router.Target) (*Proxy, *listening) {
	p := New(opts)
	rt, err := router.New(targets)
	if err != nil {
		t.Fatal(err)
	}
	p.SetRouter(rt)
	return p, serve(t, p)
}

// listening is a proxy served on a real loopback listener.
type listening struct {
	URL  string // http://127.0.0.1:port
	Addr string // 127.0.0.1:port
}

// serve runs p's server on a loopback listener until the test ends.
func serve(t testing.TB, p *Proxy) *listening {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := p.Server()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(p.Listener(ln))
	}()
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
		p.Close()
	})
	return &listening{URL: "http://" + ln.Addr().String(), Addr: ln.Addr().String()}
}

func get(t testing.TB, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestNoRouterYet(t *testing.T) {
	srv := serve(t, New(Options{}))
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/x", nil)
	resp, body := get(t, req)
	if resp.StatusCode != 404 || body != "{\"message\":\"no Route matched with those values\"}\n" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestForwarding(t *testing.T) {
	up := echo(t)
	svc := serviceFor(t, up.URL)
	withPath := *svc
	withPath.ID = "svc-path"
	sp := "/base"
	withPath.Path = &sp
	preserve := route("r-preserve", []string{"/keep"}, true, svc)
	preserve.Route.PreserveHost = true
	_, gw := gateway(t, Options{Version: "1.2.3"},
		route("r-strip", []string{"/strip"}, true, svc),
		route("r-nostrip", []string{"/nostrip"}, false, svc),
		route("r-base", []string{"/based"}, true, &withPath),
		preserve,
		route("r-noservice", []string{"/orphan"}, true, nil),
	)
	tests := []struct {
		name, path string
		header     map[string]string
		status     int
		wantURI    string
		wantHost   string
		wantUp     map[string]string // upstream request headers; "" = absent
	}{
		{name: "strip_path", path: "/strip/a/b?x=1&y=2", status: 200, wantURI: "/a/b?x=1&y=2", wantHost: up.Listener.Addr().String(),
			wantUp: map[string]string{"X-Forwarded-Prefix": "/strip", "X-Forwarded-Path": "/strip/a/b", "X-Forwarded-Proto": "http",
				"X-Forwarded-Host": "example.test", "X-Real-Ip": "127.0.0.1", "Via": "1.1 sluice/1.2.3"}},
		{name: "no strip", path: "/nostrip/a", status: 200, wantURI: "/nostrip/a", wantUp: map[string]string{"X-Forwarded-Prefix": ""}},
		{name: "service path", path: "/based/c", status: 200, wantURI: "/base/c"},
		{name: "empty query stripped", path: "/strip/q?", status: 200, wantURI: "/q"},
		{name: "encoded space and utf-8 stay encoded", path: "/strip/a%20b/caf%C3%A9?q=a%20b", status: 200, wantURI: "/a%20b/caf%C3%A9?q=a%20b",
			wantUp: map[string]string{"X-Forwarded-Path": "/strip/a%20b/caf%C3%A9"}},
		{name: "encoded slash kept", path: "/strip/a%2Fb", status: 200, wantURI: "/a%2Fb"},
		{name: "preserve_host", path: "/keep/", status: 200, wantURI: "/", wantHost: "example.test"},
		{name: "xff appended", path: "/strip/", header: map[string]string{"X-Forwarded-For": "10.0.0.1"}, status: 200,
			wantUp: map[string]string{"X-Forwarded-For": "10.0.0.1, 127.0.0.1"}},
		{name: "spoofed forwarded headers replaced", path: "/strip/", header: map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Prefix": "/evil", "X-Forwarded-Host": "evil"},
			status: 200, wantUp: map[string]string{"X-Forwarded-Proto": "http", "X-Forwarded-Prefix": "/strip", "X-Forwarded-Host": "example.test"}},
		{name: "hop-by-hop stripped", path: "/strip/", header: map[string]string{"Connection": "X-Private", "X-Private": "1", "Keep-Alive": "timeout=5", "X-Kept": "yes"},
			status: 200, wantUp: map[string]string{"X-Private": "", "Keep-Alive": "", "X-Kept": "yes", "User-Agent": ""}},
		{name: "no route", path: "/nothing", status: 404},
		{name: "route without service", path: "/orphan", status: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, gw.URL+tt.path, nil)
			req.Host = "example.test"
			req.Header.Set("User-Agent", "")
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, body := get(t, req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, body %s", resp.StatusCode, body)
			}
			switch tt.status {
			case 404:
				if body != "{\"message\":\"no Route matched with those values\"}\n" {
					t.Fatalf("body %q", body)
				}
				return
			case 503:
				if body != "{\"message\":\"no Service found with those values\"}\n" || resp.Header.Get("Server") == "" {
					t.Fatalf("body %q, headers %v", body, resp.Header)
				}
				return
			}
			var e echoed
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if tt.wantURI != "" && e.URI != tt.wantURI {
				t.Errorf("upstream URI %q, want %q", e.URI, tt.wantURI)
			}
			if tt.wantHost != "" && e.Host != tt.wantHost {
				t.Errorf("upstream Host %q, want %q", e.Host, tt.wantHost)
			}
			for k, want := range tt.wantUp {
				if got := e.Header.Get(k); got != want {
					t.Errorf("upstream %s = %q, want %q", k, got, want)
				}
			}
			if resp.Header.Get("X-Hop") != "" || resp.Header.Get("Via") != "1.1 sluice/1.2.3" ||
				resp.Header.Get("X-Kong-Upstream-Latency") == "" || resp.Header.Get("X-Kong-Proxy-Latency") == "" {
				t.Errorf("response headers %v", resp.Header)
			}
		})
	}
}

func TestUpstreamErrors(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "upstream says no")
	}))
	defer failing.Close()
	garbage := rawServer(t, "this is not HTTP\r\n\r\n")
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	slowSvc := serviceFor(t, slow.URL)
	slowSvc.ReadTimeout = 100
	refused := serviceFor(t, closedURL)
	refused.Retries = 2
	unresolvable := &entity.Service{ID: "dns", Protocol: "http", Host: "no-such-host.invalid", Port: 80}
	_, gw := gateway(t, Options{},
		route("slow", []string{"/slow"}, true, slowSvc),
		route("fail", []string{"/fail"}, true, serviceFor(t, failing.URL)),
		route("garbage", []string{"/garbage"}, true, serviceFor(t, garbage)),
		route("refused", []string{"/refused"}, true, refused),
		route("dns", []string{"/dns"}, true, unresolvable),
	)
	tests := []struct {
		name, path string
		status     int
		body       string
	}{
		{name: "slow upstream", path: "/slow", status: 504, body: "{\"message\":\"The upstream server is timing out\"}\n"},
		{name: "5xx passthrough", path: "/fail", status: 500, body: "upstream says no"},
		{name: "invalid response", path: "/garbage", status: 502, body: "{\"message\":\"An invalid response was received from the upstream server\"}\n"},
		{name: "refused connection", path: "/refused", status: 502, body: "{\"message\":\"An invalid response was received from the upstream server\"}\n"},
		{name: "name resolution", path: "/dns", status: 503, body: "{\"message\":\"name resolution failed\"}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, gw.URL+tt.path, nil)
			resp, body := get(t, req)
			if resp.StatusCode != tt.status || body != tt.body {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tt.status, tt.body)
			}
		})
	}
}

// rawServer answers every connection with reply and closes it.
func rawServer(t testing.TB, reply string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			_, _ = c.Read(buf)
			_, _ = io.WriteString(c, reply)
			c.Close()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestRetriesIdempotentOnly(t *testing.T) {
	hits := make(chan string, 10)
	flaky := rawServerFunc(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		n, _ := c.Read(buf)
		hits <- strings.Fields(string(buf[:n]))[0]
		c.Close() // drop the request after reading it
	})
	svc := serviceFor(t, flaky)
	svc.Retries = 2
	_, gw := gateway(t, Options{}, route("r", []string{"/"}, false, svc))
	tests := []struct {
		method string
		tries  int
	}{
		{method: http.MethodGet, tries: 3},
		{method: http.MethodPost, tries: 1},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			var body io.Reader
			if tt.method == http.MethodPost {
				body = strings.NewReader("payload")
			}
			req, _ := http.NewRequest(tt.method, gw.URL+"/", body)
			resp, _ := get(t, req)
			if resp.StatusCode != 502 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := len(hits); got != tt.tries {
				t.Fatalf("%d tries, want %d", got, tt.tries)
			}
			for range tt.tries {
				<-hits
			}
		})
	}
}

func rawServerFunc(t testing.TB, handle func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			handle(c)
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestObservation(t *testing.T) {
	up := echo(t)
	got := make(chan Observation, 1)
	p, gw := gateway(t, Options{Observer: ObserverFunc(func(o Observation) { got <- o })}, route("r", []string{"/"}, false, serviceFor(t, up.URL)))
	set, err := plugins.NewSet(plugins.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p.SetPlugins(set)
	req, _ := http.NewRequest(http.MethodPost, gw.URL+"/x", strings.NewReader("twelve bytes"))
	_, body := get(t, req)
	o := <-got
	if o.Route == nil || o.Route.ID != "r" || o.Service == nil || o.Status != 200 || o.Total < o.Upstream || o.Upstream <= 0 {
		t.Fatalf("observation %+v", o)
	}
	if o.RequestBytes != 12 || o.ResponseBytes != int64(len(body)) {
		t.Errorf("observed %d request and %d response bytes, want 12 and %d", o.RequestBytes, o.ResponseBytes, len(body))
	}
}

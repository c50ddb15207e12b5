package bareproxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/valyala/fasthttp"
)

// serveHTTPUtil serves New in front of upstream and returns its base URL.
func serveHTTPUtil(t *testing.T, upstream *url.URL) string {
	srv := httptest.NewServer(New(upstream))
	t.Cleanup(srv.Close)
	return srv.URL
}

// serveFastHTTP serves NewFastHTTP on a loopback port in front of
// upstream and returns its base URL.
func serveFastHTTP(t *testing.T, upstream *url.URL) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: NewFastHTTP(upstream)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "http://" + ln.Addr().String()
}

// TestEngines checks that both reference proxies forward the path, keep
// the client's Host header, pass the answer through, and answer 502 when
// the upstream is down; the fasthttp one adds X-Forwarded-For, the
// httputil one (Rewrite without SetXForwarded, as the perf notes' goproxy)
// does not.
func TestEngines(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen", r.Host+"|"+r.Header.Get("X-Forwarded-For"))
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, r.URL.RequestURI())
	}))
	defer up.Close()
	upURL, _ := url.Parse(up.URL)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL, _ := url.Parse(down.URL)
	down.Close()

	for _, tc := range []struct {
		name  string
		serve func(*testing.T, *url.URL) string
		seen  string // Host and X-Forwarded-For at the upstream
	}{
		{"httputil", serveHTTPUtil, "example.test|"},
		{"fasthttp", serveFastHTTP, "example.test|127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, tc.serve(t, upURL)+"/a/b?c=1", nil)
			req.Host = "example.test"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusTeapot || string(body) != "/a/b?c=1" {
				t.Errorf("got %d %q, want 418 \"/a/b?c=1\"", resp.StatusCode, body)
			}
			if got := resp.Header.Get("X-Seen"); got != tc.seen {
				t.Errorf("upstream saw Host and X-Forwarded-For %q, want %q", got, tc.seen)
			}

			resp, err = http.Get(tc.serve(t, downURL) + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway {
				t.Errorf("upstream down: got %d, want 502", resp.StatusCode)
			}
		})
	}
}

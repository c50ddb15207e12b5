package httplog

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/plugintest"
)

// logServer is a real HTTP log server that records what it receives.
type logServer struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   [][]byte
	headers  []http.Header
	fail     atomic.Int32  // answer 500 to this many requests first
	block    chan struct{} // when set, requests wait on it
	requests atomic.Int32
}

func newLogServer(t *testing.T) *logServer {
	ls := &logServer{}
	ls.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ls.requests.Add(1)
		if ls.block != nil {
			<-ls.block
		}
		if ls.fail.Add(-1) >= 0 {
			http.Error(w, "boom", 500)
			return
		}
		b, _ := io.ReadAll(r.Body)
		ls.mu.Lock()
		ls.bodies = append(ls.bodies, b)
		ls.headers = append(ls.headers, r.Header.Clone())
		ls.mu.Unlock()
	}))
	t.Cleanup(ls.Close)
	return ls
}

func (ls *logServer) received() ([][]byte, []http.Header) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return append([][]byte(nil), ls.bodies...), append([]http.Header(nil), ls.headers...)
}

// waitFor polls cond for up to 5 s: delivery is asynchronous.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newSet(t *testing.T, p *Plugin, config string) *plugins.Set {
	t.Helper()
	e := &entity.Plugin{ID: "p1", Name: Name, Enabled: true, Config: json.RawMessage(config)}
	set, err := plugins.NewSet(plugins.NewRegistry(p), []*entity.Plugin{e})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return set
}

func request(set *plugins.Set, path string) *plugintest.Request {
	req := plugintest.New("POST", path, map[string]string{"Authorization": "Bearer x", "X-A": "1", "Content-Type": "text/plain"}, []byte("hello"))
	c := req.Context()
	c.Route = &entity.Route{ID: "r1", Name: ptr("route-1")}
	c.Service = &entity.Service{ID: "s1", Name: ptr("svc"), Host: "upstream", Port: 80, Protocol: "http"}
	req.Answer(201, map[string]string{"X-Up": "yes"}, []byte("world!"))
	plugintest.Run(set, c)
	return req
}

func ptr(s string) *string { return &s }

func TestEntryArrives(t *testing.T) {
	ls := newLogServer(t)
	p := New(Options{})
	u := strings.Replace(ls.URL, "http://", "http://user:pw@", 1) + "/log"
	set := newSet(t, p, `{"http_endpoint":"`+u+`","headers":{"X-Token":"t"}}`)
	request(set, "/a/b?x=1&x=2&flag")
	waitFor(t, "one entry", func() bool { b, _ := ls.received(); return len(b) == 1 })
	bodies, headers := ls.received()
	var e map[string]any
	if err := json.Unmarshal(bodies[0], &e); err != nil {
		t.Fatalf("entry %s: %v", bodies[0], err)
	}
	req := e["request"].(map[string]any)
	if req["method"] != "POST" || req["uri"] != "/a/b?x=1&x=2&flag" || req["size"] != 5.0 {
		t.Errorf("request = %v", req)
	}
	if !reflect.DeepEqual(req["querystring"], map[string]any{"x": []any{"1", "2"}, "flag": true}) {
		t.Errorf("querystring = %v", req["querystring"])
	}
	hdrs := req["headers"].(map[string]any)
	if hdrs["authorization"] != "REDACTED" || hdrs["x-a"] != "1" {
		t.Errorf("request headers = %v", hdrs)
	}
	resp := e["response"].(map[string]any)
	if resp["status"] != 201.0 || resp["size"] != 6.0 || resp["headers"].(map[string]any)["x-up"] != "yes" {
		t.Errorf("response = %v", resp)
	}
	if e["route"].(map[string]any)["name"] != "route-1" || e["service"].(map[string]any)["host"] != "upstream" {
		t.Errorf("route %v service %v", e["route"], e["service"])
	}
	if e["client_ip"] != plugintest.ClientIP || e["upstream_uri"] != "/a/b?x=1&x=2&flag" || e["started_at"].(float64) <= 0 {
		t.Errorf("entry = %s", bodies[0])
	}
	if e["source"] != "service" || e["upstream_status"] != "201" {
		t.Errorf("source %v upstream_status %v, want service and 201", e["source"], e["upstream_status"])
	}
	if _, ok := e["latencies"].(map[string]any)["request"]; !ok {
		t.Errorf("no latencies: %s", bodies[0])
	}
	h := headers[0]
	if h.Get("Content-Type") != "application/json" || h.Get("X-Token") != "t" || h.Get("Authorization") != "Basic dXNlcjpwdw==" {
		t.Errorf("log request headers = %v", h)
	}
}

func TestBatching(t *testing.T) {
	ls := newLogServer(t)
	p := New(Options{})
	set := newSet(t, p, `{"http_endpoint":"`+ls.URL+`","queue":{"max_batch_size":3,"max_coalescing_delay":0.2}}`)
	for range 4 {
		request(set, "/")
	}
	waitFor(t, "two batches", func() bool { b, _ := ls.received(); return len(b) == 2 })
	bodies, _ := ls.received()
	var first, second []map[string]any
	if err := json.Unmarshal(bodies[0], &first); err != nil {
		t.Fatalf("batch %s: %v", bodies[0], err)
	}
	if err := json.Unmarshal(bodies[1], &second); err != nil {
		t.Fatalf("batch %s: %v", bodies[1], err)
	}
	if len(first) != 3 || len(second) != 1 {
		t.Errorf("batches of %d and %d entries, want 3 and 1 (after the coalescing delay)", len(first), len(second))
	}
}

func TestRetryAfter500(t *testing.T) {
	ls := newLogServer(t)
	ls.fail.Store(2)
	reg := prometheus.NewRegistry()
	p := New(Options{Registerer: reg})
	set := newSet(t, p, `{"http_endpoint":"`+ls.URL+`","queue":{"initial_retry_delay":0.01,"max_retry_delay":0.05}}`)
	request(set, "/")
	waitFor(t, "the entry after two 500s", func() bool { b, _ := ls.received(); return len(b) == 1 })
	if n := ls.requests.Load(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	if got := testutil.ToFloat64(p.m.sendErrors); got != 2 {
		t.Errorf("send errors = %v, want 2", got)
	}
	// A server that keeps failing: the batch is dropped after max_retry_time.
	ls.fail.Store(1000)
	set2 := newSet(t, p, `{"http_endpoint":"`+ls.URL+`/other","queue":{"initial_retry_delay":0.01,"max_retry_delay":0.02,"max_retry_time":0.1}}`)
	request(set2, "/")
	waitFor(t, "the batch dropped", func() bool {
		return testutil.ToFloat64(p.m.dropped.WithLabelValues("retries_exhausted")) == 1
	})
}

func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	ls := newLogServer(t)
	ls.block = make(chan struct{})
	p := New(Options{})
	set := newSet(t, p, `{"http_endpoint":"`+ls.URL+`","queue":{"max_entries":2}}`)
	// The first entry is taken by the sender, which blocks on the server;
	// two more fill the queue; the rest are dropped, and no request waits.
	request(set, "/")
	waitFor(t, "the sender to block", func() bool { return ls.requests.Load() == 1 })
	start := time.Now()
	for range 10 {
		request(set, "/")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("10 requests took %v with the log server stuck", d)
	}
	if got := testutil.ToFloat64(p.m.dropped.WithLabelValues("queue_full")); got != 8 {
		t.Errorf("dropped %v, want 8", got)
	}
	close(ls.block)
	waitFor(t, "the three queued entries", func() bool { b, _ := ls.received(); return len(b) == 3 })
}

func TestCloseFlushes(t *testing.T) {
	ls := newLogServer(t)
	p := New(Options{})
	set := newSet(t, p, `{"http_endpoint":"`+ls.URL+`","queue":{"max_batch_size":10,"max_coalescing_delay":60}}`)
	for range 3 {
		request(set, "/")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	bodies, _ := ls.received()
	if len(bodies) != 1 || strings.Count(string(bodies[0]), `"client_ip"`) != 3 {
		t.Fatalf("after Close the server got %q", bodies)
	}
	request(set, "/") // after Close: dropped, not queued
	if got := testutil.ToFloat64(p.m.dropped.WithLabelValues("shutdown")); got != 1 {
		t.Errorf("dropped after close = %v", got)
	}
}

func TestConfig(t *testing.T) {
	reg := plugins.NewRegistry(New(Options{}))
	tests := []struct {
		config string
		fields map[string]string
	}{
		{`{}`, map[string]string{"http_endpoint": "required field missing"}},
		{`{"http_endpoint":"ftp://x"}`, map[string]string{"http_endpoint": "missing or unsupported scheme in url (http or https)"}},
		{`{"http_endpoint":"http://"}`, map[string]string{"http_endpoint": "missing host in url"}},
		{`{"http_endpoint":"http://x","method":"GET"}`, map[string]string{"method": "expected one of: POST, PUT, PATCH"}},
		{`{"http_endpoint":"http://x","headers":{"Host":"y"}}`, map[string]string{"headers": "cannot contain 'Host' header"}},
		{`{"http_endpoint":"http://u:p@x","headers":{"Authorization":"y"}}`, map[string]string{"@entity": "specifying both an 'Authorization' header and user info in 'http_endpoint' is not allowed"}},
		{`{"http_endpoint":"http://x","custom_fields_by_lua":{"a":"return 1"}}`, map[string]string{"custom_fields_by_lua": "Lua code is not supported by Sluice: leave custom_fields_by_lua empty"}},
		{`{"http_endpoint":"http://x","queue":{"concurrency_limit":2}}`, map[string]string{"queue.concurrency_limit": "expected one of: -1, 1"}},
		{`{"http_endpoint":"http://x","queue":{"max_batch_size":0}}`, map[string]string{"queue.max_batch_size": "value should be between 1 and 1000000"}},
	}
	for _, tc := range tests {
		_, fields, err := reg.Validate(Name, json.RawMessage(tc.config))
		if err == nil || !reflect.DeepEqual(fields, tc.fields) {
			t.Errorf("%s: fields %v (err %v), want %v", tc.config, fields, err, tc.fields)
		}
	}
	out, _, err := reg.Validate(Name, json.RawMessage(`{"http_endpoint":"http://x/log","custom_fields_by_lua":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"http_endpoint":"http://x/log","method":"POST","content_type":"application/json","timeout":10000,"keepalive":60000,` +
		`"retry_count":null,"queue_size":null,"flush_timeout":null,"headers":null,"queue":{"max_batch_size":1,"max_coalescing_delay":1,` +
		`"max_entries":10000,"max_bytes":null,"max_retry_time":60,"initial_retry_delay":0.01,"max_retry_delay":60,"concurrency_limit":1},` +
		`"custom_fields_by_lua":{}}`
	if string(out) != want {
		t.Errorf("normalized\n%s\nwant\n%s", out, want)
	}
}

func TestSchema(t *testing.T) {
	config, _, err := plugins.NewRegistry(New(Options{})).ConfigSchema(Name)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(config)
	for _, want := range []string{
		`{"http_endpoint":{"required":true,"type":"string"}}`,
		`{"custom_fields_by_lua":{"keys":{"type":"string"},"type":"map","values":{"type":"string"}}}`,
		`{"concurrency_limit":{"default":1,"one_of":[-1,1],"type":"integer"}}`,
		`{"retry_count":{"type":"integer"}}`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("schema %s\nlacks %s", b, want)
		}
	}
}

// TestIdleQueueRetires: a queue without entries for the idle time ends
// (no goroutine stays behind a config that changed); the next entry
// starts a new one and arrives.
func TestIdleQueueRetires(t *testing.T) {
	ls := newLogServer(t)
	p := New(Options{})
	p.idle = 50 * time.Millisecond
	set := newSet(t, p, `{"http_endpoint":"`+ls.URL+`"}`)
	queues := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.queues)
	}
	request(set, "/")
	waitFor(t, "the first entry", func() bool { b, _ := ls.received(); return len(b) == 1 })
	waitFor(t, "the idle queue to retire", func() bool { return queues() == 0 })
	request(set, "/")
	waitFor(t, "the entry after the queue retired", func() bool { b, _ := ls.received(); return len(b) == 2 })
	if queues() != 1 {
		t.Errorf("%d queues after a new entry, want 1", queues())
	}
}

// TestMaxBytes: entries beyond queue.max_bytes waiting are dropped.
func TestMaxBytes(t *testing.T) {
	ls := newLogServer(t)
	ls.block = make(chan struct{})
	p := New(Options{})
	// An entry is about 1,300 bytes: one fits while the sender is stuck, the
	// second does not.
	set := newSet(t, p, `{"http_endpoint":"`+ls.URL+`","queue":{"max_bytes":2000}}`)
	request(set, "/")
	waitFor(t, "the sender to block", func() bool { return ls.requests.Load() == 1 })
	request(set, "/")
	request(set, "/")
	if got := testutil.ToFloat64(p.m.dropped.WithLabelValues("max_bytes")); got != 1 {
		t.Errorf("dropped for max_bytes: %v, want 1", got)
	}
	close(ls.block)
	waitFor(t, "the two kept entries", func() bool { b, _ := ls.received(); return len(b) == 2 })
}

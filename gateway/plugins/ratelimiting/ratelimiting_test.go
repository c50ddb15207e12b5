package ratelimiting

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/plugintest"
)

func TestConfig(t *testing.T) {
	reg := plugins.NewRegistry(New())
	tests := []struct {
		name, config, want string
		field, msg         string
	}{
		{name: "minute", config: `{"minute":5}`, want: `{"second":null,"minute":5,"hour":null,"day":null,"month":null,"year":null,` +
			`"limit_by":"consumer","header_name":null,"path":null,"policy":"local","fault_tolerant":true,` +
			`"redis_host":null,"redis_port":6379,"redis_password":null,"redis_username":null,"redis_ssl":false,` +
			`"redis_ssl_verify":false,"redis_server_name":null,"redis_timeout":2000,"redis_database":0,` +
			`"hide_client_headers":false,"error_code":429,"error_message":"API rate limit exceeded","sync_rate":-1}`},
		{name: "none", config: `{}`, field: "@entity", msg: "at least one of these fields must be non-empty: 'config.second', 'config.minute', 'config.hour', 'config.day', 'config.month', 'config.year'"},
		{name: "string", config: `{"minute":"five"}`, field: "minute", msg: "expected a number"},
		{name: "negative", config: `{"minute":-1}`, field: "minute", msg: "value must be greater than 0"},
		{name: "fraction", config: `{"minute":1.5}`, field: "minute", msg: "value must be an integer"},
		{name: "order", config: `{"second":10,"minute":5}`, field: "@entity", msg: "The limit for minute(5) cannot be lower than the limit for second(10)"},
		{name: "year below month", config: `{"month":10,"year":5}`, field: "@entity", msg: "The limit for year(5) cannot be lower than the limit for month(10)"},
		{name: "limit_by", config: `{"minute":1,"limit_by":"nope"}`, field: "limit_by", msg: "expected one of: consumer, credential, ip, service, header, path"},
		{name: "header without name", config: `{"minute":1,"limit_by":"header"}`, field: "header_name", msg: "required field missing"},
		{name: "path without path", config: `{"minute":1,"limit_by":"path"}`, field: "path", msg: "required field missing"},
		{name: "policy", config: `{"minute":1,"policy":"memcached"}`, field: "policy", msg: "expected one of: local, cluster, redis"},
		{name: "redis without host", config: `{"minute":1,"policy":"redis"}`, field: "redis_host", msg: "required field missing"},
		{name: "cluster without datastore", config: `{"minute":1,"policy":"cluster"}`, field: "policy", msg: "policy 'cluster' needs a datastore that keeps counters"},
		{name: "redis port", config: `{"minute":1,"redis_port":70000}`, field: "redis_port", msg: "value should be between 0 and 65535"},
		{name: "error code", config: `{"minute":1,"error_code":0}`, field: "error_code", msg: "value must be greater than 0"},
		{name: "unknown", config: `{"minute":1,"week":1}`, field: "week", msg: "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fields, err := reg.Validate(Name, json.RawMessage(tt.config))
			if tt.field != "" {
				if err == nil || fields[tt.field] != tt.msg {
					t.Fatalf("fields = %v, want %s: %s", fields, tt.field, tt.msg)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newSet returns a Set with one global instance of p configured with config.
func newSet(t testing.TB, p *Plugin, config string) *plugins.Set {
	t.Helper()
	set, err := plugintest.NewSet(p, config)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// access runs set on a request from ip (and consumer, and credential) on
// route r of service s. It returns the request and the status: 0 when the
// request went upstream.
func access(set *plugins.Set, ip string, consumer *entity.Consumer, cred entity.Entity) (*plugintest.Request, int) {
	req := plugintest.New(http.MethodGet, "/", nil, nil)
	c := req.Context()
	c.ClientIP, c.Consumer, c.Credential = ip, consumer, cred
	c.Route, c.Service = &entity.Route{ID: "r"}, &entity.Service{ID: "s"}
	plugintest.Run(set, c)
	if req.Forwarded() {
		return req, 0
	}
	return req, req.Response().Status()
}

func TestAccess(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)} // 20 s into a minute
	p := New()
	p.now = clk.now
	set := newSet(t, p, `{"minute":2,"hour":100}`)
	alice := &entity.Consumer{ID: "alice"}
	steps := []struct {
		name      string
		advance   time.Duration
		ip        string
		consumer  *entity.Consumer
		status    int
		remaining string // X-RateLimit-Remaining-Minute
		reset     string
	}{
		{name: "first", ip: "1.1.1.1", status: 0, remaining: "1", reset: "40"},
		{name: "second", ip: "1.1.1.1", status: 0, remaining: "0", reset: "40"},
		{name: "third blocked", ip: "1.1.1.1", status: 429, remaining: "0", reset: "40"},
		{name: "other ip", ip: "2.2.2.2", status: 0, remaining: "1", reset: "40"},
		{name: "consumer counted apart from ip", ip: "1.1.1.1", consumer: alice, status: 0, remaining: "1", reset: "40"},
		{name: "next window", advance: 40 * time.Second, ip: "1.1.1.1", status: 0, remaining: "1", reset: "60"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			clk.add(s.advance)
			req, status := access(set, s.ip, s.consumer, nil)
			hd := req.Response().Headers()
			if status != s.status || hd.Get("X-RateLimit-Remaining-Minute") != s.remaining ||
				hd.Get("X-RateLimit-Limit-Minute") != "2" || hd.Get("X-RateLimit-Limit-Hour") != "100" ||
				hd.Get("RateLimit-Limit") != "2" || hd.Get("RateLimit-Remaining") != s.remaining || hd.Get("RateLimit-Reset") != s.reset {
				t.Fatalf("got %d %v", status, hd)
			}
			body := string(req.Response().Body())
			if s.status == 429 && (body != "{\"message\":\"API rate limit exceeded\"}\n" || hd.Get("Retry-After") != s.reset ||
				hd.Get("Content-Type") != "application/json; charset=utf-8") {
				t.Fatalf("429 body %q, headers %v", body, hd)
			}
			if s.status == 0 && hd.Get("Retry-After") != "" {
				t.Fatalf("Retry-After on a request let through: %v", hd)
			}
		})
	}
	if n := p.counters.len(minute); n != 1 {
		t.Fatalf("minute window holds %d keys after rolling over, want 1 (old window dropped)", n)
	}
}

func TestHideClientHeaders(t *testing.T) {
	set := newSet(t, New(), `{"hour":1,"hide_client_headers":true}`)
	first, _ := access(set, "ip", nil, nil)
	second, status := access(set, "ip", nil, nil)
	hd := second.Response().Headers()
	if len(first.Response().Headers()) != 0 || status != 429 || hd.Get("X-RateLimit-Limit-Hour") != "" ||
		hd.Get("RateLimit-Remaining") != "" || hd.Get("Retry-After") == "" {
		t.Fatalf("first %v, second %d %v", first.Response().Headers(), status, hd)
	}
}

func TestConcurrentLimit(t *testing.T) {
	set := newSet(t, New(), `{"day":25}`)
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for i := range 100 {
		wg.Go(func() {
			if _, status := access(set, "ip"+strconv.Itoa(i%2), nil, nil); status == 0 {
				mu.Lock()
				passed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if passed != 50 { // 25 for each of the two IPs
		t.Fatalf("passed = %d", passed)
	}
}

func TestLimitBy(t *testing.T) {
	alice := &entity.Consumer{ID: "alice"}
	cred1, cred2 := &entity.KeyAuthCredential{ID: "cred-1"}, &entity.KeyAuthCredential{ID: "cred-2"}
	tests := []struct {
		name, limitBy string
		// requests in order, each with its consumer, credential and the
		// status it gets (0: let through).
		reqs []struct {
			consumer *entity.Consumer
			cred     entity.Entity
			status   int
		}
	}{
		{name: "credential", limitBy: "credential", reqs: []struct {
			consumer *entity.Consumer
			cred     entity.Entity
			status   int
		}{{alice, cred1, 0}, {alice, cred1, 429}, {alice, cred2, 0}, {alice, nil, 0}, {nil, nil, 429}}},
		{name: "consumer", limitBy: "consumer", reqs: []struct {
			consumer *entity.Consumer
			cred     entity.Entity
			status   int
		}{{alice, cred1, 0}, {alice, cred2, 429}, {nil, cred1, 0}, {nil, nil, 429}}},
		{name: "ip", limitBy: "ip", reqs: []struct {
			consumer *entity.Consumer
			cred     entity.Entity
			status   int
		}{{alice, cred1, 0}, {nil, cred2, 429}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := newSet(t, New(), `{"minute":1,"limit_by":"`+tt.limitBy+`"}`)
			for i, r := range tt.reqs {
				if _, status := access(set, "1.1.1.1", r.consumer, r.cred); status != r.status {
					t.Fatalf("request %d: status %d, want %d", i, status, r.status)
				}
			}
		})
	}
}

// TestCounterKeysAreCopied gives each request a client IP in memory that
// is overwritten once the request ends, as an engine reusing its buffers
// would: the counters must still count every request.
func TestCounterKeysAreCopied(t *testing.T) {
	set := newSet(t, New(), `{"second":3,"minute":3}`)
	for i, want := range []int{0, 0, 0, 429} {
		buf := []byte("10.0.0.1")
		if _, status := access(set, unsafe.String(&buf[0], len(buf)), nil, nil); status != want {
			t.Fatalf("request %d: status %d, want %d", i, status, want)
		}
		copy(buf, "99.9.9.9")
	}
}

func TestAccessAllocations(t *testing.T) {
	p := New()
	h, err := p.Configure(json.RawMessage(`{"minute":1000000,"hour":100000000}`))
	if err != nil {
		t.Fatal(err)
	}
	a := h.(plugins.Accessor)
	c := &plugins.Context{Response: discard{}, ClientIP: "1.1.1.1", Route: &entity.Route{ID: "r"}, Service: &entity.Service{ID: "s"}}
	a.Access(c)
	// Remaining counts and the reset are formatted per request: at most
	// those three strings.
	if n := testing.AllocsPerRun(100, func() { a.Access(c) }); n > 3 {
		t.Fatalf("Access allocates %v times per request", n)
	}
}

// discard is a plugins.Response that drops every edit.
type discard struct{}

func (discard) Status() int                  { return 0 }
func (discard) Header(string) (string, bool) { return "", false }
func (discard) SetHeader(string, string)     {}
func (discard) AddHeader(string, string)     {}
func (discard) ClearHeader(string)           {}

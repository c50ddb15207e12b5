package ratelimiting

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
)

func TestConfig(t *testing.T) {
	reg := plugins.NewRegistry(New())
	tests := []struct {
		name, config, want string
		field, msg         string
	}{
		{name: "minute", config: `{"minute":5}`, want: `{"second":null,"minute":5,"hour":null,"day":null,"limit_by":"consumer","policy":"local","fault_tolerant":true,"hide_client_headers":false}`},
		{name: "none", config: `{}`, field: "@entity", msg: "at least one of these fields must be non-empty: 'config.second', 'config.minute', 'config.hour', 'config.day'"},
		{name: "string", config: `{"minute":"five"}`, field: "minute", msg: "expected a number"},
		{name: "negative", config: `{"minute":-1}`, field: "minute", msg: "value must be a positive integer"},
		{name: "order", config: `{"second":10,"minute":5}`, field: "@entity", msg: "The limit for minute(5) cannot be lower than the limit for second(10)"},
		{name: "limit_by", config: `{"minute":1,"limit_by":"path"}`, field: "limit_by", msg: "expected one of: consumer, credential, ip"},
		{name: "policy", config: `{"minute":1,"policy":"redis"}`, field: "policy", msg: "expected one of: local"},
		{name: "month unsupported", config: `{"month":1}`, field: "month", msg: "unknown field"},
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

func access(h plugins.Handler, ip string, consumer *entity.Consumer) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	c := &plugins.Context{W: rec, R: httptest.NewRequest(http.MethodGet, "/", nil), ClientIP: ip, Consumer: consumer,
		Route: &entity.Route{ID: "r"}, Service: &entity.Service{ID: "s"}}
	if h.Access(c) {
		rec.Code = 0 // passed on upstream
	}
	return rec
}

func TestAccess(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)} // 20 s into a minute
	p := New()
	p.now = clk.now
	h, err := p.Configure(json.RawMessage(`{"minute":2,"hour":100}`))
	if err != nil {
		t.Fatal(err)
	}
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
			rec := access(h, s.ip, s.consumer)
			hd := rec.Header()
			if rec.Code != s.status || hd.Get("X-RateLimit-Remaining-Minute") != s.remaining ||
				hd.Get("X-RateLimit-Limit-Minute") != "2" || hd.Get("X-RateLimit-Limit-Hour") != "100" ||
				hd.Get("RateLimit-Limit") != "2" || hd.Get("RateLimit-Remaining") != s.remaining || hd.Get("RateLimit-Reset") != s.reset {
				t.Fatalf("got %d %v", rec.Code, hd)
			}
			if s.status == 429 && (rec.Body.String() != "{\"message\":\"API rate limit exceeded\"}\n" || hd.Get("Retry-After") != s.reset) {
				t.Fatalf("429 body %q, Retry-After %q", rec.Body.String(), hd.Get("Retry-After"))
			}
		})
	}
	if n := p.counters.len(minute); n != 1 {
		t.Fatalf("minute window holds %d keys after rolling over, want 1 (old window dropped)", n)
	}
}

func TestHideClientHeaders(t *testing.T) {
	h, _ := New().Configure(json.RawMessage(`{"hour":1,"hide_client_headers":true}`))
	first, second := access(h, "ip", nil), access(h, "ip", nil)
	if len(first.Header()) != 0 || second.Code != 429 || second.Header().Get("X-RateLimit-Limit-Hour") != "" {
		t.Fatalf("first %v, second %d %v", first.Header(), second.Code, second.Header())
	}
}

func TestConcurrentLimit(t *testing.T) {
	h, _ := New().Configure(json.RawMessage(`{"day":25}`))
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for i := range 100 {
		wg.Go(func() {
			if access(h, "ip"+strconv.Itoa(i%2), nil).Code == 0 {
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

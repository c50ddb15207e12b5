package ratelimiting

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/plugintest"
	"github.com/sluice-gw/sluice/gateway/store/cassandra"
	"github.com/sluice-gw/sluice/gateway/store/sqlite"
	"github.com/sluice-gw/sluice/internal/testenv"
)

// send runs set on a GET of target with header, on route r of service
// svc, and returns the request and its status (0: let through).
func send(set *plugins.Set, target string, header map[string]string, svc string) (*plugintest.Request, int) {
	req := plugintest.New(http.MethodGet, target, header, nil)
	c := req.Context()
	c.ClientIP = "1.1.1.1"
	c.Route, c.Service = &entity.Route{ID: "r"}, &entity.Service{ID: svc}
	plugintest.Run(set, c)
	if req.Forwarded() {
		return req, 0
	}
	return req, req.Response().Status()
}

func TestMonthAndYear(t *testing.T) {
	clk := &clock{t: time.Date(2026, 2, 27, 12, 0, 0, 0, time.UTC)}
	p := New()
	p.now = clk.now
	set := newSet(t, p, `{"month":1,"year":2}`)
	steps := []struct {
		name          string
		advance       time.Duration
		status        int
		monthReset    string
		limitHeadersY string
	}{
		{"first", 0, 0, strconv.Itoa(36 * 3600), "2"},
		{"month used up", time.Hour, 429, strconv.Itoa(35 * 3600), "2"},
		{"next month", 36 * time.Hour, 0, strconv.Itoa(31*86400 - 1*3600), "2"},
		{"year used up", 24 * time.Hour, 429, "", "2"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			clk.add(s.advance)
			req, status := send(set, "/", nil, "s")
			hd := req.Response().Headers()
			if status != s.status || hd.Get("X-RateLimit-Limit-Year") != s.limitHeadersY || hd.Get("X-RateLimit-Limit-Month") != "1" {
				t.Fatalf("got %d %v", status, hd)
			}
			if s.monthReset != "" && hd.Get("RateLimit-Reset") != s.monthReset {
				t.Fatalf("RateLimit-Reset = %s, want %s (end of the calendar month)", hd.Get("RateLimit-Reset"), s.monthReset)
			}
		})
	}
}

func TestLimitByServiceHeaderPath(t *testing.T) {
	tests := []struct {
		name, config string
		reqs         []struct {
			target, header, service string
			status                  int
		}
	}{
		{"service", `{"minute":1,"limit_by":"service"}`, []struct {
			target, header, service string
			status                  int
		}{{"/", "", "s1", 0}, {"/", "", "s1", 429}, {"/", "", "s2", 0}}},
		{"header", `{"minute":1,"limit_by":"header","header_name":"X-Tenant"}`, []struct {
			target, header, service string
			status                  int
		}{{"/", "a", "s", 0}, {"/", "a", "s", 429}, {"/", "b", "s", 0}, {"/", "", "s", 0}, {"/", "", "s", 429}}},
		{"path", `{"minute":1,"limit_by":"path","path":"/metered"}`, []struct {
			target, header, service string
			status                  int
		}{{"/metered", "", "s", 0}, {"/metered", "", "s", 429}, {"/other", "", "s", 0}, {"/other", "", "s", 429}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := newSet(t, New(), tt.config)
			for i, r := range tt.reqs {
				var h map[string]string
				if r.header != "" {
					h = map[string]string{"X-Tenant": r.header}
				}
				if _, status := send(set, r.target, h, r.service); status != r.status {
					t.Fatalf("request %d: status %d, want %d", i, status, r.status)
				}
			}
		})
	}
}

func TestErrorCodeAndMessage(t *testing.T) {
	set := newSet(t, New(), `{"second":1,"error_code":503,"error_message":"slow down"}`)
	send(set, "/", nil, "s")
	req, status := send(set, "/", nil, "s")
	if body := string(req.Response().Body()); status != 503 || body != "{\"message\":\"slow down\"}\n" {
		t.Fatalf("got %d %q, want 503 slow down", status, body)
	}
}

// TestSharedPolicies counts on real shared counters: two plugin instances
// (two nodes) on one datastore for policy cluster, on one Redis server for
// policy redis, together admit exactly the limit.
func TestSharedPolicies(t *testing.T) {
	tests := []struct {
		name   string
		config func(t *testing.T) (string, Options)
	}{
		{"cluster on sqlite", func(t *testing.T) (string, Options) {
			st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "rl.db")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			if err := st.Up(context.Background()); err != nil {
				t.Fatal(err)
			}
			return `"policy":"cluster"`, Options{Cluster: st}
		}},
		{"cluster on cassandra", func(t *testing.T) (string, Options) {
			host, port := testenv.HostPort(t, "SLUICE_TEST_CASSANDRA",
				`start a node with bash tools/cassandra/cassandra.sh start && eval "$(bash tools/cassandra/cassandra.sh env)"`)
			ks := "sluice_rl_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
			st, err := cassandra.Open(context.Background(), cassandra.Config{ContactPoints: []string{host}, Port: port,
				Keyspace: ks, Timeout: 20 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Reset(context.Background()); _ = st.Close() })
			if err := st.Up(context.Background()); err != nil {
				t.Fatal(err)
			}
			return `"policy":"cluster"`, Options{Cluster: st}
		}},
		{"redis", func(t *testing.T) (string, Options) {
			host, port := testenv.HostPort(t, "SLUICE_TEST_REDIS", "start a server with `bash tools/redis.sh start && eval $(bash tools/redis.sh env)`")
			return fmt.Sprintf(`"policy":"redis","redis_host":%q,"redis_port":%d,"redis_timeout":1000`, host, port), Options{}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			policy, opts := tt.config(t)
			svc := uuid.NewString() // fresh counters on a shared server
			cfg := `{"minute":5,"hour":7,` + policy + `}`
			nodeA, nodeB := New(opts), New(opts)
			t.Cleanup(func() { _ = nodeA.Close(); _ = nodeB.Close() })
			sets := []*plugins.Set{newSet(t, nodeA, cfg), newSet(t, nodeB, cfg)}
			var wg sync.WaitGroup
			var mu sync.Mutex
			passed := 0
			for i := range 4 {
				wg.Go(func() {
					if _, status := send(sets[i%2], "/", nil, svc); status == 0 {
						mu.Lock()
						passed++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			req, status := send(sets[1], "/", nil, svc)
			hd := req.Response().Headers()
			if passed != 4 || status != 0 || hd.Get("X-RateLimit-Remaining-Minute") != "0" || hd.Get("X-RateLimit-Remaining-Hour") != "2" {
				t.Fatalf("passed %d of 4, fifth %d %v; want all through and the minute used up", passed, status, hd)
			}
			if _, status := send(sets[0], "/", nil, svc); status != 429 {
				t.Fatalf("sixth request on the other node: %d, want 429", status)
			}
		})
	}
}

func TestRedisUnreachable(t *testing.T) {
	for _, tt := range []struct {
		faultTolerant bool
		status        int
	}{{true, 0}, {false, 500}} {
		t.Run(fmt.Sprint("fault_tolerant=", tt.faultTolerant), func(t *testing.T) {
			p := New()
			t.Cleanup(func() { _ = p.Close() })
			set := newSet(t, p, fmt.Sprintf(`{"minute":1,"policy":"redis","redis_host":"127.0.0.1","redis_port":1,"redis_timeout":200,"fault_tolerant":%v}`, tt.faultTolerant))
			req, status := send(set, "/", nil, "s")
			if status != tt.status || req.Response().Headers().Get("X-RateLimit-Limit-Minute") != "" {
				t.Fatalf("got %d %v, want %d without rate-limit headers", status, req.Response().Headers(), tt.status)
			}
		})
	}
}

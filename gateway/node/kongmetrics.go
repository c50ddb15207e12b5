package node

import (
	"net"
	"net/http"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/gateway/admin"
	"github.com/sluice-gw/sluice/gateway/cache"
	"github.com/sluice-gw/sluice/gateway/snapshot"
)

// Kong 3.x's prometheus plugin families (prometheus_kong_compat = on): the
// per-request ones are gateway/proxymetrics'; the node-level ones are read
// at scrape time by kongCollector, from the connection counters, the
// datastore's reachability, the cache and the services' targets.

// connStats counts the proxy listener's connections, the equivalent of
// nginx's stub_status for Kong's nginx families.
type connStats struct {
	accepted, requests atomic.Uint64
	reading, writing   atomic.Int64 // http.StateNew, http.StateActive
	waiting            atomic.Int64 // http.StateIdle
	other              atomic.Int64 // sink for states that are not counted
}

// listener wraps ln so that connState can track each connection's state.
func (cs *connStats) listener(ln net.Listener) net.Listener { return countingListener{ln, cs} }

// connState is the proxy server's ConnState hook (fasthttp's states are
// net/http's, in the same order). A connection is reading
// until its first request arrives (nginx reads the request line there),
// writing while a request is served, waiting while kept alive idle.
func (cs *connStats) connState(c net.Conn, fs fasthttp.ConnState) {
	s := http.ConnState(fs)
	cc, ok := c.(*countingConn)
	if !ok {
		return
	}
	if s == http.StateNew {
		cs.accepted.Add(1)
	}
	if s == http.StateActive {
		cs.requests.Add(1)
	}
	prev := http.ConnState(cc.state.Swap(int32(s)))
	if prev != s {
		cs.gauge(prev).Add(-1)
		cs.gauge(s).Add(1)
	}
}

// serverStats returns the counters as GET /status's server block.
func (cs *connStats) serverStats() admin.ServerStats {
	reading, writing, waiting := max(cs.reading.Load(), 0), max(cs.writing.Load(), 0), max(cs.waiting.Load(), 0)
	accepted := int64(cs.accepted.Load())
	return admin.ServerStats{TotalRequests: int64(cs.requests.Load()), ConnectionsActive: reading + writing + waiting,
		ConnectionsAccepted: accepted, ConnectionsHandled: accepted, ConnectionsReading: reading,
		ConnectionsWriting: writing, ConnectionsWaiting: waiting}
}

func (cs *connStats) gauge(s http.ConnState) *atomic.Int64 {
	switch s {
	case http.StateNew:
		return &cs.reading
	case http.StateActive:
		return &cs.writing
	case http.StateIdle:
		return &cs.waiting
	}
	return &cs.other // closed, hijacked, or no state yet
}

type countingListener struct {
	net.Listener
	cs *connStats
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countingConn{Conn: c, cs: l.cs}
	cc.state.Store(-1)
	return cc, nil
}

type countingConn struct {
	net.Conn
	cs    *connStats
	state atomic.Int32
}

// NetConn returns the wrapped connection, so that the proxy can reach the
// TCP connection underneath (to notice a client that goes away).
func (c *countingConn) NetConn() net.Conn { return c.Conn }

// kongCollector reads Kong's node-level families at scrape time.
type kongCollector struct {
	up       func() bool // the datastore's reachability
	stats    *connStats
	cache    *cache.Cache
	nodeID   string
	version  string
	capacity int64
	pid      string
	// upstreams lists the services' host:port.
	upstreams func() []snapshot.Upstream

	info, reachable, conns, nginxReqs, timers *prometheus.Desc
	dict, dictTotal, vms, health              *prometheus.Desc
}

func newKongCollector(up func() bool, stats *connStats, c *cache.Cache, upstreams func() []snapshot.Upstream, nodeID, version string, capacity int64) *kongCollector {
	return &kongCollector{
		up: up, stats: stats, cache: c, upstreams: upstreams, nodeID: nodeID, version: version, capacity: capacity, pid: strconv.Itoa(os.Getpid()),
		health: prometheus.NewDesc("kong_upstream_target_health",
			"Kong compat: health of each service's host:port; Sluice runs no health checks, so the state is healthchecks_off",
			[]string{"upstream", "target", "address", "state", "subsystem"}, nil),
		info: prometheus.NewDesc("kong_node_info", "Kong compat: Kong Node metadata information",
			[]string{"node_id", "version"}, nil),
		reachable: prometheus.NewDesc("kong_datastore_reachable",
			"Kong compat: Datastore reachable from Kong, 0 is unreachable", nil, nil),
		conns: prometheus.NewDesc("kong_nginx_connections_total", "Kong compat: number of connections by subsystem",
			[]string{"node_id", "subsystem", "state"}, nil),
		nginxReqs: prometheus.NewDesc("kong_nginx_requests_total", "Kong compat: number of requests total",
			[]string{"node_id", "subsystem"}, nil),
		timers: prometheus.NewDesc("kong_nginx_timers", "Kong compat: number of nginx timers",
			[]string{"state"}, nil),
		dict: prometheus.NewDesc("kong_memory_lua_shared_dict_bytes",
			"Kong compat: allocated bytes of the entity cache (kong_db_cache)", []string{"node_id", "shared_dict", "kong_subsystem"}, nil),
		dictTotal: prometheus.NewDesc("kong_memory_lua_shared_dict_total_bytes",
			"Kong compat: capacity of the entity cache (mem_cache_size)", []string{"node_id", "shared_dict", "kong_subsystem"}, nil),
		vms: prometheus.NewDesc("kong_memory_workers_lua_vms_bytes",
			"Kong compat: Go heap in use by the node process", []string{"node_id", "pid", "kong_subsystem"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (kc *kongCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{kc.info, kc.reachable, kc.conns, kc.nginxReqs, kc.timers, kc.dict, kc.dictTotal, kc.vms, kc.health} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (kc *kongCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	// Kong types the two nginx families as gauges; their names end in
	// _total, which Prometheus' lint reserves for counters, so they are
	// typed counters here. Kong's dashboards only sum them.
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(kc.info, 1, kc.nodeID, kc.version)
	gauge(kc.reachable, b2f(kc.up()))

	cs := kc.stats
	reading, writing, waiting := max(cs.reading.Load(), 0), max(cs.writing.Load(), 0), max(cs.waiting.Load(), 0)
	accepted, requests := float64(cs.accepted.Load()), float64(cs.requests.Load())
	for _, s := range []struct {
		state string
		v     float64
	}{
		{"active", float64(reading + writing + waiting)}, {"reading", float64(reading)},
		{"writing", float64(writing)}, {"waiting", float64(waiting)},
		{"accepted", accepted}, {"handled", accepted}, {"total", requests},
	} {
		counter(kc.conns, s.v, kc.nodeID, "http", s.state)
	}
	counter(kc.nginxReqs, requests, kc.nodeID, "http")
	gauge(kc.timers, float64(runtime.NumGoroutine()), "running")
	gauge(kc.timers, 0, "pending")

	if st := kc.cache.Stats(); st.HasBackendStats && st.BackendStats.Bytes >= 0 && kc.capacity > 0 {
		gauge(kc.dict, float64(st.BackendStats.Bytes), kc.nodeID, "kong_db_cache", "http")
		gauge(kc.dictTotal, float64(kc.capacity), kc.nodeID, "kong_db_cache", "http")
	}
	gauge(kc.vms, heapBytes(), kc.nodeID, kc.pid, "http")
	// Kong reports every state of a target, 1 for the current one; a target
	// whose health checks are off is in "healthchecks_off", as all of ours are.
	for _, t := range kc.upstreams() {
		for _, state := range []string{"healthy", "unhealthy", "dns_error", "healthchecks_off"} {
			gauge(kc.health, b2f(state == "healthchecks_off"), t.Host, t.Target, t.Target, state, "http")
		}
	}
}

// heapBytes reads the live heap from runtime/metrics, which unlike
// runtime.ReadMemStats does not stop the world.
func heapBytes() float64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	rtmetrics.Read(s)
	if s[0].Value.Kind() != rtmetrics.KindUint64 {
		return 0
	}
	return float64(s[0].Value.Uint64())
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

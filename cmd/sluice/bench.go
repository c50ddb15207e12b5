package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluice-gw/sluice/bench/bareproxy"
	benchrun "github.com/sluice-gw/sluice/bench/run"
	"github.com/sluice-gw/sluice/gateway/config"
	"github.com/sluice-gw/sluice/gateway/store"
)

// bench runs `sluice bench`: a local cluster of this very binary, its
// upstream and load, measured and reported (bench/run).
func bench(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "bareproxy" {
		return benchBareProxy(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "stormwriter" {
		return benchStormWriter(ctx, args[1:])
	}
	if clusterMode(args) {
		return benchCluster(ctx, args)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	profile := fs.String("profile", "default", "smoke (<= 60 s), default (<= 3 min on 2 cores), full, soak (30 min) or scale")
	out := fs.String("out", "", "report directory (default bench/results/<timestamp>/)")
	database := fs.String("database", "sqlite", "sqlite, postgres, cassandra (connection from SLUICE_PG_*/SLUICE_CASSANDRA_* or -c), or off: DB-less nodes loaded with POST /config")
	conf := fs.String("c", "", "configuration file given to every node (kong.conf format)")
	nodes := fs.Int("nodes", 3, "nodes in the consistency phase (soak: default 2)")
	backends := fs.String("backends", "", "cache backends to measure, comma-separated (default: the profile's)")
	freqs := fs.String("frequencies", "", "db_update_frequency values in seconds, comma-separated (default: the profile's)")
	skip := fs.String("skip", "", "phases to leave out: throughput, consistency, storm (comma-separated)")
	duration := fs.Duration("duration", 0, "soak: how long the traffic runs (default 30m)")
	rate := fs.Int("rate", 0, "soak: open-loop requests/s (default half the measured capacity, at most 1500)")
	routes := fs.Int("routes", 0, "scale: routes seeded through the datastore (default 100000)")
	consumers := fs.Int("consumers", 0, "scale: key-auth consumers seeded through the datastore (default 1000000)")
	adminRoutes := fs.Int("admin-routes", -1, "scale: routes created one by one through the Admin API of a fresh SQLite node (default 100000; 0 skips)")
	var nodeEnv envList
	fs.Var(&nodeEnv, "node-env", "KEY=VALUE added to every node's environment, repeatable (e.g. GOMAXPROCS=2, GOGC=200); the bench process itself is unaffected")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, ok := benchrun.Profiles[*profile]
	if !ok {
		return fmt.Errorf("bench: --profile %q: want smoke, default, full, soak or scale", *profile)
	}
	if err := scaleFlags(&p, *routes, *consumers, *adminRoutes); err != nil {
		return err
	}
	if p.SoakDuration > 0 {
		if *duration > 0 {
			p.SoakDuration = *duration
		}
		if *rate > 0 {
			p.SoakRate = *rate
		}
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "nodes" {
				p.SoakNodes = *nodes
			}
		})
	} else if *duration > 0 || *rate > 0 {
		return fmt.Errorf("bench: --duration and --rate are for --profile soak")
	}
	if *backends != "" {
		p.Backends = strings.Split(*backends, ",")
	}
	if *freqs != "" {
		p.Frequencies = nil
		for _, f := range strings.Split(*freqs, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || v <= 0 {
				return fmt.Errorf("bench: --frequencies: %q is not a positive number of seconds", f)
			}
			p.Frequencies = append(p.Frequencies, v)
		}
	}
	if *out == "" {
		*out = filepath.Join("bench", "results", time.Now().Format("20060102-150405"))
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: cannot find the sluice binary: %w", err)
	}
	var skips []string
	if *skip != "" {
		for _, s := range strings.Split(*skip, ",") {
			skips = append(skips, strings.TrimSpace(s))
		}
	}
	res, err := benchrun.Run(ctx, benchrun.Options{
		Binary: bin, Profile: p, Out: *out, Database: *database, ConfigFile: *conf, Nodes: *nodes,
		Skip: skips, NodeEnv: nodeEnv, Progress: os.Stdout, Command: "sluice bench " + strings.Join(args, " "),
		OpenStore: func(ctx context.Context, env []string) (store.Store, error) { return openBenchStore(ctx, *conf, env) },
	})
	if res != nil {
		data, rerr := os.ReadFile(filepath.Join(*out, "report.md"))
		if rerr == nil {
			fmt.Printf("\n%s\nreport: %s\n", data, filepath.Join(*out, "report.html"))
		}
	}
	return err
}

// scaleFlags applies --routes, --consumers and --admin-routes (-1: not
// given) to the scale profile p, and refuses them for the others.
func scaleFlags(p *benchrun.Profile, routes, consumers, adminRoutes int) error {
	if p.ScaleRoutes == 0 {
		if routes != 0 || consumers != 0 || adminRoutes != -1 {
			return errors.New("bench: --routes, --consumers and --admin-routes are for --profile scale")
		}
		return nil
	}
	switch {
	case routes < 0 || consumers < 0 || adminRoutes < -1:
		return errors.New("bench: --routes, --consumers and --admin-routes must not be negative")
	case routes > 0 && routes < 2*p.ScaleRouteChanges/3+3:
		return fmt.Errorf("bench: --routes %d: the scale profile's %d route changes need at least %d", routes, p.ScaleRouteChanges, 2*p.ScaleRouteChanges/3+3)
	}
	if routes > 0 {
		p.ScaleRoutes = routes
	}
	if consumers > 0 {
		p.Consumers = consumers
	}
	if adminRoutes >= 0 {
		p.ScaleAdminRoutes = adminRoutes
	}
	return nil
}

// openBenchStore opens the datastore a node started with -c file and env
// added to this process's environment would open, with its migrations
// applied: the scale profile seeds it directly.
func openBenchStore(ctx context.Context, file string, env []string) (store.Store, error) {
	cfg, err := config.Load(file, append(os.Environ(), env...))
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := st.Up(ctx); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("cannot apply migrations: %w", err)
	}
	return st, nil
}

// envList is a repeatable KEY=VALUE flag.
type envList []string

func (l *envList) String() string { return strings.Join(*l, " ") }

func (l *envList) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" || strings.ContainsAny(k, " \t") {
		return fmt.Errorf("%q: want KEY=VALUE", v)
	}
	*l = append(*l, v)
	return nil
}

// benchStormWriter runs the storm phase's writer (benchrun.StormWriter) in
// a process of its own, which the bench pins beside node A:
// `sluice bench stormwriter -admin URL -plugin ID -service NAME -prefix P
// -rate N`. It writes until SIGTERM, then prints what it did as JSON. It is
// internal to the bench.
func benchStormWriter(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench stormwriter", flag.ContinueOnError)
	var w benchrun.StormWriter
	fs.StringVar(&w.AdminURL, "admin", "", "node A's Admin API base URL")
	fs.StringVar(&w.Plugin, "plugin", "", "id of the request-termination plugin to PATCH")
	fs.StringVar(&w.Service, "service", "", "service to add routes to")
	fs.StringVar(&w.Prefix, "prefix", "storm", "path prefix of the routes added")
	fs.IntVar(&w.Rate, "rate", 200, "changes per second")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if w.AdminURL == "" || w.Plugin == "" || w.Service == "" || w.Rate <= 0 {
		return errors.New("bench stormwriter: -admin, -plugin, -service and a positive -rate are required")
	}
	return json.NewEncoder(os.Stdout).Encode(w.Run(ctx))
}

// benchBareProxy serves a reference proxy (bench/bareproxy) that the
// throughput phase and bench/proxycpu measure beside the gateway, in a
// process of its own as the gateway and nginx have:
// `sluice bench bareproxy [-engine httputil|fasthttp] -addr A -upstream U`.
// It is internal to the bench and stops on SIGTERM.
func benchBareProxy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench bareproxy", flag.ContinueOnError)
	engine := fs.String("engine", "httputil", "HTTP engine of the proxy: "+names(bareEngines))
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	up := fs.String("upstream", "", "upstream base URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	serve, ok := bareEngines[*engine]
	if !ok {
		return fmt.Errorf("bench bareproxy: -engine %q: want one of %s", *engine, names(bareEngines))
	}
	u, err := url.Parse(*up)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("bench bareproxy: -upstream %q: want http://host:port", *up)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("bench bareproxy: %w", err)
	}
	if err := serve(ctx, ln, u); err != nil {
		return fmt.Errorf("bench bareproxy: -engine %s: %w", *engine, err)
	}
	return nil
}

// bareEngines maps `sluice bench bareproxy -engine` to a function serving
// that reference proxy on ln until ctx is done.
var bareEngines = map[string]func(ctx context.Context, ln net.Listener, upstream *url.URL) error{
	"httputil": serveHTTPUtil,
	"fasthttp": serveFastHTTP,
}

// serveHTTPUtil serves bareproxy.New on a net/http server.
func serveHTTPUtil(ctx context.Context, ln net.Listener, upstream *url.URL) error {
	srv := &http.Server{Handler: bareproxy.New(upstream), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serveFastHTTP serves bareproxy.NewFastHTTP on a fasthttp server, as the
// perf notes' fasthttpproxy does (no Server header). Serve returns as soon
// as Shutdown has closed the listener; the process then exits without
// waiting for the connections Shutdown would drain.
func serveFastHTTP(ctx context.Context, ln net.Listener, upstream *url.URL) error {
	srv := &fasthttp.Server{Handler: bareproxy.NewFastHTTP(upstream), NoDefaultServerHeader: true}
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown()
	}()
	return srv.Serve(ln)
}

// Command sluice runs a gateway node and its tools.
//
//	sluice run [-c FILE]                         start a node
//	sluice migrations up|status|reset [-c FILE]  manage the datastore schema
//	sluice config parse|db_import|db_export [-c FILE] PATH  declarative configuration
//	sluice bench [flags]                         load test a local cluster
//	sluice version                               print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluice-gw/sluice/gateway/config"
	"github.com/sluice-gw/sluice/gateway/node"
	"github.com/sluice-gw/sluice/internal/gcpause"
	"github.com/sluice-gw/sluice/internal/memlimit"
	"github.com/sluice-gw/sluice/otel"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

const usage = `usage: sluice <command> [flags]

commands:
  run [-c FILE]                          start a gateway node
  migrations up|status|reset [-c FILE]   manage the datastore schema
  config parse|db_import|db_export [-c FILE] PATH
                                         Kong's declarative configuration: check a file,
                                         import it in one transaction, export the datastore
  bench [flags]                          load test a local cluster (sluice bench -h)
  version                                print the version

Configuration: a kong.conf-style file (-c) and SLUICE_<KEY> environment
variables, e.g. SLUICE_DB_UPDATE_FREQUENCY=1.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "run":
		err = run(ctx, args)
	case "migrations":
		err = migrations(ctx, args, os.Stdout)
	case "config":
		err = configCmd(ctx, args, os.Stdout)
	case "bench":
		err = bench(ctx, args)
	case "version":
		fmt.Println("sluice", version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "sluice: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(1)
	}
}

// loadConfig parses -c and loads the configuration.
func loadConfig(name string, args []string) (*config.Config, *flag.FlagSet, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	file := fs.String("c", "", "configuration file (kong.conf format: key = value)")
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	c, err := config.Load(*file, os.Environ())
	return c, fs, err
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated by config
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

func run(ctx context.Context, args []string) error {
	cfg, _, err := loadConfig("run", args)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogLevel)
	slog.SetDefault(log)
	if cfg.Database == "cassandra" && cfg.DBUpdatePropagation == 0 {
		log.Warn("You are using Cassandra but db_update_propagation is 0 (the default): nodes may re-cache " +
			"a value before Cassandra replicated its change. Set db_update_propagation to the maximum " +
			"replication delay of your cluster.")
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Up(ctx); err != nil {
		return fmt.Errorf("cannot apply migrations: %w", err)
	}
	if cfg.Database == "off" && cfg.DeclarativeConfig != "" {
		if err := loadDeclarative(ctx, st, cfg.DeclarativeConfig); err != nil {
			return err
		}
	}
	backend, err := newBackend(cfg)
	if err != nil {
		return err
	}
	if ml := memLimit(cfg); memlimit.Enabled(ml) {
		log.Info("the Go heap grows by what the node holds besides the cache arena (GOMEMLIMIT overrides)",
			"cache_backend", cfg.CacheBackend, "mem_cache_size", cfg.MemCacheSize)
		go memlimit.Run(ctx, ml)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), gcpause.New())
	tp, err := otel.NewTracerProvider(ctx, "sluice", version)
	if err != nil {
		return err
	}
	opts := nodeOptions(cfg)
	opts.Store, opts.Backend, opts.Version, opts.Logger, opts.Registry = st, backend, version, log, reg
	if tp != nil {
		opts.TracerProvider = tp
		defer tp.Shutdown(context.Background())
	}
	n, err := node.New(opts)
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down: draining in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return n.Shutdown(sctx)
}

func migrations(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New("migrations: want up, status or reset")
	}
	sub := args[0]
	cfg, _, err := loadConfig("migrations "+sub, args[1:])
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	switch sub {
	case "up":
		if err := st.Up(ctx); err != nil {
			return err
		}
		fmt.Fprintf(out, "database (%s) is up to date\n", cfg.Database)
	case "status":
		s, err := st.Status(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "database: %s\nexecuted: %s\npending: %s\n", cfg.Database, list(s.Executed), list(s.Pending))
	case "reset":
		if err := st.Reset(ctx); err != nil {
			return err
		}
		fmt.Fprintf(out, "database (%s) reset: every table was dropped\n", cfg.Database)
	default:
		return fmt.Errorf("migrations: unknown subcommand %q: want up, status or reset", sub)
	}
	return nil
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

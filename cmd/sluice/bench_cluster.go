package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluice-gw/sluice/bench/cluster"
)

// clusterMode reports whether `sluice bench` args ask for the cluster
// bench (--cluster FILE).
func clusterMode(args []string) bool {
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "cluster" {
			return true
		}
	}
	return false
}

// benchCluster runs `sluice bench --cluster FILE`: a running cluster's
// consistency window, measured from outside with canary entities
// (bench/cluster).
func benchCluster(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench --cluster", flag.ContinueOnError)
	file := fs.String("cluster", "", "cluster file (YAML: load_balancer, admin_token, tls, nodes[{name, admin, proxy, metrics}]); see bench/cluster.example.yaml")
	cleanupOnly := fs.Bool("cleanup", false, "only delete every canary entity left on the cluster (by tag "+cluster.CanaryTag+"), then exit")
	out := fs.String("out", "", "report directory (default bench/results/cluster-<timestamp>/)")
	rounds := fs.Int("rounds", 0, "rounds of 4 canary changes (default 40)")
	interval := fs.Duration("probe-interval", 0, "pause between two probes of one change on one node (default 10ms: at most 400 probes/s per node while a change is unseen)")
	timeout := fs.Duration("probe-timeout", 0, "a change unseen on a node for this long counts as missed (default 2 x db_update_frequency + 5s)")
	rate := fs.Int("load", 0, "open-loop requests/s through load_balancer (default 0: no load)")
	duration := fs.Duration("duration", 30*time.Second, "how long --load runs")
	path := fs.String("path", "/", "request path of --load")
	var headers envList
	fs.Var(headerFlag{&headers}, "header", "K:V header of --load, repeatable")
	serve := fs.String("serve", "", "after the run, serve its figures as Prometheus metrics on ADDR (/metrics) until interrupted")
	every := fs.Duration("every", 0, "with --serve: run again every D (default: once)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench --cluster: unexpected argument %q", fs.Arg(0))
	}
	if *every > 0 && *serve == "" {
		return errors.New("bench --cluster: --every needs --serve")
	}
	f, err := cluster.Load(*file)
	if err != nil {
		return err
	}
	if *cleanupOnly {
		deleted, left, err := cluster.Cleanup(ctx, f)
		fmt.Printf("canary cleanup: %d deleted, %d left\n", deleted, left)
		if err == nil && left > 0 {
			err = fmt.Errorf("bench --cleanup: %d canary entities are still listed", left)
		}
		return err
	}
	hdr := http.Header{}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, "=")
		hdr.Add(k, v)
	}
	if *out == "" {
		*out = cluster.DefaultOut()
	}
	opts := cluster.Options{File: f, FilePath: *file, Out: *out, Rounds: *rounds, ProbeInterval: *interval, ProbeTimeout: *timeout,
		Load:     cluster.LoadOptions{Rate: *rate, Duration: *duration, Path: *path, Header: hdr},
		Progress: os.Stdout, Command: "sluice bench " + strings.Join(args, " ")}
	var exp *cluster.Exporter
	if *serve != "" {
		reg := prometheus.NewRegistry()
		exp = cluster.NewExporter(reg)
		ln, err := net.Listen("tcp", *serve)
		if err != nil {
			return fmt.Errorf("bench --cluster: --serve: %w", err)
		}
		srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		fmt.Printf("serving the last run's figures on http://%s/metrics\n", ln.Addr())
	}
	for {
		res, err := cluster.Run(ctx, opts)
		if exp != nil && ctx.Err() == nil {
			// Served before the report is announced: whoever reads the
			// "report:" line and scrapes finds this run's figures.
			exp.Set(res)
		}
		if res != nil {
			if data, rerr := os.ReadFile(filepath.Join(opts.Out, "report.md")); rerr == nil {
				fmt.Printf("\n%s\nreport: %s\n", data, filepath.Join(opts.Out, "report.html"))
			}
		}
		if exp == nil || ctx.Err() != nil {
			return err
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		if *every <= 0 {
			<-ctx.Done()
			return nil
		}
		select {
		case <-time.After(*every):
		case <-ctx.Done():
			return nil
		}
		opts.Out = cluster.DefaultOut()
	}
}

// headerFlag is a repeatable K:V flag stored as K=V in an envList.
type headerFlag struct{ l *envList }

func (h headerFlag) String() string {
	if h.l == nil {
		return ""
	}
	return h.l.String()
}

func (h headerFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("%q: want K:V", v)
	}
	*h.l = append(*h.l, strings.TrimSpace(k)+"="+strings.TrimSpace(val))
	return nil
}

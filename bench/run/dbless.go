package run

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/bench/harness"
	"github.com/sluice-gw/sluice/bench/load"
	"github.com/sluice-gw/sluice/bench/report"
)

// DB-less nodes (--database off) keep their configuration in the node and
// refuse entity writes (405). The bench builds Kong's declarative
// configuration instead and loads every node with POST /config; a change
// is the changed configuration POSTed to each node in turn.

// ViaPostConfig names the consistency row of DB-less nodes.
const ViaPostConfig = "POST /config to every node"

func (b *bench) dbless() bool { return b.opts.Database == "off" }

// throughputConfig is the configuration setupThroughput writes through
// the Admin API: the service, its route, key-auth and rate-limiting, and
// the profile's consumers with one key each.
func (b *bench) throughputConfig(path string) ([]byte, error) {
	svc := b.prefix + "-bench"
	consumers := make([]any, b.opts.Profile.Consumers)
	for i := range consumers {
		consumers[i] = map[string]any{"username": b.prefix + "-u" + strconv.Itoa(i),
			"keyauth_credentials": []any{map[string]any{"key": b.prefix + "-key-" + strconv.Itoa(i)}}}
	}
	return json.Marshal(map[string]any{"_format_version": "3.0",
		"services": []any{map[string]any{"name": svc, "url": b.upstream,
			"routes": []any{map[string]any{"name": svc, "paths": []string{path}}},
			"plugins": []any{map[string]any{"name": "key-auth"},
				map[string]any{"name": "rate-limiting", "config": map[string]any{"second": 1000000000, "limit_by": "consumer"}}}}},
		"consumers": consumers})
}

// configSweep is the consistency phase's configuration on DB-less nodes:
// the entities prepare writes through the Admin API elsewhere, and which
// of the changes have been made.
type configSweep struct {
	c        *cluster
	upstream string
	changes  []change
	done     []bool
}

// newConfigSweep plans n changes, kinds in turn, on entities named after
// pre. The changes are made one at a time, so their times are not drawn.
func newConfigSweep(pre, upstream string, n int) *configSweep {
	c := &cluster{svc: pre + "-svc", consumer: pre + "-con", basePath: "/" + pre + "-base", keyPath: "/" + pre + "-keyed"}
	s := &configSweep{c: c, upstream: upstream, changes: make([]change, n), done: make([]bool, n)}
	for i := range s.changes {
		ch := &s.changes[i]
		r := fmt.Sprintf("%s-c%d", pre, i)
		ch.kind = sweepKinds[i%len(sweepKinds)]
		switch ch.kind {
		case routeCreated:
			ch.path, ch.before, ch.after, ch.route = "/"+r+"-new", http.StatusNotFound, http.StatusOK, r+"-new"
		case pluginAdded:
			ch.path, ch.before, ch.after, ch.route = "/"+r+"-plug", http.StatusOK, http.StatusTeapot, r+"-plug"
		case serviceDeleted:
			ch.path, ch.before, ch.after, ch.service = "/"+r+"-del", http.StatusOK, http.StatusNotFound, r+"-del"
		case credentialRevoked:
			ch.path, ch.key, ch.before, ch.after = c.keyPath, r+"-key", http.StatusOK, http.StatusUnauthorized
		}
	}
	return s
}

// doc returns the configuration with the changes made so far.
func (s *configSweep) doc() ([]byte, error) {
	c := s.c
	route := func(name, path string) map[string]any { return map[string]any{"name": name, "paths": []string{path}} }
	routes := []any{route(c.svc+"-base", c.basePath)}
	services := []any{}
	var keys []any
	for i, ch := range s.changes {
		switch ch.kind {
		case routeCreated:
			if s.done[i] {
				routes = append(routes, route(ch.route, ch.path))
			}
		case pluginAdded:
			r := route(ch.route, ch.path)
			if s.done[i] {
				r["plugins"] = []any{map[string]any{"name": "request-termination", "config": map[string]any{"status_code": 418}}}
			}
			routes = append(routes, r)
		case serviceDeleted:
			if !s.done[i] {
				services = append(services, map[string]any{"name": ch.service, "url": s.upstream,
					"routes": []any{route(ch.service, ch.path)}})
			}
		case credentialRevoked:
			if !s.done[i] {
				keys = append(keys, map[string]any{"key": ch.key})
			}
		}
	}
	services = append(services,
		map[string]any{"name": c.svc, "url": s.upstream, "routes": routes},
		map[string]any{"name": c.svc + "-keyed", "url": s.upstream, "routes": []any{route(c.svc+"-keyed", c.keyPath)},
			"plugins": []any{map[string]any{"name": "key-auth"}}})
	return json.Marshal(map[string]any{"_format_version": "3.0", "services": services,
		"consumers": []any{map[string]any{"username": c.consumer, "keyauth_credentials": keys}}})
}

// configConsistency measures, on DB-less nodes, the window from the first
// POST /config of a changed configuration (POSTed to every node in turn)
// to every node serving the change. Changes are made one at a time, each
// after its entities were verified warm on every node.
func (b *bench) configConsistency(ctx context.Context) (report.Consistency, error) {
	p := b.opts.Profile
	every := 5 * time.Millisecond
	row := report.Consistency{Via: ViaPostConfig, ProbeMS: float64(every) / 1e6}
	b.logf("consistency: %s, %d DB-less nodes, %d changes one at a time, each probed on every node every %v",
		ViaPostConfig, b.opts.Nodes, p.Changes, every)
	dir := filepath.Join(b.opts.Out, "consistency-post-config")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return row, fmt.Errorf("bench: %w", err)
	}
	hc, err := harness.Start(ctx, harness.Options{Binary: b.opts.Binary, Nodes: b.opts.Nodes, Dir: dir, Args: b.args(), Env: b.nodeEnv()})
	if err != nil {
		return row, fmt.Errorf("bench: %s: %w", ViaPostConfig, err)
	}
	defer hc.Stop()
	defer probeClient.CloseIdleConnections()
	s := newConfigSweep(b.prefix+"-cfg", b.upstream, p.Changes)
	s.c.a, s.c.others = hc.Nodes[0], hc.Nodes
	if _, err := s.post(ctx, hc.Nodes); err != nil {
		return row, fmt.Errorf("bench: %s: setup: %w", ViaPostConfig, err)
	}
	if s.c.consumerID, err = consumerID(ctx, hc.Nodes[0], s.c.consumer); err != nil {
		return row, fmt.Errorf("bench: %s: setup: %w", ViaPostConfig, err)
	}
	if p.SettingRPS > 0 && ctx.Err() == nil {
		row.RPS = load.Closed(ctx, load.Options{URL: hc.Nodes[len(hc.Nodes)-1].ProxyURL + s.c.basePath, Conns: p.Conns, Duration: p.SettingRPS}).RPS
	}
	windows := map[string][]float64{}
	var writes []float64
	limit := 10 * time.Second
	for i := range s.changes {
		if ctx.Err() != nil {
			break
		}
		ch := s.changes[i]
		if err := s.warm(ctx, ch, limit); err != nil {
			row.Cold++
			if row.Cold == 1 {
				b.logf("  a change found cold, not made (counted cold): %v", err)
			}
			continue
		}
		s.done[i] = true
		w, posts, ok, err := s.change(ctx, hc.Nodes, ch, limit, every)
		writes = append(writes, posts...)
		if err != nil {
			return row, fmt.Errorf("bench: %s: change %d: %w", ViaPostConfig, i, err)
		}
		row.Warm++
		if !ok {
			row.Missed++
			continue
		}
		windows[ch.kind] = append(windows[ch.kind], w)
		if (i+1)%20 == 0 {
			b.logf("  %d/%d changes made", i+1, len(s.changes))
		}
	}
	row.ByChange = map[string]report.Summary{}
	for kind, w := range windows {
		row.ByChange[kind] = report.Summarize(w)
		row.Windows = append(row.Windows, w...)
	}
	row.Window = report.Summarize(row.Windows)
	row.Write = report.Summarize(writes)
	return row, ctx.Err()
}

// post POSTs the current configuration to every node in turn and returns
// each POST's latency (ms).
func (s *configSweep) post(ctx context.Context, nodes []*harness.Node) ([]float64, error) {
	doc, err := s.doc()
	if err != nil {
		return nil, err
	}
	ms := make([]float64, 0, len(nodes))
	for _, n := range nodes {
		t := time.Now()
		if err := n.PostConfig(ctx, doc); err != nil {
			return ms, err
		}
		ms = append(ms, float64(time.Since(t))/1e6)
	}
	return ms, nil
}

// warm makes every node answer ch's request with the status from before
// it, then checks its entities are held (verifyWarm).
func (s *configSweep) warm(ctx context.Context, ch change, limit time.Duration) error {
	for _, n := range s.c.others {
		ch.node = n
		if _, ok := probe(ctx, n, ch.path, ch.key, ch.before, time.Now(), limit, 10*time.Millisecond); !ok {
			return fmt.Errorf("%s %s did not answer %d on %s within %v", ch.kind, ch.path, ch.before, n.Name, limit)
		}
		if err := s.c.verifyWarm(ctx, &ch); err != nil {
			return err
		}
	}
	return nil
}

// change POSTs the configuration with ch made to every node in turn while
// every node is probed, and returns the window (ms): from the first POST's
// send to the last node's first probe that saw the change; ok is false
// when a node did not show it within limit.
func (s *configSweep) change(ctx context.Context, nodes []*harness.Node, ch change, limit, every time.Duration) (float64, []float64, bool, error) {
	seen := make([]time.Duration, len(nodes))
	shown := make([]bool, len(nodes))
	start := time.Now()
	var wg sync.WaitGroup
	for j, n := range nodes {
		wg.Go(func() { seen[j], shown[j] = probe(ctx, n, ch.path, ch.key, ch.after, start, limit, every) })
	}
	posts, err := s.post(ctx, nodes)
	wg.Wait()
	if err != nil {
		return 0, posts, false, err
	}
	var w time.Duration
	for j := range nodes {
		if !shown[j] {
			return 0, posts, false, nil
		}
		w = max(w, seen[j])
	}
	return float64(w) / 1e6, posts, true, nil
}

// consumerID returns the id node n gave the consumer named username.
func consumerID(ctx context.Context, n *harness.Node, username string) (string, error) {
	body, err := n.MustAdmin(ctx, http.MethodGet, "/consumers/"+username, nil, http.StatusOK)
	if err != nil {
		return "", err
	}
	var m struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return "", fmt.Errorf("GET /consumers/%s: %w", username, err)
	}
	return m.ID, nil
}

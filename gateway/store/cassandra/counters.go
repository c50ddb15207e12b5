package cassandra

import (
	"context"
	"fmt"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/sluice-gw/sluice/gateway/store"
)

// Usage implements store.Counters: the counters of keys whose expiry,
// by this node's clock, is still ahead.
func (s *Store) Usage(ctx context.Context, keys []string) ([]int64, error) {
	iter := s.session.Query(`SELECT key, value FROM `+s.ks+`.ratelimiting_metrics WHERE key IN ? AND expire_at > ?`,
		keys, time.Now()).Consistency(s.cfg.read).IterContext(ctx)
	vals := make(map[string]int64, len(keys))
	var (
		k string
		v int64
	)
	for iter.Scan(&k, &v) {
		vals[k] += v
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("cassandra: cannot read counters: %w", s.wrap(err))
	}
	out := make([]int64, len(keys))
	for i, key := range keys {
		out[i] = vals[key]
	}
	return out, nil
}

// Increment implements store.Counters with one counter batch at the write
// consistency. Cassandra cannot make it all-or-nothing across partitions
// (counter batches are unlogged) nor retry it safely (a counter update is
// not idempotent): a batch that fails on a timeout may have incremented
// some keys or all of them. The rate-limiting plugin reads that as one
// request counted or not, as Kong's Cassandra policy did.
func (s *Store) Increment(ctx context.Context, keys []string, expire []time.Time) error {
	b := s.session.Batch(gocql.CounterBatch).Consistency(s.cfg.write)
	for i, k := range keys {
		b.Query(`UPDATE `+s.ks+`.ratelimiting_metrics SET value = value + 1 WHERE key = ? AND expire_at = ?`, k, expire[i])
	}
	if err := b.ExecContext(ctx); err != nil {
		return fmt.Errorf("cassandra: cannot increment counters: %w", s.wrap(err))
	}
	return nil
}

var _ store.Counters = (*Store)(nil)

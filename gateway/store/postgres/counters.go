package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-gw/sluice/gateway/store"
)

// Usage implements store.Counters.
func (s *Store) Usage(ctx context.Context, keys []string) ([]int64, error) {
	const what = "read counters"
	if err := s.acquire(ctx); err != nil {
		return nil, s.wrap(what, err)
	}
	defer s.release()
	rows, err := s.pool.Query(ctx, `SELECT key, value FROM ratelimiting_metrics
		WHERE key = ANY($1) AND expire_at > clock_timestamp()`, keys)
	if err != nil {
		return nil, s.wrap(what, err)
	}
	vals := map[string]int64{}
	var (
		k string
		v int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&k, &v}, func() error { vals[k] = v; return nil }); err != nil {
		return nil, s.wrap(what, err)
	}
	out := make([]int64, len(keys))
	for i, key := range keys {
		out[i] = vals[key]
	}
	return out, nil
}

// Increment implements store.Counters, in one transaction that also
// deletes counters expired for a minute.
func (s *Store) Increment(ctx context.Context, keys []string, expire []time.Time) error {
	const what = "increment counters"
	if err := s.acquire(ctx); err != nil {
		return s.wrap(what, err)
	}
	defer s.release()
	b := &pgx.Batch{}
	for i, k := range keys {
		b.Queue(`INSERT INTO ratelimiting_metrics (key, value, expire_at) VALUES ($1, 1, $2)
			ON CONFLICT (key) DO UPDATE SET value = ratelimiting_metrics.value + 1`, k, expire[i])
	}
	b.Queue(`DELETE FROM ratelimiting_metrics WHERE expire_at < clock_timestamp() - interval '1 minute'`)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, b).Close()
	})
	return s.wrap(what, err)
}

var _ store.Counters = (*Store)(nil)

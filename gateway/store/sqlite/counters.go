package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-gw/sluice/gateway/store"
)

// Usage implements store.Counters.
func (s *Store) Usage(ctx context.Context, keys []string) ([]int64, error) {
	out := make([]int64, len(keys))
	now := s.now().Unix()
	for i, k := range keys {
		err := s.reader.QueryRowContext(ctx,
			`SELECT value FROM ratelimiting_metrics WHERE key = ? AND expire_at > ?`, k, now).Scan(&out[i])
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("sqlite: cannot read counters: %w", mapErr(err))
		}
	}
	return out, nil
}

// Increment implements store.Counters, in one transaction that also
// deletes counters expired for a minute.
func (s *Store) Increment(ctx context.Context, keys []string, expire []time.Time) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: cannot increment counters: %w", mapErr(err))
	}
	defer func() { _ = tx.Rollback() }()
	for i, k := range keys {
		if _, err := tx.ExecContext(ctx, `INSERT INTO ratelimiting_metrics (key, value, expire_at) VALUES (?, 1, ?)
			ON CONFLICT (key) DO UPDATE SET value = value + 1`, k, expire[i].Unix()); err != nil {
			return fmt.Errorf("sqlite: cannot increment counters: %w", mapErr(err))
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM ratelimiting_metrics WHERE expire_at < ?`,
		s.now().Add(-time.Minute).Unix()); err != nil {
		return fmt.Errorf("sqlite: cannot purge counters: %w", mapErr(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: cannot increment counters: %w", mapErr(err))
	}
	return nil
}

var _ store.Counters = (*Store)(nil)

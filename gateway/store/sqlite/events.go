package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-gw/sluice/gateway/store"
)

// Events implements store.Store. It returns every matching event at once.
func (s *Store) Events(ctx context.Context, since time.Time) ([]store.Event, time.Time, error) {
	now := s.clock()
	rows, err := s.reader.QueryContext(ctx, `SELECT id, node_id, channel, data, trace, at, nbf
		FROM cluster_events WHERE at > ? AND at <= ? ORDER BY at, rowid`, since.UnixMilli(), now.UnixMilli())
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("sqlite: cannot read cluster_events: %w", mapErr(err))
	}
	defer rows.Close()
	var evs []store.Event
	for rows.Next() {
		var e store.Event
		var at, nbf int64
		if err := rows.Scan(&e.ID, &e.NodeID, &e.Channel, &e.Data, &e.TraceParent, &at, &nbf); err != nil {
			return nil, time.Time{}, fmt.Errorf("sqlite: cannot read cluster_events: %w", mapErr(err))
		}
		e.At, e.NotBefore = time.UnixMilli(at).UTC(), time.UnixMilli(nbf).UTC()
		e.Delay = e.NotBefore.Sub(e.At)
		evs = append(evs, e)
	}
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, fmt.Errorf("sqlite: cannot read cluster_events: %w", mapErr(err))
	}
	return evs, now, nil
}

// PurgeEvents implements store.Store.
func (s *Store) PurgeEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, fmt.Errorf("sqlite: cannot purge cluster_events: limit %d must be positive", limit)
	}
	// at < before, with at in whole milliseconds: round before up.
	ms := before.UnixMilli()
	if time.UnixMilli(ms).Before(before) {
		ms++
	}
	res, err := s.writer.ExecContext(ctx, `DELETE FROM cluster_events WHERE rowid IN
		(SELECT rowid FROM cluster_events WHERE at < ? ORDER BY at LIMIT ?)`, ms, limit)
	if err != nil {
		return 0, fmt.Errorf("sqlite: cannot purge cluster_events: %w", mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: cannot purge cluster_events: %w", mapErr(err))
	}
	return int(n), nil
}

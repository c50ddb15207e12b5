package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-gw/sluice/gateway/store"
	"github.com/sluice-gw/sluice/internal/yield"
)

// Events implements store.Store. It returns every matching event at once.
func (s *Store) Events(ctx context.Context, since time.Time) ([]store.Event, time.Time, error) {
	now := s.clock()
	evs, _, err := s.readEvents(ctx, `WHERE at > ? AND at <= ? ORDER BY at, seq`, since.UnixMilli(), now.UnixMilli())
	if err != nil {
		return nil, time.Time{}, err
	}
	return evs, now, nil
}

// EventsAfter implements store.EventCursor. The cursor is the seq column,
// an alias of the rowid: a write transaction holds the database's one
// write lock from its first insert to its commit, so numbers are handed
// out in commit order, and AUTOINCREMENT never hands out a number again,
// even once PurgeEvents has deleted the largest.
func (s *Store) EventsAfter(ctx context.Context, seq int64) ([]store.Event, int64, time.Time, error) {
	now := s.clock()
	if seq < 0 {
		err := s.reader.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM cluster_events`).Scan(&seq)
		if err != nil {
			return nil, 0, time.Time{}, fmt.Errorf("sqlite: cannot read cluster_events: %w", mapErr(err))
		}
		return nil, seq, now, nil
	}
	evs, last, err := s.readEvents(ctx, `WHERE seq > ? ORDER BY seq`, seq)
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	return evs, max(last, seq), now, nil
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

// readEvents returns the events that where selects, and the largest seq
// among them (0 when there is none).
func (s *Store) readEvents(ctx context.Context, where string, args ...any) ([]store.Event, int64, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT seq, id, node_id, channel, data, trace, at, nbf
		FROM cluster_events `+where, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: cannot read cluster_events: %w", mapErr(err))
	}
	defer rows.Close()
	var evs []store.Event
	var last int64
	// A poll in a storm reads hundreds of rows without a blocking call:
	// with one P, requests would wait for the whole read.
	var y yield.Budget
	for rows.Next() {
		y.Check()
		var e store.Event
		var seq, at, nbf int64
		if err := rows.Scan(&seq, &e.ID, &e.NodeID, &e.Channel, &e.Data, &e.TraceParent, &at, &nbf); err != nil {
			return nil, 0, fmt.Errorf("sqlite: cannot read cluster_events: %w", mapErr(err))
		}
		e.At, e.NotBefore = time.UnixMilli(at).UTC(), time.UnixMilli(nbf).UTC()
		e.Delay = e.NotBefore.Sub(e.At)
		evs, last = append(evs, e), max(last, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("sqlite: cannot read cluster_events: %w", mapErr(err))
	}
	return evs, last, nil
}

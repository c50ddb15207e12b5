package cassandra

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-gw/sluice/gateway/store"
)

// bucketWidth is the time span of one cluster_events partition. A poll
// reads the one or two buckets between since and now; a first poll (since
// zero) reads at most EventTTL/bucketWidth+1 of them.
const bucketWidth = time.Hour

// Events returns the events with since < At <= now, ordered by At then id,
// and now, Cassandra's clock when it read them.
func (s *Store) Events(ctx context.Context, since time.Time) ([]store.Event, time.Time, error) {
	now, err := s.now(ctx)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("cassandra: cannot poll events: %w", err)
	}
	if oldest := now.Add(-s.cfg.EventTTL); since.Before(oldest) {
		since = oldest.Add(-time.Millisecond) // older events have expired
	}
	var evs []store.Event
	for b := bucketOf(since); b <= bucketOf(now); b++ {
		iter := s.session.Query(`SELECT at, id, node_id, channel, data, trace_parent, delay_ms FROM `+s.ks+
			`.cluster_events WHERE bucket = ? AND at > ? AND at <= ?`, b, since, now).
			Consistency(s.cfg.read).PageSize(1000).IterContext(ctx)
		var e store.Event
		var delay int64
		for iter.Scan(&e.At, &e.ID, &e.NodeID, &e.Channel, &e.Data, &e.TraceParent, &delay) {
			e.Delay = time.Duration(delay) * time.Millisecond
			e.NotBefore = e.At.Add(e.Delay)
			evs = append(evs, e)
			e = store.Event{}
		}
		if err := iter.Close(); err != nil {
			return nil, time.Time{}, fmt.Errorf("cassandra: cannot poll events: %w", s.wrap(err))
		}
	}
	return evs, now, nil
}

// PurgeEvents deletes at most limit events whose At is before before.
// Events also expire on their own after EventTTL (row TTL).
func (s *Store) PurgeEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	n, err := s.purge(ctx, before, limit)
	if err != nil {
		return n, fmt.Errorf("cassandra: cannot purge events: %w", err)
	}
	return n, nil
}

func (s *Store) purge(ctx context.Context, before time.Time, limit int) (int, error) {
	now, err := s.now(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for b := bucketOf(now.Add(-s.cfg.EventTTL)); b <= bucketOf(before) && n < limit; b++ {
		iter := s.session.Query(`SELECT at, id FROM `+s.ks+`.cluster_events WHERE bucket = ? AND at < ? LIMIT ?`,
			b, before, limit-n).Consistency(s.cfg.read).IterContext(ctx)
		var at time.Time
		var id string
		for iter.Scan(&at, &id) {
			err := s.session.Query(`DELETE FROM `+s.ks+`.cluster_events WHERE bucket = ? AND at = ? AND id = ?`,
				b, at, id).Consistency(s.cfg.write).ExecContext(ctx)
			if err != nil {
				_ = iter.Close()
				return n, s.wrap(err)
			}
			n++
		}
		if err := iter.Close(); err != nil {
			return n, s.wrap(err)
		}
	}
	return n, nil
}

// bucketOf returns the cluster_events partition of time t.
func bucketOf(t time.Time) int64 { return t.UnixMilli() / bucketWidth.Milliseconds() }

package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-gw/sluice/gateway/store"
)

// purgeBatch is the most events one PurgeEvents statement deletes, so that
// each statement holds its row locks only briefly.
const purgeBatch = 1000

// sqlEvents reads the clock once (the MATERIALIZED CTE) and the events up
// to it; the LEFT JOIN returns the clock even when no event matches.
const sqlEvents = `WITH n AS MATERIALIZED (SELECT clock_timestamp() AS now)
	SELECT n.now, e.id, e.node_id, e.channel, e.data, e.trace, e.at, e.nbf
	FROM n LEFT JOIN cluster_events e ON e.at > $1 AND e.at <= n.now
	ORDER BY e.at, e.id`

const sqlPurge = `DELETE FROM cluster_events WHERE id IN (
	SELECT id FROM cluster_events WHERE at < $1 ORDER BY at LIMIT $2 FOR UPDATE SKIP LOCKED)`

// Events returns the events with since < At <= now, ordered by At, and now,
// the server's clock when it read them.
func (s *Store) Events(ctx context.Context, since time.Time) ([]store.Event, time.Time, error) {
	if err := s.acquire(ctx); err != nil {
		return nil, time.Time{}, s.wrap("read cluster events", err)
	}
	defer s.release()
	rows, err := s.pool.Query(ctx, sqlEvents, since)
	if err != nil {
		return nil, time.Time{}, s.wrap("read cluster events", err)
	}
	defer rows.Close()
	var (
		now    time.Time
		events []store.Event
	)
	for rows.Next() {
		var (
			id, node, channel, data, trace *string
			at, nbf                        *time.Time
		)
		if err := rows.Scan(&now, &id, &node, &channel, &data, &trace, &at, &nbf); err != nil {
			return nil, time.Time{}, s.wrap("read cluster events", err)
		}
		if id == nil {
			continue
		}
		events = append(events, newEvent(*id, *node, *channel, *data, *trace, *at, nbf))
	}
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, s.wrap("read cluster events", err)
	}
	return events, now.UTC(), nil
}

// PurgeEvents deletes at most limit events whose At is before before, in
// statements of at most 1000 rows that skip rows other transactions hold,
// so it never blocks writers.
func (s *Store) PurgeEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	total := 0
	for total < limit {
		n, err := s.purgeOnce(ctx, before, min(limit-total, purgeBatch))
		total += n
		if err != nil {
			return total, s.wrap("purge cluster events", err)
		}
		if n == 0 {
			break
		}
	}
	return total, nil
}

// Listen delivers the events other Stores on this database (and schema)
// commit to fn, in commit order, on one dedicated connection. It returns nil
// when ctx is done and an error wrapping store.ErrUnavailable when the
// connection breaks; the caller then reconnects and catches up by polling
// Events. fn runs on Listen's goroutine: a slow fn delays later events.
// Events too large for NOTIFY's 8000-byte payload are not pushed and reach
// other nodes by polling only.
func (s *Store) Listen(ctx context.Context, fn func(store.Event)) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return s.listenErr(ctx, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.cfg.channel()}.Sanitize()); err != nil {
		return s.listenErr(ctx, err)
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return s.listenErr(ctx, err)
		}
		e, err := decodeNotification(n.Payload)
		if err != nil {
			// A payload we did not write (someone else's NOTIFY on our
			// channel); polling still delivers every real event.
			continue
		}
		fn(e)
	}
}

// purgeOnce runs one batched delete.
func (s *Store) purgeOnce(ctx context.Context, before time.Time, n int) (int, error) {
	if err := s.acquire(ctx); err != nil {
		return 0, err
	}
	defer s.release()
	ct, err := s.pool.Exec(ctx, sqlPurge, before, n)
	return int(ct.RowsAffected()), err
}

// listenErr returns nil when ctx ended the wait, else the wrapped error,
// which always wraps store.ErrUnavailable: any failure of the listening
// connection means pushes stopped.
func (s *Store) listenErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	if errors.Is(err, store.ErrUnavailable) || unavailable(err) || s.configHint(err) != "" {
		return s.wrap("listen for cluster events", err)
	}
	return fmt.Errorf("postgres: cannot listen for cluster events: %w: %w", store.ErrUnavailable, err)
}

// notification is the JSON payload sqlInsertEvents sends.
type notification struct {
	ID      string     `json:"id"`
	NodeID  string     `json:"node_id"`
	Channel string     `json:"channel"`
	Data    string     `json:"data"`
	Trace   string     `json:"trace"`
	At      time.Time  `json:"at"`
	NBF     *time.Time `json:"nbf"`
}

// decodeNotification parses a payload written by sqlInsertEvents.
func decodeNotification(payload string) (store.Event, error) {
	var n notification
	if err := json.Unmarshal([]byte(payload), &n); err != nil {
		return store.Event{}, err
	}
	if n.ID == "" || n.At.IsZero() {
		return store.Event{}, fmt.Errorf("notification without id or at")
	}
	return newEvent(n.ID, n.NodeID, n.Channel, n.Data, n.Trace, n.At, n.NBF), nil
}

// newEvent builds an event from its stored columns; Delay is recovered from
// NotBefore - At.
func newEvent(id, node, channel, data, trace string, at time.Time, nbf *time.Time) store.Event {
	e := store.Event{ID: id, NodeID: node, Channel: channel, Data: data, TraceParent: trace, At: at.UTC()}
	if nbf != nil {
		e.NotBefore = nbf.UTC()
		e.Delay = e.NotBefore.Sub(e.At)
	}
	return e
}

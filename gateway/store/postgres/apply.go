package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// The statements of an Apply. Checks never rely on a failed statement
// (which would abort the transaction): conflicts are detected by
// ON CONFLICT DO NOTHING inserting no row, and a missing foreign record by
// the locking SELECT finding none.
const (
	sqlInsertEntity = `INSERT INTO entities (kind, id, data, uniq, fks) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT DO NOTHING`
	sqlUpdateEntity = `UPDATE entities SET data = $3, uniq = $4, fks = $5 WHERE kind = $1 AND id = $2`
	sqlDeleteEntity = `DELETE FROM entities WHERE kind = $1 AND id = $2`
	sqlDeleteIndex  = `WITH u AS (DELETE FROM uniques WHERE kind = $1 AND id = $2)
		DELETE FROM refs WHERE kind = $1 AND id = $2`
	sqlInsertUnique = `INSERT INTO uniques (kind, field, value, id) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`
	// sqlInsertRef locks the referenced row FOR KEY SHARE until commit, so a
	// concurrent Apply cannot delete it between this check and our commit:
	// that Apply's DELETE waits for us, then its ReferencedError check sees
	// our ref.
	sqlInsertRef = `WITH t AS (SELECT 1 FROM entities WHERE kind = $4 AND id = $5 FOR KEY SHARE)
		INSERT INTO refs (kind, id, field, target_kind, target_id) SELECT $1, $2, $3, $4, $5 FROM t`
	sqlReferrer = `SELECT kind FROM refs WHERE target_kind = $1 AND target_id = $2 LIMIT 1`
	// sqlInsertEvents runs last in the transaction so that at, the
	// server's clock, is as close to the commit as it can be: a poll that
	// reads a later now before this transaction commits misses these events,
	// and only the poller's grace window brings them back. NOTIFY is queued
	// in the transaction and sent on commit only. Payloads over NOTIFY's
	// 8000-byte limit are left to polling.
	sqlInsertEvents = `WITH ins AS (
		INSERT INTO cluster_events (id, node_id, channel, data, trace, at, nbf, expire_at)
		SELECT e.id, e.node_id, e.channel, e.data, e.trace, t.at,
			t.at + e.delay_us * interval '1 microsecond', t.at + interval '1 day'
		FROM (SELECT clock_timestamp() AS at) t,
			unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])
				AS e(id, node_id, channel, data, trace, delay_us)
		RETURNING id, node_id, channel, data, trace, at, nbf)
	SELECT count(pg_notify($7, p)) FROM (
		SELECT json_build_object('id', id, 'node_id', node_id, 'channel', channel, 'data', data,
			'trace', trace, 'at', at, 'nbf', nbf)::text AS p FROM ins) n
	WHERE octet_length(p) < 8000`
)

// Apply performs ops and records events in one transaction. See
// store.Store.Apply for the checks. The returned error wraps
// store.ErrNotFound, *store.UniqueError, *store.ForeignKeyError or
// *store.ReferencedError when a check fails; nothing is written then.
func (s *Store) Apply(ctx context.Context, ops []store.Op, events []store.Event) error {
	if len(ops) == 0 && len(events) == 0 {
		return nil
	}
	// BEGIN travels in the batch: an Apply costs two round trips, the batch
	// and the COMMIT (or ROLLBACK when a check fails).
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	var deleted []store.Record
	for i := range ops {
		if err := queueOp(b, &ops[i]); err != nil {
			return fmt.Errorf("postgres: cannot apply: %w", err)
		}
		if ops[i].Type == store.OpDelete {
			deleted = append(deleted, ops[i].Record)
		}
	}
	for _, d := range deleted {
		queueReferrerCheck(b, d)
	}
	if len(events) > 0 {
		if err := queueEvents(b, events, s.cfg.channel()); err != nil {
			return fmt.Errorf("postgres: cannot apply: %w", err)
		}
	}
	if err := s.acquire(ctx); err != nil {
		return s.wrap("apply", err)
	}
	defer s.release()
	br := s.pool.SendBatch(ctx, b)
	err := br.Close()
	tx := br.Tx()
	if err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx)) // err says why; a failed rollback closes the connection
		return s.wrap("apply", err)
	}
	return s.wrap("apply", tx.Commit(ctx))
}

// queueOp queues the statements and checks of op.
func queueOp(b *pgx.Batch, op *store.Op) error {
	r := &op.Record
	if r.Kind == "" || r.ID == "" {
		return fmt.Errorf("op on %q/%q: record kind and id must be set", r.Kind, r.ID)
	}
	switch op.Type {
	case store.OpInsert:
		b.Queue(sqlInsertEntity, r.Kind, r.ID, r.Data, r.Unique, r.Foreign).Exec(func(ct pgconn.CommandTag) error {
			if ct.RowsAffected() == 0 {
				return &store.UniqueError{Kind: r.Kind, Field: "id", Value: r.ID}
			}
			return nil
		})
	case store.OpUpdate:
		b.Queue(sqlUpdateEntity, r.Kind, r.ID, r.Data, r.Unique, r.Foreign).Exec(mustAffect(r, "update"))
		b.Queue(sqlDeleteIndex, r.Kind, r.ID)
	case store.OpDelete:
		b.Queue(sqlDeleteEntity, r.Kind, r.ID).Exec(mustAffect(r, "delete"))
		b.Queue(sqlDeleteIndex, r.Kind, r.ID)
		return nil
	default:
		return fmt.Errorf("op on %s/%s: unknown op type %d", r.Kind, r.ID, op.Type)
	}
	return queueIndex(b, r)
}

// queueIndex queues the inserts of r's unique values and foreign keys, in
// field order so that the error reported for a record is deterministic.
func queueIndex(b *pgx.Batch, r *store.Record) error {
	for _, f := range sortedKeys(r.Unique) {
		v := r.Unique[f]
		if v == "" {
			continue
		}
		b.Queue(sqlInsertUnique, r.Kind, f, v, r.ID).Exec(func(ct pgconn.CommandTag) error {
			if ct.RowsAffected() == 0 {
				return &store.UniqueError{Kind: r.Kind, Field: f, Value: v}
			}
			return nil
		})
	}
	for _, f := range sortedKeys(r.Foreign) {
		id := r.Foreign[f]
		if id == "" {
			continue
		}
		target, ok := entity.Schemas[r.Kind].Foreign[f]
		if !ok {
			return fmt.Errorf("%s/%s: %q is not a foreign field of %s", r.Kind, r.ID, f, r.Kind)
		}
		b.Queue(sqlInsertRef, r.Kind, r.ID, f, target, id).Exec(func(ct pgconn.CommandTag) error {
			if ct.RowsAffected() == 0 {
				return &store.ForeignKeyError{Kind: r.Kind, Field: f, Target: target, ID: id}
			}
			return nil
		})
	}
	return nil
}

// queueReferrerCheck queues the check, made after every op, that no record
// still references the deleted d.
func queueReferrerCheck(b *pgx.Batch, d store.Record) {
	b.Queue(sqlReferrer, d.Kind, d.ID).Query(func(rows pgx.Rows) error {
		if !rows.Next() {
			return rows.Err()
		}
		var referrer entity.Kind
		if err := rows.Scan(&referrer); err != nil {
			return err
		}
		return &store.ReferencedError{Kind: d.Kind, ID: d.ID, Referrer: referrer}
	})
}

// queueEvents queues the insert and notification of events on channel.
func queueEvents(b *pgx.Batch, events []store.Event, channel string) error {
	n := len(events)
	ids, nodes, chans, data, traces := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	delays := make([]int64, n)
	for i, e := range events {
		if e.ID == "" {
			return fmt.Errorf("event %d: id must be set", i)
		}
		if e.Delay < 0 {
			return fmt.Errorf("event %s: negative delay %s", e.ID, e.Delay)
		}
		ids[i], nodes[i], chans[i], data[i], traces[i] = e.ID, e.NodeID, e.Channel, e.Data, e.TraceParent
		delays[i] = e.Delay.Microseconds()
	}
	b.Queue(sqlInsertEvents, ids, nodes, chans, data, traces, delays, channel)
	return nil
}

// mustAffect returns a check that the statement changed a row, else
// store.ErrNotFound.
func mustAffect(r *store.Record, verb string) func(pgconn.CommandTag) error {
	return func(ct pgconn.CommandTag) error {
		if ct.RowsAffected() == 0 {
			return fmt.Errorf("%s %s/%s: %w", verb, r.Kind, r.ID, store.ErrNotFound)
		}
		return nil
	}
}

// sortedKeys returns m's keys in increasing order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// The statements of Apply, prepared once on the writer by prepareWrites.
const (
	qInsertEntity  = `INSERT INTO entities (kind, id, data) VALUES (?, ?, ?)`
	qUpdateEntity  = `UPDATE entities SET data = ? WHERE kind = ? AND id = ?`
	qDeleteEntity  = `DELETE FROM entities WHERE kind = ? AND id = ?`
	qExists        = `SELECT 1 FROM entities WHERE kind = ? AND id = ?`
	qUniqueOwner   = `SELECT id FROM uniques WHERE kind = ? AND field = ? AND value = ?`
	qInsertUnique  = `INSERT INTO uniques (kind, field, value, id) VALUES (?, ?, ?, ?)`
	qDeleteUniques = `DELETE FROM uniques WHERE kind = ? AND id = ?`
	qInsertRef     = `INSERT INTO refs (kind, field, target_kind, target_id, id) VALUES (?, ?, ?, ?, ?)`
	qDeleteRefs    = `DELETE FROM refs WHERE kind = ? AND id = ?`
	qReferrer      = `SELECT kind FROM refs WHERE target_kind = ? AND target_id = ? LIMIT 1`
	qInsertEvent   = `INSERT INTO cluster_events (id, node_id, channel, data, trace, at, nbf) VALUES (?, ?, ?, ?, ?, ?, ?)`
)

var writeQueries = []string{qInsertEntity, qUpdateEntity, qDeleteEntity, qExists, qUniqueOwner,
	qInsertUnique, qDeleteUniques, qInsertRef, qDeleteRefs, qReferrer, qInsertEvent}

// Apply implements store.Store. It runs ops and inserts events in one
// IMMEDIATE transaction; the first failing op rolls everything back.
func (s *Store) Apply(ctx context.Context, ops []store.Op, events []store.Event) error {
	// Prepare before BeginTx: the writer's one connection is busy inside it.
	stmts, err := s.prepareWrites(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: cannot prepare apply (run migrations first): %w", err)
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: cannot begin apply: %w", mapErr(err))
	}
	defer tx.Rollback()
	w := writeTx{tx, stmts}
	var deleted []store.Record
	for _, op := range ops {
		if err := applyOp(ctx, w, op); err != nil {
			return fmt.Errorf("sqlite: cannot %s %s %s: %w", opName(op.Type), op.Record.Kind, op.Record.ID, err)
		}
		if op.Type == store.OpDelete {
			deleted = append(deleted, op.Record)
		}
	}
	for _, r := range deleted {
		if err := checkUnreferenced(ctx, w, r); err != nil {
			return fmt.Errorf("sqlite: cannot delete %s %s: %w", r.Kind, r.ID, err)
		}
	}
	at := s.clock()
	for _, e := range events {
		if _, err := w.exec(ctx, qInsertEvent, e.ID, e.NodeID, e.Channel, e.Data, e.TraceParent,
			at.UnixMilli(), at.Add(e.Delay).UnixMilli()); err != nil {
			return fmt.Errorf("sqlite: cannot insert cluster event %s: %w", e.ID, mapErr(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: cannot commit apply: %w", mapErr(err))
	}
	return nil
}

// writeTx runs statements prepared once on the writer in one transaction.
type writeTx struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (w writeTx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return w.tx.StmtContext(ctx, w.stmts[query]).ExecContext(ctx, args...)
}

func (w writeTx) scan(ctx context.Context, query string, args []any, dest ...any) error {
	return w.tx.StmtContext(ctx, w.stmts[query]).QueryRowContext(ctx, args...).Scan(dest...)
}

// prepareWrites returns the writeQueries statements, preparing them on the
// first successful call.
func (s *Store) prepareWrites(ctx context.Context) (map[string]*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writes != nil {
		return s.writes, nil
	}
	stmts := make(map[string]*sql.Stmt, len(writeQueries))
	for _, q := range writeQueries {
		st, err := s.writer.PrepareContext(ctx, q)
		if err != nil {
			for _, st := range stmts {
				_ = st.Close()
			}
			return nil, mapErr(err)
		}
		stmts[q] = st
	}
	s.writes = stmts
	return stmts, nil
}

func applyOp(ctx context.Context, tx writeTx, op store.Op) error {
	r := op.Record
	if r.ID == "" {
		return errors.New("record has an empty id")
	}
	switch op.Type {
	case store.OpInsert:
		found, err := exists(ctx, tx, r.Kind, r.ID)
		if err != nil {
			return err
		}
		if found {
			return &store.UniqueError{Kind: r.Kind, Field: "id", Value: r.ID}
		}
		if err := checkIndex(ctx, tx, r); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, qInsertEntity,
			string(r.Kind), r.ID, r.Data); err != nil {
			return mapErr(err)
		}
		return writeIndex(ctx, tx, r)
	case store.OpUpdate:
		res, err := tx.exec(ctx, qUpdateEntity,
			r.Data, string(r.Kind), r.ID)
		if err != nil {
			return mapErr(err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(store.ErrNotFound, err)
		}
		if err := checkIndex(ctx, tx, r); err != nil {
			return err
		}
		for _, q := range []string{qDeleteUniques, qDeleteRefs} {
			if _, err := tx.exec(ctx, q, string(r.Kind), r.ID); err != nil {
				return mapErr(err)
			}
		}
		return writeIndex(ctx, tx, r)
	case store.OpDelete:
		// uniques and refs rows go with ON DELETE CASCADE.
		res, err := tx.exec(ctx, qDeleteEntity, string(r.Kind), r.ID)
		if err != nil {
			return mapErr(err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(store.ErrNotFound, err)
		}
		return nil
	default:
		return fmt.Errorf("unknown op type %d", op.Type)
	}
}

// checkIndex checks r's non-empty unique values are free (or r's own) and
// its non-empty foreign ids exist.
func checkIndex(ctx context.Context, tx writeTx, r store.Record) error {
	for _, field := range sortedKeys(r.Unique) {
		value := r.Unique[field]
		if value == "" {
			continue
		}
		var owner string
		err := tx.scan(ctx, qUniqueOwner,
			[]any{string(r.Kind), field, value}, &owner)
		if err == nil && owner != r.ID {
			return &store.UniqueError{Kind: r.Kind, Field: field, Value: value}
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return mapErr(err)
		}
	}
	for _, field := range sortedKeys(r.Foreign) {
		id := r.Foreign[field]
		if id == "" {
			continue
		}
		target, err := foreignKind(r.Kind, field)
		if err != nil {
			return err
		}
		found, err := exists(ctx, tx, target, id)
		if err != nil {
			return err
		}
		if !found {
			return &store.ForeignKeyError{Kind: r.Kind, Field: field, Target: target, ID: id}
		}
	}
	return nil
}

func writeIndex(ctx context.Context, tx writeTx, r store.Record) error {
	for field, value := range r.Unique {
		if value == "" {
			continue
		}
		if _, err := tx.exec(ctx, qInsertUnique,
			string(r.Kind), field, value, r.ID); err != nil {
			return mapErr(err)
		}
	}
	for field, id := range r.Foreign {
		if id == "" {
			continue
		}
		target, err := foreignKind(r.Kind, field)
		if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, qInsertRef,
			string(r.Kind), field, string(target), id, r.ID); err != nil {
			return mapErr(err)
		}
	}
	return nil
}

// checkUnreferenced fails when a record deleted by this Apply, and not
// inserted again, is still referenced.
func checkUnreferenced(ctx context.Context, tx writeTx, r store.Record) error {
	if found, err := exists(ctx, tx, r.Kind, r.ID); err != nil || found {
		return err
	}
	var referrer string
	err := tx.scan(ctx, qReferrer,
		[]any{string(r.Kind), r.ID}, &referrer)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return mapErr(err)
	}
	return &store.ReferencedError{Kind: r.Kind, ID: r.ID, Referrer: entity.Kind(referrer)}
}

func exists(ctx context.Context, tx writeTx, kind entity.Kind, id string) (bool, error) {
	var one int
	err := tx.scan(ctx, qExists, []any{string(kind), id}, &one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, mapErr(err)
}

func foreignKind(kind entity.Kind, field string) (entity.Kind, error) {
	target, ok := entity.Schemas[kind].Foreign[field]
	if !ok {
		return "", fmt.Errorf("%s has no foreign field %q", kind, field)
	}
	return target, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func opName(t store.OpType) string {
	switch t {
	case store.OpInsert:
		return "insert"
	case store.OpUpdate:
		return "update"
	case store.OpDelete:
		return "delete"
	}
	return "apply"
}

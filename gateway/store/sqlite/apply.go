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

// Apply implements store.Store. It runs ops and inserts events in one
// IMMEDIATE transaction; the first failing op rolls everything back.
func (s *Store) Apply(ctx context.Context, ops []store.Op, events []store.Event) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: cannot begin apply: %w", mapErr(err))
	}
	defer tx.Rollback()
	var deleted []store.Record
	for _, op := range ops {
		if err := applyOp(ctx, tx, op); err != nil {
			return fmt.Errorf("sqlite: cannot %s %s %s: %w", opName(op.Type), op.Record.Kind, op.Record.ID, err)
		}
		if op.Type == store.OpDelete {
			deleted = append(deleted, op.Record)
		}
	}
	for _, r := range deleted {
		if err := checkUnreferenced(ctx, tx, r); err != nil {
			return fmt.Errorf("sqlite: cannot delete %s %s: %w", r.Kind, r.ID, err)
		}
	}
	at := s.clock()
	for _, e := range events {
		if _, err := tx.ExecContext(ctx, `INSERT INTO cluster_events (id, node_id, channel, data, trace, at, nbf)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, e.ID, e.NodeID, e.Channel, e.Data, e.TraceParent,
			at.UnixMilli(), at.Add(e.Delay).UnixMilli()); err != nil {
			return fmt.Errorf("sqlite: cannot insert cluster event %s: %w", e.ID, mapErr(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: cannot commit apply: %w", mapErr(err))
	}
	return nil
}

func applyOp(ctx context.Context, tx *sql.Tx, op store.Op) error {
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
		if _, err := tx.ExecContext(ctx, `INSERT INTO entities (kind, id, data) VALUES (?, ?, ?)`,
			string(r.Kind), r.ID, r.Data); err != nil {
			return mapErr(err)
		}
		return writeIndex(ctx, tx, r)
	case store.OpUpdate:
		res, err := tx.ExecContext(ctx, `UPDATE entities SET data = ? WHERE kind = ? AND id = ?`,
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
		for _, q := range []string{`DELETE FROM uniques WHERE kind = ? AND id = ?`, `DELETE FROM refs WHERE kind = ? AND id = ?`} {
			if _, err := tx.ExecContext(ctx, q, string(r.Kind), r.ID); err != nil {
				return mapErr(err)
			}
		}
		return writeIndex(ctx, tx, r)
	case store.OpDelete:
		// uniques and refs rows go with ON DELETE CASCADE.
		res, err := tx.ExecContext(ctx, `DELETE FROM entities WHERE kind = ? AND id = ?`, string(r.Kind), r.ID)
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
func checkIndex(ctx context.Context, tx *sql.Tx, r store.Record) error {
	for _, field := range sortedKeys(r.Unique) {
		value := r.Unique[field]
		if value == "" {
			continue
		}
		var owner string
		err := tx.QueryRowContext(ctx, `SELECT id FROM uniques WHERE kind = ? AND field = ? AND value = ?`,
			string(r.Kind), field, value).Scan(&owner)
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

func writeIndex(ctx context.Context, tx *sql.Tx, r store.Record) error {
	for field, value := range r.Unique {
		if value == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO uniques (kind, field, value, id) VALUES (?, ?, ?, ?)`,
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
		if _, err := tx.ExecContext(ctx, `INSERT INTO refs (kind, field, target_kind, target_id, id) VALUES (?, ?, ?, ?, ?)`,
			string(r.Kind), field, string(target), id, r.ID); err != nil {
			return mapErr(err)
		}
	}
	return nil
}

// checkUnreferenced fails when a record deleted by this Apply, and not
// inserted again, is still referenced.
func checkUnreferenced(ctx context.Context, tx *sql.Tx, r store.Record) error {
	if found, err := exists(ctx, tx, r.Kind, r.ID); err != nil || found {
		return err
	}
	var referrer string
	err := tx.QueryRowContext(ctx, `SELECT kind FROM refs WHERE target_kind = ? AND target_id = ? LIMIT 1`,
		string(r.Kind), r.ID).Scan(&referrer)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return mapErr(err)
	}
	return &store.ReferencedError{Kind: r.Kind, ID: r.ID, Referrer: entity.Kind(referrer)}
}

func exists(ctx context.Context, tx *sql.Tx, kind entity.Kind, id string) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM entities WHERE kind = ? AND id = ?`, string(kind), id).Scan(&one)
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

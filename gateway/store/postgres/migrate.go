package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-gw/sluice/gateway/store"
)

// migration is one named schema change, applied at most once.
type migration struct {
	name string
	up   string
}

// migrations returns the schema changes in order. Append new ones; never
// edit one that has shipped.
func migrations() []migration {
	return []migration{{name: "000_base", up: `
CREATE TABLE entities (
	kind text NOT NULL,
	id   text NOT NULL,
	data bytea NOT NULL,
	uniq jsonb,
	fks  jsonb,
	PRIMARY KEY (kind, id)
);
CREATE TABLE uniques (
	kind  text NOT NULL,
	field text NOT NULL,
	value text NOT NULL,
	id    text NOT NULL,
	PRIMARY KEY (kind, field, value)
);
CREATE INDEX uniques_owner_idx ON uniques (kind, id);
CREATE TABLE refs (
	kind        text NOT NULL,
	id          text NOT NULL,
	field       text NOT NULL,
	target_kind text NOT NULL,
	target_id   text NOT NULL,
	PRIMARY KEY (kind, id, field)
);
CREATE INDEX refs_target_idx ON refs (target_kind, target_id);
CREATE INDEX refs_list_idx ON refs (kind, field, target_id, id);
CREATE TABLE cluster_events (
	id        text PRIMARY KEY,
	node_id   text NOT NULL,
	channel   text NOT NULL,
	data      text NOT NULL,
	trace     text NOT NULL DEFAULT '',
	at        timestamptz NOT NULL,
	nbf       timestamptz,
	expire_at timestamptz NOT NULL
);
CREATE INDEX cluster_events_at_idx ON cluster_events (at);
CREATE INDEX cluster_events_expire_at_idx ON cluster_events (expire_at);
`}, {name: "001_ratelimiting_metrics", up: `
CREATE TABLE ratelimiting_metrics (
	key       text PRIMARY KEY,
	value     bigint NOT NULL,
	expire_at timestamptz NOT NULL
);
CREATE INDEX ratelimiting_metrics_expire_at_idx ON ratelimiting_metrics (expire_at);
`}}
}

// migrationsTable records the executed migrations.
const migrationsTable = `CREATE TABLE IF NOT EXISTS sluice_migrations (
	name        text PRIMARY KEY,
	executed_at timestamptz NOT NULL DEFAULT clock_timestamp()
)`

// Up creates pg_schema when set and applies the pending migrations, in one
// transaction holding an advisory lock keyed by pg_schema: nodes starting
// together wait for the first one and then find nothing left to do.
func (s *Store) Up(ctx context.Context) error {
	err := s.locked(ctx, func(tx pgx.Tx) error {
		if s.cfg.Schema != "" {
			if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{s.cfg.Schema}.Sanitize()); err != nil {
				return fmt.Errorf("create pg_schema=%q: %w", s.cfg.Schema, err)
			}
		}
		if _, err := tx.Exec(ctx, migrationsTable); err != nil {
			return err
		}
		done, err := executed(ctx, tx)
		if err != nil {
			return err
		}
		for _, m := range migrations() {
			if done[m.name] {
				continue
			}
			if _, err := tx.Exec(ctx, m.up); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO sluice_migrations (name) VALUES ($1)`, m.name); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
		}
		return nil
	})
	return s.wrap("migrate", err)
}

// Status lists the executed and pending migrations.
func (s *Store) Status(ctx context.Context) (store.MigrationStatus, error) {
	var st store.MigrationStatus
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass('sluice_migrations') IS NOT NULL`).Scan(&exists); err != nil {
			return err
		}
		done := map[string]bool{}
		if exists {
			var err error
			if done, err = executed(ctx, tx); err != nil {
				return err
			}
		}
		for _, m := range migrations() {
			if done[m.name] {
				st.Executed = append(st.Executed, m.name)
			} else {
				st.Pending = append(st.Pending, m.name)
			}
		}
		return nil
	})
	if err != nil {
		return store.MigrationStatus{}, s.wrap("read migration status", err)
	}
	return st, nil
}

// Reset drops the tables the migrations created. It leaves pg_schema itself
// in place, since it may hold other tables.
func (s *Store) Reset(ctx context.Context) error {
	err := s.locked(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DROP TABLE IF EXISTS ratelimiting_metrics, cluster_events, refs, uniques, entities, sluice_migrations CASCADE`)
		return err
	})
	return s.wrap("reset", err)
}

// locked runs fn in a transaction holding the migration lock, without a
// statement timeout since waiting for another node's migrations is expected.
func (s *Store) locked(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, s.cfg.lockKey()); err != nil {
			return err
		}
		return fn(tx)
	})
}

// executed returns the names in sluice_migrations.
func executed(ctx context.Context, tx pgx.Tx) (map[string]bool, error) {
	rows, err := tx.Query(ctx, `SELECT name FROM sluice_migrations`)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	done := make(map[string]bool, len(names))
	for _, n := range names {
		done[n] = true
	}
	return done, nil
}

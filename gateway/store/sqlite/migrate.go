package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/sluice-gw/sluice/gateway/store"
)

// migration is one schema step, applied once and recorded by name.
type migration struct {
	name string
	up   string
}

// migrations lists the schema steps in order. Never edit an applied step:
// append a new one.
var migrations = []migration{{name: "000_base", up: `
CREATE TABLE entities (
	kind TEXT NOT NULL,
	id   TEXT NOT NULL,
	data BLOB NOT NULL,
	PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE TABLE uniques (
	kind  TEXT NOT NULL,
	field TEXT NOT NULL,
	value TEXT NOT NULL,
	id    TEXT NOT NULL,
	PRIMARY KEY (kind, field, value),
	FOREIGN KEY (kind, id) REFERENCES entities (kind, id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX uniques_owner_idx ON uniques (kind, id);
CREATE TABLE refs (
	kind        TEXT NOT NULL,
	field       TEXT NOT NULL,
	target_kind TEXT NOT NULL,
	target_id   TEXT NOT NULL,
	id          TEXT NOT NULL,
	PRIMARY KEY (kind, field, target_id, id),
	FOREIGN KEY (kind, id) REFERENCES entities (kind, id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX refs_owner_idx ON refs (kind, id);
CREATE INDEX refs_target_idx ON refs (target_kind, target_id);
CREATE TABLE cluster_events (
	id      TEXT PRIMARY KEY,
	node_id TEXT NOT NULL,
	channel TEXT NOT NULL,
	data    TEXT NOT NULL,
	trace   TEXT NOT NULL,
	at      INTEGER NOT NULL,
	nbf     INTEGER NOT NULL
);
CREATE INDEX cluster_events_at_idx ON cluster_events (at);
`}, {name: "001_ratelimiting_metrics", up: `
CREATE TABLE ratelimiting_metrics (
	key       TEXT PRIMARY KEY,
	value     INTEGER NOT NULL,
	expire_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX ratelimiting_metrics_expire_at_idx ON ratelimiting_metrics (expire_at);
`}, {name: "002_cluster_events_seq", up: `
CREATE TABLE cluster_events_seq (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	id      TEXT NOT NULL UNIQUE,
	node_id TEXT NOT NULL,
	channel TEXT NOT NULL,
	data    TEXT NOT NULL,
	trace   TEXT NOT NULL,
	at      INTEGER NOT NULL,
	nbf     INTEGER NOT NULL
);
INSERT INTO cluster_events_seq (id, node_id, channel, data, trace, at, nbf)
	SELECT id, node_id, channel, data, trace, at, nbf FROM cluster_events ORDER BY rowid;
DROP TABLE cluster_events;
ALTER TABLE cluster_events_seq RENAME TO cluster_events;
CREATE INDEX cluster_events_at_idx ON cluster_events (at);
`}}

// dropAll undoes every migration, for Reset.
const dropAll = `
DROP TABLE IF EXISTS ratelimiting_metrics;
DROP TABLE IF EXISTS cluster_events;
DROP TABLE IF EXISTS refs;
DROP TABLE IF EXISTS uniques;
DROP TABLE IF EXISTS entities;
DROP TABLE IF EXISTS schema_migrations;
`

const createMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
	name        TEXT PRIMARY KEY,
	executed_at INTEGER NOT NULL
)`

// Up implements store.Migrator. It runs in one IMMEDIATE transaction, which
// takes the file's write lock first, so nodes starting at once queue and
// each migration runs exactly once.
func (s *Store) Up(ctx context.Context) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: cannot migrate: %w", mapErr(err))
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, createMigrations); err != nil {
		return fmt.Errorf("sqlite: cannot migrate: %w", mapErr(err))
	}
	done, err := executed(ctx, tx)
	if err != nil {
		return err
	}
	for _, m := range migrations {
		if done[m.name] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.up); err != nil {
			return fmt.Errorf("sqlite: cannot run migration %s: %w", m.name, mapErr(err))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, executed_at) VALUES (?, ?)`,
			m.name, s.clock().UnixMilli()); err != nil {
			return fmt.Errorf("sqlite: cannot record migration %s: %w", m.name, mapErr(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: cannot migrate: %w", mapErr(err))
	}
	return nil
}

// Status implements store.Migrator.
func (s *Store) Status(ctx context.Context) (store.MigrationStatus, error) {
	var st store.MigrationStatus
	var n int
	err := s.reader.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n)
	if err != nil {
		return st, fmt.Errorf("sqlite: cannot read migration status: %w", mapErr(err))
	}
	done := map[string]bool{}
	if n > 0 {
		if done, err = executed(ctx, s.reader); err != nil {
			return st, err
		}
	}
	for _, m := range migrations {
		if done[m.name] {
			st.Executed = append(st.Executed, m.name)
		} else {
			st.Pending = append(st.Pending, m.name)
		}
	}
	return st, nil
}

// Reset implements store.Migrator: it drops every table the migrations
// created, in one transaction.
func (s *Store) Reset(ctx context.Context) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: cannot reset: %w", mapErr(err))
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, dropAll); err != nil {
		return fmt.Errorf("sqlite: cannot reset: %w", mapErr(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: cannot reset: %w", mapErr(err))
	}
	return nil
}

// querier is satisfied by *sql.DB and *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func executed(ctx context.Context, q querier) (map[string]bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT name FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: cannot read schema_migrations: %w", mapErr(err))
	}
	defer rows.Close()
	done := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("sqlite: cannot read schema_migrations: %w", mapErr(err))
		}
		done[name] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: cannot read schema_migrations: %w", mapErr(err))
	}
	return done, nil
}

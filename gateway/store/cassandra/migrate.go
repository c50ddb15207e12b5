package cassandra

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/sluice-gw/sluice/gateway/store"
)

// migration is one named schema change; each statement is run in order and
// must be idempotent (IF NOT EXISTS), so a half-applied migration can rerun.
type migration struct {
	name  string
	stmts []string
}

// migrations lists the schema in order. %[1]s is the quoted keyspace and
// %[2]d the event TTL in seconds.
var migrations = []migration{{
	name: "000_base",
	stmts: []string{
		// Entities of a kind share a partition so List pages through them in id order.
		`CREATE TABLE IF NOT EXISTS %[1]s.entities (kind text, id text, data blob,
			uniques map<text, text>, foreigns map<text, text>, PRIMARY KEY ((kind), id))`,
		// Claims on primary keys (field "id") and unique values, written only by LWTs.
		`CREATE TABLE IF NOT EXISTS %[1]s.uniques (kind text, field text, value text, id text,
			PRIMARY KEY ((kind, field, value)))`,
		// Reverse index of foreign keys: who references ref_id through kind.field.
		`CREATE TABLE IF NOT EXISTS %[1]s.foreign_refs (kind text, field text, ref_id text, id text,
			PRIMARY KEY ((kind, field, ref_id), id))`,
		// Cluster events, one partition per hour bucket, expired by TTL.
		`CREATE TABLE IF NOT EXISTS %[1]s.cluster_events (bucket bigint, at timestamp, id text,
			node_id text, channel text, data text, trace_parent text, delay_ms bigint,
			PRIMARY KEY ((bucket), at, id)) WITH CLUSTERING ORDER BY (at ASC, id ASC)
			AND default_time_to_live = %[2]d AND gc_grace_seconds = 3600`,
	},
}, {
	name: "001_ratelimiting_metrics",
	stmts: []string{
		// Rate-limiting counters (policy cluster). A counter table allows no
		// TTL: the expiry is a clustering column that reads filter on, and
		// expired rows stay, read as 0 (keys name a window, so they are
		// never incremented again), as in Kong's Cassandra table.
		`CREATE TABLE IF NOT EXISTS %[1]s.ratelimiting_metrics (key text, expire_at timestamp, value counter,
			PRIMARY KEY ((key), expire_at))`,
	},
}}

const migrationLockTTL = 60 // seconds

// Up creates the keyspace and applies the pending migrations, each once,
// under a lock taken with a lightweight transaction, waiting for schema
// agreement after every change.
func (s *Store) Up(ctx context.Context) error {
	if err := s.up(ctx); err != nil {
		return fmt.Errorf("cassandra: cannot migrate keyspace %s (cassandra_keyspace): %w", s.cfg.Keyspace, err)
	}
	return nil
}

// Status lists executed and pending migrations.
func (s *Store) Status(ctx context.Context) (store.MigrationStatus, error) {
	done, err := s.executed(ctx)
	if err != nil {
		return store.MigrationStatus{}, fmt.Errorf("cassandra: cannot read migrations: %w", err)
	}
	var st store.MigrationStatus
	for _, m := range migrations {
		if done[m.name] {
			st.Executed = append(st.Executed, m.name)
		} else {
			st.Pending = append(st.Pending, m.name)
		}
	}
	return st, nil
}

// Reset drops the keyspace.
func (s *Store) Reset(ctx context.Context) error {
	if err := s.ddl(ctx, `DROP KEYSPACE IF EXISTS `+s.ks); err != nil {
		return fmt.Errorf("cassandra: cannot drop keyspace %s: %w", s.cfg.Keyspace, err)
	}
	return nil
}

func (s *Store) up(ctx context.Context) error {
	boot := []string{
		fmt.Sprintf(`CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s`, s.ks, s.cfg.replication),
		`CREATE TABLE IF NOT EXISTS ` + s.ks + `.schema_migrations (name text PRIMARY KEY, executed_at timestamp)`,
		`CREATE TABLE IF NOT EXISTS ` + s.ks + `.locks (name text PRIMARY KEY, owner text)`,
	}
	for _, stmt := range boot {
		if err := s.ddl(ctx, stmt); err != nil {
			return err
		}
	}
	unlock, err := s.lock(ctx, "migrations")
	if err != nil {
		return err
	}
	defer unlock()
	done, err := s.executed(ctx)
	if err != nil {
		return err
	}
	for _, m := range migrations {
		if done[m.name] {
			continue
		}
		for _, stmt := range m.stmts {
			if err := s.ddl(ctx, fmt.Sprintf(stmt, s.ks, int(s.cfg.EventTTL/time.Second))); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
		}
		err := s.session.Query(`INSERT INTO `+s.ks+`.schema_migrations (name, executed_at) VALUES (?, toTimestamp(now()))`,
			m.name).Consistency(s.cfg.write).ExecContext(ctx)
		if err != nil {
			return fmt.Errorf("migration %s: cannot record it: %w", m.name, s.wrap(err))
		}
	}
	return nil
}

// lock takes the named lock, waiting while another owner holds it. The lock
// expires after migrationLockTTL seconds should its owner die.
func (s *Store) lock(ctx context.Context, name string) (unlock func(), err error) {
	owner := uuid.NewString()
	for {
		applied, err := s.session.Query(`INSERT INTO `+s.ks+`.locks (name, owner) VALUES (?, ?) IF NOT EXISTS USING TTL ?`,
			name, owner, migrationLockTTL).Consistency(s.cfg.write).SerialConsistency(gocql.Serial).
			MapScanCASContext(ctx, map[string]any{})
		if err != nil {
			return nil, fmt.Errorf("cannot take the %s lock: %w", name, s.wrap(err))
		}
		if applied {
			return func() {
				c, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
				defer cancel()
				_, _ = s.session.Query(`DELETE FROM `+s.ks+`.locks WHERE name = ? IF owner = ?`, name, owner).
					SerialConsistency(gocql.Serial).MapScanCASContext(c, map[string]any{})
			}, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the %s lock: %w", name, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// executed returns the names of the executed migrations; none when the
// keyspace or its migrations table does not exist. It reads system tables
// at ONE.
func (s *Store) executed(ctx context.Context) (map[string]bool, error) {
	var n int
	err := s.session.Query(`SELECT count(*) FROM system_schema.tables WHERE keyspace_name = ? AND table_name = 'schema_migrations'`,
		s.cfg.Keyspace).Consistency(gocql.One).ScanContext(ctx, &n)
	if err != nil || n == 0 {
		return map[string]bool{}, s.wrap(err)
	}
	iter := s.session.Query(`SELECT name FROM ` + s.ks + `.schema_migrations`).Consistency(s.cfg.read).IterContext(ctx)
	done := map[string]bool{}
	var name string
	for iter.Scan(&name) {
		done[name] = true
	}
	return done, s.wrap(iter.Close())
}

// ddl runs a schema change and waits until every node agrees on the schema.
// An "already exists" answer from a concurrent migrator counts as success.
func (s *Store) ddl(ctx context.Context, stmt string) error {
	err := s.session.Query(stmt).Consistency(s.cfg.write).ExecContext(ctx)
	var exists *gocql.RequestErrAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("%s: %w", strings.Fields(stmt)[0]+" "+strings.Fields(stmt)[1], s.wrap(err))
	}
	if err := s.session.AwaitSchemaAgreement(ctx); err != nil {
		return fmt.Errorf("waiting for schema agreement: %w", s.wrap(err))
	}
	return nil
}

// Package postgres is the PostgreSQL datastore: it implements store.Store,
// store.Migrator, store.Pinger and store.Notifier on pgx's connection pool.
//
// Entities are stored generically: an entities table holds each record's
// JSON document, a uniques table indexes its unique values and a refs table
// its foreign keys. Cluster events go to cluster_events, written in the same
// transaction as the entity writes, and are pushed to listening nodes with
// NOTIFY when that transaction commits.
package postgres

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/google/uuid"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// MaxPageSize is the largest ListQuery.Size List accepts.
const MaxPageSize = 1000

// Store is the PostgreSQL datastore. It is safe for concurrent use, and
// several Stores (in one process or many) may share one database.
type Store struct {
	cfg  Config
	pool *pgxpool.Pool
	// sem, when non-nil, holds one token per running query
	// (pg_max_concurrent_queries).
	sem chan struct{}
}

// Open validates cfg, connects to the server and checks the connection. It
// does not create tables: call Up for that.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("postgres: cannot open: %w", err)
	}
	pc, err := cfg.poolConfig()
	if err != nil {
		return nil, fmt.Errorf("postgres: cannot open: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: cannot open: %w", err)
	}
	s := &Store{cfg: cfg, pool: pool}
	if cfg.MaxConcurrentQueries > 0 {
		s.sem = make(chan struct{}, cfg.MaxConcurrentQueries)
	}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.acquire(ctx); err != nil {
		return s.wrap("ping", err)
	}
	defer s.release()
	return s.wrap("ping", s.pool.Ping(ctx))
}

// Get returns the record of kind with primary key id, or an error wrapping
// store.ErrNotFound.
func (s *Store) Get(ctx context.Context, kind entity.Kind, id string) (store.Record, error) {
	r, err := s.getRecord(ctx, kind, `SELECT id, data, uniq, fks FROM entities WHERE kind = $1 AND id = $2`, id)
	if err != nil {
		return store.Record{}, s.wrap("get "+string(kind), err)
	}
	return r, nil
}

// GetByUnique returns the record of kind whose unique field has value, or an
// error wrapping store.ErrNotFound.
func (s *Store) GetByUnique(ctx context.Context, kind entity.Kind, field, value string) (store.Record, error) {
	r, err := s.getRecord(ctx, kind, `SELECT e.id, e.data, e.uniq, e.fks FROM uniques u
		JOIN entities e ON e.kind = u.kind AND e.id = u.id
		WHERE u.kind = $1 AND u.field = $2 AND u.value = $3`, field, value)
	if err != nil {
		return store.Record{}, s.wrap(fmt.Sprintf("get %s by %s", kind, field), err)
	}
	return r, nil
}

// List returns one page of records ordered by id. An Offset that List did
// not issue yields an error wrapping store.ErrInvalidOffset.
func (s *Store) List(ctx context.Context, q store.ListQuery) (store.Page, error) {
	what := "list " + string(q.Kind)
	if q.Size < 1 || q.Size > MaxPageSize {
		return store.Page{}, fmt.Errorf("postgres: cannot %s: page size %d is not between 1 and %d", what, q.Size, MaxPageSize)
	}
	after, err := decodeOffset(q.Offset)
	if err != nil {
		return store.Page{}, fmt.Errorf("postgres: cannot %s: %w", what, err)
	}
	sql := `SELECT id, data, uniq, fks FROM entities WHERE kind = $1 AND id > $2 ORDER BY id LIMIT $3`
	args := []any{q.Kind, after, q.Size + 1}
	if q.Foreign != "" {
		sql = `SELECT e.id, e.data, e.uniq, e.fks FROM refs r
			JOIN entities e ON e.kind = r.kind AND e.id = r.id
			WHERE r.kind = $1 AND r.id > $2 AND r.field = $4 AND r.target_id = $5
			ORDER BY r.id LIMIT $3`
		args = append(args, q.Foreign, q.ForeignID)
	}
	if err := s.acquire(ctx); err != nil {
		return store.Page{}, s.wrap(what, err)
	}
	defer s.release()
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return store.Page{}, s.wrap(what, err)
	}
	recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Record, error) {
		r := store.Record{Kind: q.Kind}
		err := row.Scan(&r.ID, &r.Data, &r.Unique, &r.Foreign)
		return r, err
	})
	if err != nil {
		return store.Page{}, s.wrap(what, err)
	}
	var p store.Page
	if len(recs) > q.Size {
		recs = recs[:q.Size]
		p.Next = encodeOffset(recs[len(recs)-1].ID)
	}
	p.Records = recs
	return p, nil
}

// Now returns the server's clock.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	if err := s.acquire(ctx); err != nil {
		return time.Time{}, s.wrap("read the clock", err)
	}
	defer s.release()
	var now time.Time
	if err := s.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
		return time.Time{}, s.wrap("read the clock", err)
	}
	return now.UTC(), nil
}

// Close closes the pool's connections, waiting for queries in flight.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// getRecord runs sql, which selects id, data, uniq and fks with $1 = kind
// and args from $2 on.
func (s *Store) getRecord(ctx context.Context, kind entity.Kind, sql string, args ...any) (store.Record, error) {
	if err := s.acquire(ctx); err != nil {
		return store.Record{}, err
	}
	defer s.release()
	r := store.Record{Kind: kind}
	all := append([]any{kind}, args...)
	err := s.pool.QueryRow(ctx, sql, all...).Scan(&r.ID, &r.Data, &r.Unique, &r.Foreign)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Record{}, store.ErrNotFound
	}
	return r, err
}

// acquire takes a query slot when pg_max_concurrent_queries is set, waiting
// at most pg_timeout.
func (s *Store) acquire(ctx context.Context) error {
	if s.sem == nil {
		return nil
	}
	select {
	case s.sem <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(s.cfg.Timeout)
	defer t.Stop()
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("all pg_max_concurrent_queries=%d slots stayed busy for pg_timeout=%s", s.cfg.MaxConcurrentQueries, s.cfg.Timeout)
	}
}

// release returns the slot taken by a successful acquire.
func (s *Store) release() {
	if s.sem != nil {
		<-s.sem
	}
}

// encodeOffset returns the List offset that resumes after id.
func encodeOffset(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(id))
}

// decodeOffset returns the id a List offset resumes after; "" starts at the
// beginning.
func decodeOffset(off string) (string, error) {
	if off == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(off)
	// Offsets resume after an entity id, always a UUID: any other decoded
	// value was not issued by List (Kong's "not a valid offset").
	if err != nil || uuid.Validate(string(b)) != nil || len(b) != 36 {
		return "", fmt.Errorf("offset %q: %w", off, store.ErrInvalidOffset)
	}
	return string(b), nil
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.Migrator = (*Store)(nil)
	_ store.Pinger   = (*Store)(nil)
	_ store.Notifier = (*Store)(nil)
)

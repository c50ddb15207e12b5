// Package sqlite is the embedded default datastore: one SQLite file, shared
// by every node process on the host, in WAL mode.
//
// Writes go through a pool of one connection whose transactions begin
// IMMEDIATE, so a write transaction holds the file's write lock from its
// first statement and writers from several processes queue on busy_timeout
// instead of failing with SQLITE_BUSY mid-transaction. Reads use a separate
// pool and never block on the writer.
//
// Entities are stored generically: an entities table holds the JSON
// documents, a uniques table their unique values and a refs table their
// foreign keys. The datastore clock is the process clock in UTC with
// millisecond resolution; times are stored as integer unix milliseconds.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sluice-gw/sluice/gateway/store"
)

// Config configures the SQLite datastore. The zero value is valid.
type Config struct {
	// Path is the database file (config key sqlite_path). Empty means
	// "sluice.db". Nodes sharing a datastore use the same file.
	Path string
	// BusyTimeout is how long a statement waits for another connection's
	// lock before failing with store.ErrUnavailable (config key
	// sqlite_busy_timeout). Zero means 5s.
	BusyTimeout time.Duration
}

// Store is a store.Store on one SQLite file. It is safe for concurrent use
// by multiple goroutines and by multiple processes sharing the file.
type Store struct {
	// writer has exactly one connection: SQLite allows one writer at a time,
	// and queueing in database/sql is cheaper than spinning on busy_timeout.
	writer *sql.DB
	reader *sql.DB
	now    func() time.Time

	// mu guards stmts, the reader statements prepared so far by query, and
	// writes, the writer statements of Apply by query (nil until prepared).
	mu     sync.Mutex
	stmts  map[string]*sql.Stmt
	writes map[string]*sql.Stmt
}

// Open opens (creating it if needed) the database file cfg.Path. It does
// not create the schema: call Up first.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Path == "" {
		cfg.Path = "sluice.db"
	}
	if cfg.BusyTimeout == 0 {
		cfg.BusyTimeout = 5 * time.Second
	}
	if cfg.BusyTimeout < 0 {
		return nil, fmt.Errorf("sqlite: sqlite_busy_timeout=%v must not be negative", cfg.BusyTimeout)
	}
	if cfg.Path == ":memory:" || strings.HasPrefix(cfg.Path, "file:") || strings.ContainsRune(cfg.Path, '?') {
		return nil, fmt.Errorf("sqlite: sqlite_path=%q must be a plain file path (no ':memory:', 'file:' URI or '?')", cfg.Path)
	}
	writer, err := openPool(ctx, cfg, "immediate", 1)
	if err != nil {
		return nil, err
	}
	reader, err := openPool(ctx, cfg, "deferred", max(4, runtime.GOMAXPROCS(0)))
	if err != nil {
		_ = writer.Close()
		return nil, err
	}
	return &Store{writer: writer, reader: reader, now: time.Now, stmts: map[string]*sql.Stmt{}}, nil
}

// Now implements store.Store: the process clock in UTC, truncated to the
// millisecond.
func (s *Store) Now(context.Context) (time.Time, error) {
	return s.clock(), nil
}

// Ping implements store.Pinger.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.reader.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: cannot ping: %w", mapErr(err))
	}
	return nil
}

// Close implements store.Store. Calling it again returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	var errs []error
	for q, st := range s.stmts {
		errs = append(errs, st.Close())
		delete(s.stmts, q)
	}
	for _, st := range s.writes {
		errs = append(errs, st.Close())
	}
	s.writes = nil
	s.mu.Unlock()
	return errors.Join(append(errs, s.writer.Close(), s.reader.Close())...)
}

// stmt returns the reader statement of query, prepared once: preparing
// costs more than running a point query. Prepared statements survive Reset
// and Up, as SQLite recompiles them on schema change.
func (s *Store) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.stmts[query]; ok {
		return st, nil
	}
	st, err := s.reader.PrepareContext(ctx, query)
	if err != nil {
		return nil, mapErr(err)
	}
	s.stmts[query] = st
	return st, nil
}

func (s *Store) clock() time.Time {
	return time.UnixMilli(s.now().UnixMilli()).UTC()
}

func openPool(ctx context.Context, cfg Config, txlock string, conns int) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", txlock)
	db, err := sql.Open("sqlite", "file:"+cfg.Path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: cannot open sqlite_path=%q: %w", cfg.Path, err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxIdleTime(0)
	if err := pingUntilUnlocked(ctx, db, cfg.BusyTimeout); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlite: cannot open sqlite_path=%q: %w", cfg.Path, mapErr(err))
	}
	return db, nil
}

// pingUntilUnlocked opens the pool's first connection, retrying while the
// file is busy for up to busyTimeout. Retrying is needed because SQLite
// skips the busy handler where waiting could deadlock: when several
// processes open a new file at once, all but one get SQLITE_BUSY at once
// from "PRAGMA journal_mode=WAL" (which needs the exclusive lock to switch a
// new file to WAL), however long busy_timeout is.
func pingUntilUnlocked(ctx context.Context, db *sql.DB, busyTimeout time.Duration) error {
	deadline := time.Now().Add(busyTimeout)
	wait := 2 * time.Millisecond
	for {
		err := db.PingContext(ctx)
		if err == nil || !isBusy(err) || time.Now().Add(wait).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// primaryCode is err's primary SQLite result code, or 0 when err does not
// come from SQLite.
func primaryCode(err error) int {
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return 0
	}
	return se.Code() & 0xff
}

// isBusy reports whether err is a lock SQLite could not take.
func isBusy(err error) bool {
	code := primaryCode(err)
	return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
}

// mapErr marks lock timeouts as store.ErrUnavailable.
func mapErr(err error) error {
	switch code := primaryCode(err); {
	case isBusy(err):
		return fmt.Errorf("%w: database is locked beyond sqlite_busy_timeout: %w", store.ErrUnavailable, err)
	case code == sqlite3.SQLITE_CANTOPEN, code == sqlite3.SQLITE_IOERR:
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.Migrator    = (*Store)(nil)
	_ store.Pinger      = (*Store)(nil)
	_ store.EventCursor = (*Store)(nil)
)

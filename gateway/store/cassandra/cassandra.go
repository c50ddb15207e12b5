// Package cassandra implements store.Store and store.Migrator on Apache
// Cassandra with the apache/cassandra-gocql-driver. Cassandra has no
// multi-row transactions: unique values are claimed with lightweight
// transactions before the entity rows and events are written in one logged
// batch. README.md explains the design and its limits.
package cassandra

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// Store is a Cassandra datastore. It is safe for concurrent use.
type Store struct {
	cfg     settings
	session *gocql.Session
	ks      string // the quoted keyspace, prefixed to every table name
}

// Open validates cfg and connects to the cluster. It does not create the
// schema: call Up first.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	s, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("cassandra: %w", err)
	}
	cluster := gocql.NewCluster(s.ContactPoints...)
	cluster.Port = s.Port
	cluster.Timeout = s.Timeout
	cluster.ConnectTimeout = s.Timeout
	cluster.Consistency = s.read
	cluster.SerialConsistency = gocql.Serial
	if s.Username != "" {
		cluster.Authenticator = gocql.PasswordAuthenticator{Username: s.Username, Password: s.Password}
	}
	type result struct {
		sess *gocql.Session
		err  error
	}
	done := make(chan result, 1)
	go func() {
		sess, err := cluster.CreateSession()
		done <- result{sess, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("cassandra: cannot connect to %v port %d (cassandra_contact_points, cassandra_port): %w: %w",
				s.ContactPoints, s.Port, store.ErrUnavailable, r.err)
		}
		return &Store{cfg: s, session: r.sess, ks: `"` + s.Keyspace + `"`}, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.sess != nil {
				r.sess.Close()
			}
		}()
		return nil, fmt.Errorf("cassandra: cannot connect: %w", ctx.Err())
	}
}

// Get returns the record of kind with primary key id, or store.ErrNotFound.
func (s *Store) Get(ctx context.Context, kind entity.Kind, id string) (store.Record, error) {
	if id == "" {
		return store.Record{}, store.ErrNotFound
	}
	r, err := s.get(ctx, kind, id)
	if err != nil {
		return store.Record{}, fmt.Errorf("cassandra: cannot get %s %s: %w", kind, id, err)
	}
	return r, nil
}

// GetByUnique returns the record of kind whose unique field has value, or
// store.ErrNotFound. A claim whose record no longer holds the value (an
// Apply in flight, or one that failed half-way) is ignored.
func (s *Store) GetByUnique(ctx context.Context, kind entity.Kind, field, value string) (store.Record, error) {
	if value == "" {
		return store.Record{}, store.ErrNotFound
	}
	var id string
	err := s.session.Query(`SELECT id FROM `+s.ks+`.uniques WHERE kind = ? AND field = ? AND value = ?`,
		string(kind), field, value).Consistency(s.cfg.read).ScanContext(ctx, &id)
	if err == nil {
		var r store.Record
		r, err = s.get(ctx, kind, id)
		if err == nil && r.Unique[field] != value {
			err = store.ErrNotFound
		}
		if err == nil {
			return r, nil
		}
	}
	return store.Record{}, fmt.Errorf("cassandra: cannot get %s by %s: %w", kind, field, s.wrap(err))
}

// List returns one page of records ordered by id. Offsets are the driver's
// paging state, base64-encoded.
func (s *Store) List(ctx context.Context, q store.ListQuery) (store.Page, error) {
	p, err := s.list(ctx, q)
	if err != nil {
		return store.Page{}, fmt.Errorf("cassandra: cannot list %s: %w", q.Kind, err)
	}
	return p, nil
}

// Now returns Cassandra's clock, read from system.local at ONE.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	t, err := s.now(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("cassandra: cannot read the clock: %w", err)
	}
	return t, nil
}

// Ping checks the connection with a query on system.local.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.now(ctx); err != nil {
		return fmt.Errorf("cassandra: ping: %w", err)
	}
	return nil
}

// Close closes the session. Later calls fail.
func (s *Store) Close() error {
	s.session.Close()
	return nil
}

const pageStateVersion = 'p'

func (s *Store) list(ctx context.Context, q store.ListQuery) (store.Page, error) {
	schema, ok := entity.Schemas[q.Kind]
	if !ok {
		return store.Page{}, fmt.Errorf("unknown kind %q", q.Kind)
	}
	if q.Size < 1 || q.Size > 1000 {
		return store.Page{}, fmt.Errorf("page size %d: want 1 to 1000", q.Size)
	}
	state, err := decodeOffset(q.Offset)
	if err != nil {
		return store.Page{}, err
	}
	var stmt string
	var args []any
	if q.Foreign != "" {
		if _, ok := schema.Foreign[q.Foreign]; !ok {
			return store.Page{}, fmt.Errorf("%s has no foreign field %q", q.Kind, q.Foreign)
		}
		stmt = `SELECT id FROM ` + s.ks + `.foreign_refs WHERE kind = ? AND field = ? AND ref_id = ?`
		args = []any{string(q.Kind), q.Foreign, q.ForeignID}
	} else {
		stmt = `SELECT id, data, uniques, foreigns FROM ` + s.ks + `.entities WHERE kind = ?`
		args = []any{string(q.Kind)}
	}
	for {
		iter := s.session.Query(stmt, args...).Consistency(s.cfg.read).PageSize(q.Size).PageState(state).IterContext(ctx)
		next := iter.PageState()
		recs, ids := s.scanPage(q.Kind, iter, q.Foreign != "")
		if err := iter.Close(); err != nil {
			if state != nil && isInvalid(err) {
				return store.Page{}, fmt.Errorf("%w: %q", store.ErrInvalidOffset, q.Offset)
			}
			return store.Page{}, s.wrap(err)
		}
		if q.Foreign != "" && len(ids) > 0 {
			if recs, err = s.getMany(ctx, q.Kind, ids); err != nil {
				return store.Page{}, err
			}
		}
		if len(recs) > 0 || len(next) == 0 {
			return store.Page{Records: recs, Next: encodeOffset(next)}, nil
		}
		state = next // an empty page that is not the last: read on
	}
}

// scanPage reads the rows of the iterator's first page only: either whole
// records or, with idsOnly, ids.
func (s *Store) scanPage(kind entity.Kind, iter *gocql.Iter, idsOnly bool) ([]store.Record, []string) {
	n := iter.NumRows()
	var recs []store.Record
	var ids []string
	for i := 0; i < n; i++ {
		r := store.Record{Kind: kind}
		var ok bool
		if idsOnly {
			ok = iter.Scan(&r.ID)
			ids = append(ids, r.ID)
		} else {
			ok = iter.Scan(&r.ID, &r.Data, &r.Unique, &r.Foreign)
			recs = append(recs, r)
		}
		if !ok {
			break
		}
	}
	return recs, ids
}

// getMany returns the records of kind with the given ids, in id order,
// skipping the ids that have none.
func (s *Store) getMany(ctx context.Context, kind entity.Kind, ids []string) ([]store.Record, error) {
	iter := s.session.Query(`SELECT id, data, uniques, foreigns FROM `+s.ks+`.entities WHERE kind = ? AND id IN ?`,
		string(kind), ids).Consistency(s.cfg.read).IterContext(ctx)
	var recs []store.Record
	r := store.Record{Kind: kind}
	for iter.Scan(&r.ID, &r.Data, &r.Unique, &r.Foreign) {
		recs = append(recs, r)
		r = store.Record{Kind: kind}
	}
	return recs, s.wrap(iter.Close())
}

func (s *Store) get(ctx context.Context, kind entity.Kind, id string) (store.Record, error) {
	r := store.Record{Kind: kind, ID: id}
	err := s.session.Query(`SELECT data, uniques, foreigns FROM `+s.ks+`.entities WHERE kind = ? AND id = ?`,
		string(kind), id).Consistency(s.cfg.read).ScanContext(ctx, &r.Data, &r.Unique, &r.Foreign)
	return r, s.wrap(err)
}

func (s *Store) now(ctx context.Context) (time.Time, error) {
	var ms int64
	err := s.session.Query(`SELECT toUnixTimestamp(now()) FROM system.local`).
		Consistency(gocql.One).ScanContext(ctx, &ms)
	if err != nil {
		return time.Time{}, s.wrap(err)
	}
	return time.UnixMilli(ms), nil
}

// wrap maps the driver's errors to the contract's sentinels.
func (s *Store) wrap(err error) error {
	var unavailable *gocql.RequestErrUnavailable
	var netErr net.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gocql.ErrNotFound):
		return store.ErrNotFound
	case errors.Is(err, gocql.ErrNoConnections), errors.Is(err, gocql.ErrSessionClosed),
		errors.Is(err, gocql.ErrTimeoutNoResponse), errors.Is(err, gocql.ErrConnectionClosed),
		errors.As(err, &unavailable), errors.As(err, &netErr):
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// isInvalid reports whether Cassandra rejected a request as invalid, as it
// does a paging state it did not issue.
func isInvalid(err error) bool {
	var re gocql.RequestError
	if errors.As(err, &re) {
		return re.Code() == gocql.ErrCodeInvalid || re.Code() == gocql.ErrCodeProtocol
	}
	return strings.Contains(err.Error(), "paging state")
}

func encodeOffset(state []byte) string {
	if len(state) == 0 {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(append([]byte{pageStateVersion}, state...))
}

func decodeOffset(off string) ([]byte, error) {
	if off == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(off)
	if err != nil || len(b) < 2 || b[0] != pageStateVersion {
		return nil, fmt.Errorf("%w: %q", store.ErrInvalidOffset, off)
	}
	return b[1:], nil
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.Migrator = (*Store)(nil)
	_ store.Pinger   = (*Store)(nil)
)

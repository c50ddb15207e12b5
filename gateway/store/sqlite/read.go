package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/google/uuid"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// maxPageSize is the largest ListQuery.Size (Kong's limit).
const maxPageSize = 1000

// Get implements store.Store. The returned record's Unique and Foreign are
// nil: callers decode Data.
func (s *Store) Get(ctx context.Context, kind entity.Kind, id string) (store.Record, error) {
	r := store.Record{Kind: kind, ID: id}
	st, err := s.stmt(ctx, `SELECT data FROM entities WHERE kind = ? AND id = ?`)
	if err == nil {
		err = st.QueryRowContext(ctx, string(kind), id).Scan(&r.Data)
	}
	if err != nil {
		return store.Record{}, readErr("get "+string(kind), err)
	}
	return r, nil
}

// GetByUnique implements store.Store. An empty value is never found.
func (s *Store) GetByUnique(ctx context.Context, kind entity.Kind, field, value string) (store.Record, error) {
	if value == "" {
		return store.Record{}, fmt.Errorf("sqlite: cannot get %s by empty %s: %w", kind, field, store.ErrNotFound)
	}
	r := store.Record{Kind: kind}
	st, err := s.stmt(ctx, `SELECT e.id, e.data FROM uniques u
		JOIN entities e ON e.kind = u.kind AND e.id = u.id
		WHERE u.kind = ? AND u.field = ? AND u.value = ?`)
	if err == nil {
		err = st.QueryRowContext(ctx, string(kind), field, value).Scan(&r.ID, &r.Data)
	}
	if err != nil {
		return store.Record{}, readErr("get "+string(kind)+" by "+field, err)
	}
	return r, nil
}

// List implements store.Store. Offsets are the base64 of the last id of the
// previous page.
func (s *Store) List(ctx context.Context, q store.ListQuery) (store.Page, error) {
	if q.Size < 1 || q.Size > maxPageSize {
		return store.Page{}, fmt.Errorf("sqlite: cannot list %s: invalid size %d, want 1 to %d", q.Kind, q.Size, maxPageSize)
	}
	after, err := decodeOffset(q.Offset)
	if err != nil {
		return store.Page{}, fmt.Errorf("sqlite: cannot list %s: %w", q.Kind, err)
	}
	var rows *sql.Rows
	if q.Foreign == "" {
		rows, err = s.reader.QueryContext(ctx, `SELECT id, data FROM entities
			WHERE kind = ? AND id > ? ORDER BY id LIMIT ?`, string(q.Kind), after, q.Size+1)
	} else {
		rows, err = s.reader.QueryContext(ctx, `SELECT e.id, e.data FROM refs r
			JOIN entities e ON e.kind = r.kind AND e.id = r.id
			WHERE r.kind = ? AND r.field = ? AND r.target_id = ? AND r.id > ? ORDER BY r.id LIMIT ?`,
			string(q.Kind), q.Foreign, q.ForeignID, after, q.Size+1)
	}
	if err != nil {
		return store.Page{}, fmt.Errorf("sqlite: cannot list %s: %w", q.Kind, mapErr(err))
	}
	defer rows.Close()
	var p store.Page
	for rows.Next() {
		r := store.Record{Kind: q.Kind}
		if err := rows.Scan(&r.ID, &r.Data); err != nil {
			return store.Page{}, fmt.Errorf("sqlite: cannot list %s: %w", q.Kind, mapErr(err))
		}
		p.Records = append(p.Records, r)
	}
	if err := rows.Err(); err != nil {
		return store.Page{}, fmt.Errorf("sqlite: cannot list %s: %w", q.Kind, mapErr(err))
	}
	if len(p.Records) > q.Size {
		p.Records = p.Records[:q.Size]
		p.Next = base64.RawURLEncoding.EncodeToString([]byte(p.Records[q.Size-1].ID))
	}
	return p, nil
}

func decodeOffset(off string) (string, error) {
	if off == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(off)
	// Offsets resume after an entity id, always a UUID: any other decoded
	// value was not issued by List (Kong's "not a valid offset").
	if err != nil || uuid.Validate(string(b)) != nil || len(b) != 36 {
		return "", store.ErrInvalidOffset
	}
	return string(b), nil
}

func readErr(what string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	return fmt.Errorf("sqlite: cannot %s: %w", what, mapErr(err))
}

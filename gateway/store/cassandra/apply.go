package cassandra

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// staleClaimAge is how old a claim whose record does not hold its value must
// be before an Apply takes it over: younger ones may belong to an Apply
// between its claims and its batch.
const staleClaimAge = time.Minute

// claim is one row of the uniques table: value of kind.field owned by id.
type claim struct {
	kind         entity.Kind
	field, value string
	id           string
}

// transfer is a claim moved from one owner to another within an Apply.
type transfer struct {
	claim
	from string
}

// tx is the state of one Apply: the records as the ops leave them, and the
// claims taken, moved and to be released.
type tx struct {
	s *Store
	// orig holds the stored record of every key read; nil when none.
	orig map[string]*store.Record
	// cur holds the record of every key as the ops so far leave it; nil
	// when deleted or absent.
	cur       map[string]*store.Record
	order     []string // keys in first-touch order
	claimed   []claim
	moved     []transfer
	toRelease []claim
}

// Apply checks ops and claims their unique values with lightweight
// transactions, then writes the records, the foreign key index and events
// in one logged batch. On a failed check it releases the claims it took.
func (s *Store) Apply(ctx context.Context, ops []store.Op, events []store.Event) error {
	t := &tx{s: s, orig: map[string]*store.Record{}, cur: map[string]*store.Record{}}
	if err := t.run(ctx, ops, events); err != nil {
		return fmt.Errorf("cassandra: apply: %w", err)
	}
	return nil
}

func (t *tx) run(ctx context.Context, ops []store.Op, events []store.Event) error {
	err := t.check(ctx, ops)
	if err == nil {
		err = t.write(ctx, events)
	}
	if err != nil {
		if !errors.Is(err, errOutcomeUnknown) {
			t.compensate(ctx)
		}
		return err
	}
	t.release(ctx)
	return nil
}

var errOutcomeUnknown = errors.New("outcome unknown, claims kept")

// check runs every op against the current state, claiming unique values.
func (t *tx) check(ctx context.Context, ops []store.Op) error {
	var deleted []*store.Record
	for i, op := range ops {
		r := op.Record
		if _, ok := entity.Schemas[r.Kind]; !ok || r.ID == "" {
			return fmt.Errorf("op %d: unknown kind %q or empty id", i, r.Kind)
		}
		old, err := t.load(ctx, r.Kind, r.ID)
		if err != nil {
			return err
		}
		switch op.Type {
		case store.OpInsert:
			if old != nil {
				return &store.UniqueError{Kind: r.Kind, Field: "id", Value: r.ID}
			}
			err = t.put(ctx, nil, &r)
		case store.OpUpdate:
			if old == nil {
				return fmt.Errorf("%s %s: %w", r.Kind, r.ID, store.ErrNotFound)
			}
			err = t.put(ctx, old, &r)
		case store.OpDelete:
			if old == nil {
				return fmt.Errorf("%s %s: %w", r.Kind, r.ID, store.ErrNotFound)
			}
			t.scheduleRelease(old)
			t.cur[key(r.Kind, r.ID)] = nil
			deleted = append(deleted, old)
		default:
			return fmt.Errorf("op %d: unknown type %d", i, op.Type)
		}
		if err != nil {
			return err
		}
	}
	return t.checkReferences(ctx, deleted)
}

// put claims what r needs, checks its foreign keys and makes it current.
func (t *tx) put(ctx context.Context, old, r *store.Record) error {
	if old == nil {
		if err := t.claim(ctx, claim{r.Kind, "id", r.ID, r.ID}); err != nil {
			return err
		}
	}
	schema := entity.Schemas[r.Kind]
	for _, f := range schema.Unique {
		v := r.Unique[f]
		if v != "" && (old == nil || old.Unique[f] != v) {
			if err := t.claim(ctx, claim{r.Kind, f, v, r.ID}); err != nil {
				return err
			}
		}
		if old != nil && old.Unique[f] != "" && old.Unique[f] != v {
			t.toRelease = append(t.toRelease, claim{r.Kind, f, old.Unique[f], r.ID})
		}
	}
	for _, f := range sortedKeys(schema.Foreign) {
		id := r.Foreign[f]
		if id == "" {
			continue
		}
		target, err := t.load(ctx, schema.Foreign[f], id)
		if err != nil {
			return err
		}
		if target == nil {
			return &store.ForeignKeyError{Kind: r.Kind, Field: f, Target: schema.Foreign[f], ID: id}
		}
	}
	t.cur[key(r.Kind, r.ID)] = r
	return nil
}

// checkReferences fails when a record left by the ops references a deleted
// one.
func (t *tx) checkReferences(ctx context.Context, deleted []*store.Record) error {
	for _, d := range deleted {
		if t.cur[key(d.Kind, d.ID)] != nil {
			continue // inserted again later in the Apply
		}
		for _, k := range entity.Kinds {
			schema := entity.Schemas[k]
			for _, f := range sortedKeys(schema.Foreign) {
				if schema.Foreign[f] != d.Kind {
					continue
				}
				if err := t.checkReferrers(ctx, d, k, f); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// checkReferrers fails when a current record of kind k references d through
// field f.
func (t *tx) checkReferrers(ctx context.Context, d *store.Record, k entity.Kind, f string) error {
	referenced := &store.ReferencedError{Kind: d.Kind, ID: d.ID, Referrer: k}
	for _, kk := range t.order {
		if r := t.cur[kk]; r != nil && r.Kind == k && r.Foreign[f] == d.ID {
			return referenced
		}
	}
	iter := t.s.session.Query(`SELECT id FROM `+t.s.ks+`.foreign_refs WHERE kind = ? AND field = ? AND ref_id = ?`,
		string(k), f, d.ID).Consistency(t.s.cfg.read).PageSize(100).IterContext(ctx)
	var id string
	found := false
	for !found && iter.Scan(&id) {
		_, touched := t.cur[key(k, id)]
		found = !touched // touched records were checked above
	}
	if err := iter.Close(); err != nil {
		return t.s.wrap(err)
	}
	if found {
		return referenced
	}
	return nil
}

// load returns the current record of kind and id, reading it once.
func (t *tx) load(ctx context.Context, kind entity.Kind, id string) (*store.Record, error) {
	k := key(kind, id)
	if r, ok := t.cur[k]; ok {
		return r, nil
	}
	r, err := t.s.get(ctx, kind, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		t.orig[k], t.cur[k] = nil, nil
	case err != nil:
		return nil, err
	default:
		t.orig[k], t.cur[k] = &r, &r
	}
	t.order = append(t.order, k)
	return t.cur[k], nil
}

// claim takes c with INSERT ... IF NOT EXISTS. A claim held by a record
// this Apply deleted or moved off the value, or a stale one, is moved to
// c.id; a claim held by a stored record that keeps the value makes a
// UniqueError.
func (t *tx) claim(ctx context.Context, c claim) error {
	prev := map[string]any{}
	applied, err := t.s.session.Query(`INSERT INTO `+t.s.ks+`.uniques (kind, field, value, id) VALUES (?, ?, ?, ?) IF NOT EXISTS`,
		string(c.kind), c.field, c.value, c.id).Consistency(t.s.cfg.write).SerialConsistency(gocql.Serial).
		MapScanCASContext(ctx, prev)
	if err != nil {
		return fmt.Errorf("cannot claim %s.%s: %w", c.kind, c.field, t.s.wrap(err))
	}
	if applied {
		t.claimed = append(t.claimed, c)
		return nil
	}
	owner, _ := prev["id"].(string)
	k := key(c.kind, owner)
	if o := t.orig[k]; o != nil && holds(o, c) { // the claim of a stored record
		switch r := t.cur[k]; {
		case owner == c.id:
			t.unschedule(c)
			return nil
		case r == nil || !holds(r, c): // this Apply deleted it or moved it off the value
			return t.move(ctx, c, owner)
		}
		return &store.UniqueError{Kind: c.kind, Field: c.field, Value: c.value}
	}
	if _, touched := t.cur[k]; !touched {
		r, err := t.load(ctx, c.kind, owner)
		if err != nil {
			return err
		}
		if r != nil && holds(r, c) {
			return &store.UniqueError{Kind: c.kind, Field: c.field, Value: c.value}
		}
	}
	// No stored record holds the claim: an Apply is between its claims and
	// its batch, or one failed half-way. Take the claim over only if old.
	stale, err := t.stale(ctx, c)
	if err != nil || !stale {
		if err == nil {
			err = &store.UniqueError{Kind: c.kind, Field: c.field, Value: c.value}
		}
		return err
	}
	if owner == c.id {
		t.claimed = append(t.claimed, c)
		return nil
	}
	return t.move(ctx, c, owner)
}

// stale reports whether the claim on c's value is older than staleClaimAge.
func (t *tx) stale(ctx context.Context, c claim) (bool, error) {
	var written int64
	err := t.s.session.Query(`SELECT writetime(id) FROM `+t.s.ks+`.uniques WHERE kind = ? AND field = ? AND value = ?`,
		string(c.kind), c.field, c.value).Consistency(t.s.cfg.read).ScanContext(ctx, &written)
	if err != nil {
		return false, t.s.wrap(err)
	}
	return time.Since(time.UnixMicro(written)) > staleClaimAge, nil
}

// move hands owner's claim to c.id with UPDATE ... IF id = owner.
func (t *tx) move(ctx context.Context, c claim, owner string) error {
	applied, err := t.s.session.Query(`UPDATE `+t.s.ks+`.uniques SET id = ? WHERE kind = ? AND field = ? AND value = ? IF id = ?`,
		c.id, string(c.kind), c.field, c.value, owner).Consistency(t.s.cfg.write).SerialConsistency(gocql.Serial).
		MapScanCASContext(ctx, map[string]any{})
	if err != nil {
		return fmt.Errorf("cannot claim %s.%s: %w", c.kind, c.field, t.s.wrap(err))
	}
	if !applied { // someone else moved it first
		return &store.UniqueError{Kind: c.kind, Field: c.field, Value: c.value}
	}
	t.moved = append(t.moved, transfer{claim: c, from: owner})
	t.unschedule(claim{c.kind, c.field, c.value, owner})
	return nil
}

// holds reports whether r owns the value c claims.
func holds(r *store.Record, c claim) bool {
	if c.field == "id" {
		return r.ID == c.value
	}
	return r.Unique[c.field] == c.value
}

func (t *tx) scheduleRelease(r *store.Record) {
	t.toRelease = append(t.toRelease, claim{r.Kind, "id", r.ID, r.ID})
	for _, f := range entity.Schemas[r.Kind].Unique {
		if v := r.Unique[f]; v != "" {
			t.toRelease = append(t.toRelease, claim{r.Kind, f, v, r.ID})
		}
	}
}

func (t *tx) unschedule(c claim) {
	t.toRelease = slices.DeleteFunc(t.toRelease, func(x claim) bool { return x == c })
}

// write writes the final state of every touched record, the foreign key
// index and the events in one logged batch.
func (t *tx) write(ctx context.Context, events []store.Event) error {
	b := t.s.session.Batch(gocql.LoggedBatch).Consistency(t.s.cfg.write)
	ks := t.s.ks
	for _, k := range t.order {
		orig, cur := t.orig[k], t.cur[k]
		if orig == cur {
			continue // only read
		}
		if cur == nil {
			b.Query(`DELETE FROM `+ks+`.entities WHERE kind = ? AND id = ?`, string(orig.Kind), orig.ID)
		} else {
			b.Query(`INSERT INTO `+ks+`.entities (kind, id, data, uniques, foreigns) VALUES (?, ?, ?, ?, ?)`,
				string(cur.Kind), cur.ID, cur.Data, cur.Unique, cur.Foreign)
		}
		for f, id := range foreignOf(orig) {
			if cur == nil || cur.Foreign[f] != id {
				b.Query(`DELETE FROM `+ks+`.foreign_refs WHERE kind = ? AND field = ? AND ref_id = ? AND id = ?`,
					string(orig.Kind), f, id, orig.ID)
			}
		}
		for f, id := range foreignOf(cur) {
			if id != "" {
				b.Query(`INSERT INTO `+ks+`.foreign_refs (kind, field, ref_id, id) VALUES (?, ?, ?, ?)`,
					string(cur.Kind), f, id, cur.ID)
			}
		}
	}
	if len(events) > 0 {
		at, err := t.s.now(ctx)
		if err != nil {
			return err
		}
		ttl := int(t.s.cfg.EventTTL / time.Second)
		for _, e := range events {
			b.Query(`INSERT INTO `+ks+`.cluster_events (bucket, at, id, node_id, channel, data, trace_parent, delay_ms)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?`,
				bucketOf(at), at, e.ID, e.NodeID, e.Channel, e.Data, e.TraceParent, e.Delay.Milliseconds(), ttl)
		}
	}
	if b.Size() == 0 {
		return nil
	}
	if err := b.ExecContext(ctx); err != nil {
		var unavailable *gocql.RequestErrUnavailable
		if errors.As(err, &unavailable) || errors.Is(err, gocql.ErrNoConnections) || errors.Is(err, gocql.ErrSessionClosed) {
			return fmt.Errorf("cannot write the batch: %w", t.s.wrap(err)) // not applied: compensate
		}
		return fmt.Errorf("cannot write the batch (%w): %w", errOutcomeUnknown, t.s.wrap(err))
	}
	return nil
}

// compensate undoes the claims this Apply took and moved, newest first.
// It runs even when ctx is done.
func (t *tx) compensate(ctx context.Context) {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.s.cfg.Timeout)
	defer cancel()
	for i := len(t.moved) - 1; i >= 0; i-- {
		m := t.moved[i]
		_, _ = t.s.session.Query(`UPDATE `+t.s.ks+`.uniques SET id = ? WHERE kind = ? AND field = ? AND value = ? IF id = ?`,
			m.from, string(m.kind), m.field, m.value, m.id).Consistency(t.s.cfg.write).SerialConsistency(gocql.Serial).
			MapScanCASContext(c, map[string]any{})
	}
	for i := len(t.claimed) - 1; i >= 0; i-- {
		t.drop(c, t.claimed[i])
	}
}

// release drops the claims of values the Apply removed.
func (t *tx) release(ctx context.Context) {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.s.cfg.Timeout)
	defer cancel()
	for _, cl := range t.toRelease {
		t.drop(c, cl)
	}
}

// drop deletes claim c if c.id still owns it. A failure leaves a stale
// claim, which a later Apply takes over after staleClaimAge.
func (t *tx) drop(ctx context.Context, c claim) {
	_, _ = t.s.session.Query(`DELETE FROM `+t.s.ks+`.uniques WHERE kind = ? AND field = ? AND value = ? IF id = ?`,
		string(c.kind), c.field, c.value, c.id).Consistency(t.s.cfg.write).SerialConsistency(gocql.Serial).
		MapScanCASContext(ctx, map[string]any{})
}

func foreignOf(r *store.Record) map[string]string {
	if r == nil {
		return nil
	}
	return r.Foreign
}

func key(kind entity.Kind, id string) string { return string(kind) + "\x00" + id }

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// Package store defines the datastore contract every backend (SQLite,
// PostgreSQL, Cassandra) implements, its sentinel errors and the cluster
// event type. The contract is deliberately generic: entities travel as JSON
// documents plus the index values their entity.Schema names, so a datastore
// never needs to know what a route or a plugin is.
//
// Conformance is checked by storetest.Run, which every datastore's tests call.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// Sentinel errors. Check them with errors.Is.
var (
	// ErrNotFound reports that no entity matches.
	ErrNotFound = errors.New("not found")
	// ErrInvalidOffset reports a ListQuery.Offset the datastore did not issue.
	ErrInvalidOffset = errors.New("invalid offset")
	// ErrUnavailable reports that the datastore cannot be reached. Datastores
	// wrap their driver's connection errors with it.
	ErrUnavailable = errors.New("datastore unavailable")
)

// Store is the datastore contract. Implementations are safe for concurrent
// use by multiple goroutines and by multiple processes sharing one database.
type Store interface {
	// Get returns the record of kind with primary key id, or ErrNotFound.
	Get(ctx context.Context, kind entity.Kind, id string) (Record, error)
	// GetByUnique returns the record of kind whose unique field has value,
	// or ErrNotFound.
	GetByUnique(ctx context.Context, kind entity.Kind, field, value string) (Record, error)
	// List returns one page of records ordered by id.
	List(ctx context.Context, q ListQuery) (Page, error)
	// Apply performs ops and records events in one transaction: either all
	// of them take effect or none does. See Op for the checks it makes.
	// Each event's At is set to the datastore's clock at the time of the
	// write; its NotBefore to At plus the event's Delay.
	Apply(ctx context.Context, ops []Op, events []Event) error
	// Events returns the events with since < At <= now, ordered by At, and
	// now, the datastore's clock when it read them. The caller passes the
	// returned now (minus its grace window) as the next since.
	Events(ctx context.Context, since time.Time) (events []Event, now time.Time, err error)
	// Now returns the datastore's clock.
	Now(ctx context.Context) (time.Time, error)
	// PurgeEvents deletes at most limit events whose At is before before, and
	// reports how many it deleted. Datastores with row TTLs may return 0.
	PurgeEvents(ctx context.Context, before time.Time, limit int) (int, error)
	// Close releases the datastore's resources.
	Close() error
}

// Migrator is implemented by datastores whose schema is created and
// upgraded by migrations. Up is safe to call from several nodes at once:
// it takes a lock in the datastore and applies each migration once.
type Migrator interface {
	Up(ctx context.Context) error
	Status(ctx context.Context) (MigrationStatus, error)
	// Reset drops everything the migrations created.
	Reset(ctx context.Context) error
}

// Notifier is implemented by datastores that can push cluster events as
// they commit (PostgreSQL's LISTEN/NOTIFY). Listen delivers events to fn
// until ctx is done; it returns an error when the connection breaks, and the
// caller reconnects and catches up by polling.
type Notifier interface {
	Listen(ctx context.Context, fn func(Event)) error
}

// EventCursor is implemented by datastores whose events carry a sequence
// number that grows in commit order and is never reused: an event that
// commits after another has a larger number (SQLite, where one writer at a
// time assigns the next number inside its transaction). A poller that reads
// by this cursor sees every event exactly once and needs no grace window,
// and a poll that finds nothing new reads no rows.
type EventCursor interface {
	// EventsAfter returns the events numbered above seq in commit order,
	// the number of the last one (seq when there is none), and the
	// datastore's clock when it read them. A seq of -1 returns no events
	// and the number of the last event stored (0 when there is none):
	// where a poller starts.
	EventsAfter(ctx context.Context, seq int64) (events []Event, last int64, now time.Time, err error)
}

// Counters is implemented by datastores that keep counters shared by the
// nodes: the rate-limiting plugin's policy "cluster" (Kong's
// ratelimiting_metrics). Keys name a window, so a counter is never
// reset; it may be deleted once past its expiry.
type Counters interface {
	// Usage returns the value of each key, 0 for a key never incremented
	// or past its expiry.
	Usage(ctx context.Context, keys []string) ([]int64, error)
	// Increment adds 1 to each key, which may be forgotten after
	// expire[i]. All keys are incremented together or none is.
	Increment(ctx context.Context, keys []string, expire []time.Time) error
}

// Pinger is implemented by datastores that can check their connection
// without a query on entity tables.
type Pinger interface {
	Ping(ctx context.Context) error
}

// MigrationStatus lists executed and pending migration names.
type MigrationStatus struct {
	Executed []string
	Pending  []string
}

// Record is one stored entity.
type Record struct {
	Kind entity.Kind
	ID   string
	// Unique holds the values of the schema's unique fields; an empty value
	// is not indexed.
	Unique map[string]string
	// Foreign holds the ids the schema's foreign fields reference; an empty
	// value is a null reference.
	Foreign map[string]string
	// Data is the entity's JSON document. The datastore stores and returns
	// it unchanged.
	Data []byte
}

// NewRecord builds the Record of e.
func NewRecord(e entity.Entity, data []byte) Record {
	u, f := e.Index()
	return Record{Kind: e.EntityKind(), ID: e.PrimaryKey(), Unique: u, Foreign: f, Data: data}
}

// OpType says what an Op does.
type OpType int

// The operations.
const (
	// OpInsert adds a record. Its id must be new (else *UniqueError with
	// Field "id"), its non-empty unique values unused (*UniqueError) and its
	// non-empty foreign ids must name existing records, or records inserted
	// earlier in the same Apply (*ForeignKeyError).
	OpInsert OpType = iota + 1
	// OpUpdate replaces an existing record (ErrNotFound if none) with the
	// same checks as OpInsert, ignoring the record's own unique values.
	OpUpdate
	// OpDelete removes the record of Kind and ID (ErrNotFound if none).
	// After all ops of the Apply, no remaining record may reference a
	// deleted one (*ReferencedError).
	OpDelete
)

// Op is one write of an Apply. OpDelete needs only Record.Kind and Record.ID.
type Op struct {
	Type   OpType
	Record Record
}

// ListQuery selects a page of records.
type ListQuery struct {
	Kind entity.Kind
	// Foreign and ForeignID, when set, keep only the records whose foreign
	// field Foreign references ForeignID.
	Foreign   string
	ForeignID string
	// Size is the page size, 1 to 1000.
	Size int
	// Offset is a Page.Next returned earlier; empty for the first page.
	Offset string
}

// Page is one page of a List.
type Page struct {
	Records []Record
	// Next is the offset of the following page; empty on the last page.
	Next string
}

// Event is a cluster event: an invalidation to be applied by every node.
type Event struct {
	// ID is chosen by the emitter (a UUID); receivers drop duplicates by it.
	ID string
	// NodeID is the emitting node; it skips its own events.
	NodeID string
	// Channel groups events; the gateway uses "invalidations".
	Channel string
	// Data is the payload: for invalidations, an entity.CacheKey string.
	Data string
	// TraceParent is the W3C traceparent of the write that caused the event,
	// so that each node's application of it links back to it. May be empty.
	TraceParent string
	// Delay, set by the emitter, postpones the event: NotBefore = At + Delay.
	Delay time.Duration
	// At is the datastore's clock when the event was written.
	At time.Time
	// NotBefore is when receivers may apply the event. Zero means at once.
	NotBefore time.Time
}

// UniqueError reports a unique constraint violation (Kong's code 5), or a
// primary key violation when Field is "id" (code 3).
type UniqueError struct {
	Kind  entity.Kind
	Field string
	Value string
}

func (e *UniqueError) Error() string {
	return fmt.Sprintf("unique constraint violation on %s.%s=%q", e.Kind, e.Field, e.Value)
}

// ForeignKeyError reports a reference to a record that does not exist
// (Kong's code 4).
type ForeignKeyError struct {
	Kind   entity.Kind // kind of the record being written
	Field  string      // its foreign field
	Target entity.Kind // the referenced kind
	ID     string      // the missing id
}

func (e *ForeignKeyError) Error() string {
	return fmt.Sprintf("the foreign key '{id=%q}' does not reference an existing '%s' entity", e.ID, e.Target)
}

// ReferencedError reports a deletion refused because another record still
// references the deleted one (Kong's code 4 on delete).
type ReferencedError struct {
	Kind     entity.Kind // kind of the deleted record
	ID       string
	Referrer entity.Kind // kind of a record that references it
}

func (e *ReferencedError) Error() string {
	return fmt.Sprintf("an existing '%s' entity references this '%s' entity", e.Referrer, e.Kind)
}

// Each calls fn with every entity of kind in st, decoded, reading pages of
// pageSize records; it stops at the first error.
func Each(ctx context.Context, st Store, kind entity.Kind, pageSize int, fn func(entity.Entity)) error {
	q := ListQuery{Kind: kind, Size: pageSize}
	for {
		page, err := st.List(ctx, q)
		if err != nil {
			return fmt.Errorf("cannot list %s: %w", kind, err)
		}
		for _, rec := range page.Records {
			e, err := entity.Decode(kind, rec.Data)
			if err != nil {
				return fmt.Errorf("cannot decode %s %s: %w", kind, rec.ID, err)
			}
			fn(e)
		}
		if page.Next == "" {
			return nil
		}
		q.Offset = page.Next
	}
}

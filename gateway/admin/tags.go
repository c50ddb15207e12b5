package admin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// codeInvalidOptions is Kong's error code for a bad list option
// (K@2.8.0:kong/db/errors.lua, INVALID_OPTIONS).
const codeInvalidOptions = 11

// tagScanBudget bounds the records one filtered page reads from the
// datastore: a filter that matches little answers a short (even empty)
// page with a next link instead of scanning the whole collection in one
// request. Kong's filtered pages may be short too.
const tagScanBudget = 1000

// tagFilter is Kong's ?tags= list filter: "a,b" keeps entities tagged
// with both, "a/b" those tagged with either.
type tagFilter struct {
	tags []string
	any  bool // "/" (or); otherwise "," (and)
}

// tagQuery reads ?tags=; nil when absent.
func tagQuery(r *http.Request) (*tagFilter, error) {
	vals, ok := r.URL.Query()["tags"]
	if !ok {
		return nil, nil
	}
	raw := vals[0]
	if raw == "" {
		return nil, invalidTags("tags: cannot be null")
	}
	f := &tagFilter{}
	sep := ","
	if strings.Contains(raw, "/") {
		if strings.Contains(raw, ",") {
			return nil, invalidTags("tags: invalid filter syntax")
		}
		f.any, sep = true, "/"
	}
	for _, t := range strings.Split(raw, sep) {
		if !validTag(t) {
			return nil, invalidTags("tags: invalid filter syntax")
		}
		f.tags = append(f.tags, t)
	}
	return f, nil
}

// validTag is the entity schema's rule for a tag: printable ASCII except
// "," and "/", or valid UTF-8, not empty.
func validTag(t string) bool {
	return t != "" && utf8.ValidString(t) && !strings.ContainsAny(t, ",/") && strings.IndexFunc(t, unicode.IsControl) < 0
}

func invalidTags(msg string) error {
	return &apiError{status: http.StatusBadRequest, body: kongError{Code: codeInvalidOptions,
		Name: "invalid options", Message: fmt.Sprintf("invalid option (%s)", msg)}}
}

// match reports whether an entity tagged with tags passes the filter.
func (f *tagFilter) match(tags []string) bool {
	for _, t := range f.tags {
		has := slices.Contains(tags, t)
		if f.any && has {
			return true
		}
		if !f.any && !has {
			return false
		}
	}
	return !f.any
}

// recordTags reads the tags of a stored entity.
func recordTags(rec store.Record) ([]string, error) {
	var doc struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(rec.Data, &doc); err != nil {
		return nil, fmt.Errorf("admin: stored %s %s: %w", rec.Kind, rec.ID, err)
	}
	return doc.Tags, nil
}

// listTagged pages through q's collection keeping the records f matches,
// until q.Size of them are found, the collection ends or tagScanBudget
// records were read. Each read asks for no more records than are still
// wanted, so the page's next offset never skips an unread record. A full
// page then looks ahead (within the budget) for one more match, so that,
// as in Kong, the last page has no offset.
func (h *handler) listTagged(ctx context.Context, q store.ListQuery, f *tagFilter) (store.Page, error) {
	want := q.Size
	var out store.Page
	for scanned := 0; ; {
		q.Size = want - len(out.Records)
		p, err := h.store.List(ctx, q)
		if err != nil {
			return store.Page{}, err
		}
		scanned += len(p.Records)
		for _, rec := range p.Records {
			ok, err := f.matchRecord(rec)
			if err != nil {
				return store.Page{}, err
			}
			if ok {
				out.Records = append(out.Records, rec)
			}
		}
		q.Offset, out.Next = p.Next, p.Next
		switch {
		case p.Next == "" || scanned >= tagScanBudget:
			return out, nil
		case len(out.Records) == want:
			more, err := h.anyTagged(ctx, q, f, tagScanBudget-scanned)
			if err != nil {
				return store.Page{}, err
			}
			if !more {
				out.Next = ""
			}
			return out, nil
		}
	}
}

// anyTagged reports whether q's collection, from q.Offset on, has a record
// f matches. It reads at most budget records and reports true when it
// gives up, so that the caller keeps its next offset.
func (h *handler) anyTagged(ctx context.Context, q store.ListQuery, f *tagFilter, budget int) (bool, error) {
	for budget > 0 {
		q.Size = min(budget, maxPageSize)
		p, err := h.store.List(ctx, q)
		if err != nil {
			return false, err
		}
		budget -= len(p.Records)
		for _, rec := range p.Records {
			if ok, err := f.matchRecord(rec); ok || err != nil {
				return ok, err
			}
		}
		if p.Next == "" {
			return false, nil
		}
		q.Offset = p.Next
	}
	return true, nil
}

// matchRecord reports whether the stored entity rec passes the filter.
func (f *tagFilter) matchRecord(rec store.Record) (bool, error) {
	tags, err := recordTags(rec)
	return err == nil && f.match(tags), err
}

// taggedKinds are the kinds /tags lists, in Kong's entity names and in the
// order pages walk them.
var taggedKinds = []entity.Kind{entity.KindCertificate, entity.KindService, entity.KindRoute, entity.KindConsumer,
	entity.KindPlugin, entity.KindKeyAuth, entity.KindBasicAuth, entity.KindJWT}

// tagRow is one entry of GET /tags: an entity and one of its tags.
type tagRow struct {
	EntityName string `json:"entity_name"`
	EntityID   string `json:"entity_id"`
	Tag        string `json:"tag"`
}

// tagPage is the body of GET /tags and /tags/{tag}.
type tagPage struct {
	Data   []tagRow `json:"data"`
	Offset string   `json:"offset,omitempty"`
	Next   *string  `json:"next"`
}

// listTags serves GET /tags (every tag of every entity) and GET
// /tags/{tag} (the entities tagged tag). It walks the kinds in turn; its
// offset names the kind and that kind's own offset. A page holds the tags
// of whole entities, so it may exceed size by the other tags of its last
// entity; like a ?tags= page it reads at most tagScanBudget records.
func (h *handler) listTags(w http.ResponseWriter, r *http.Request, args []string) error {
	only := ""
	if len(args) > 0 {
		only = args[0]
		if !validTag(only) {
			return &apiError{status: http.StatusBadRequest, body: message{Message: "invalid value: " + only}}
		}
	}
	q, err := pageQuery(r, "")
	if err != nil {
		return err
	}
	kind, off, err := decodeTagOffset(q.Offset)
	if err != nil {
		return listError(err, q.Offset)
	}
	size := q.Size
	body := tagPage{Data: []tagRow{}}
	for scanned := 0; kind < len(taggedKinds); {
		p, err := h.store.List(r.Context(), store.ListQuery{Kind: taggedKinds[kind], Size: size - len(body.Data), Offset: off})
		if err != nil {
			return listError(err, q.Offset)
		}
		scanned += len(p.Records)
		for _, rec := range p.Records {
			tags, err := recordTags(rec)
			if err != nil {
				return err
			}
			for _, t := range tags {
				if only == "" || t == only {
					body.Data = append(body.Data, tagRow{EntityName: string(rec.Kind), EntityID: rec.ID, Tag: t})
				}
			}
		}
		off = p.Next
		if off == "" {
			kind++
		}
		if len(body.Data) >= size || scanned >= tagScanBudget {
			break
		}
	}
	if kind < len(taggedKinds) {
		body.Offset = encodeTagOffset(kind, off)
		body.Next = nextLink(r, body.Offset)
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// encodeTagOffset and decodeTagOffset make /tags offsets: the kind's index
// and its own store offset, base64url-encoded.
func encodeTagOffset(kind int, off string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(kind) + "." + off))
}

func decodeTagOffset(s string) (int, string, error) {
	if s == "" {
		return 0, "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, "", store.ErrInvalidOffset
	}
	k, off, ok := strings.Cut(string(raw), ".")
	kind, err := strconv.Atoi(k)
	if !ok || err != nil || kind < 0 || kind >= len(taggedKinds) {
		return 0, "", store.ErrInvalidOffset
	}
	return kind, off, nil
}

package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

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

// listTagged pages through q's collection keeping the records f matches,
// until q.Size of them are found, the collection ends or tagScanBudget
// records were read. Each read asks for no more records than are still
// wanted, so the page's next offset never skips an unread record.
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
			var doc struct {
				Tags []string `json:"tags"`
			}
			if err := json.Unmarshal(rec.Data, &doc); err != nil {
				return store.Page{}, fmt.Errorf("admin: stored %s %s: %w", q.Kind, rec.ID, err)
			}
			if f.match(doc.Tags) {
				out.Records = append(out.Records, rec)
			}
		}
		q.Offset, out.Next = p.Next, p.Next
		if p.Next == "" || len(out.Records) == want || scanned >= tagScanBudget {
			return out, nil
		}
	}
}

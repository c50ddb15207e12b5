package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// Kong's page sizes (K@2.8.0:kong/api/endpoints.lua).
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// page is Kong's list body. Offset is absent and Next null on the last
// page.
type page struct {
	Data   []json.RawMessage `json:"data"`
	Offset string            `json:"offset,omitempty"`
	Next   *string           `json:"next"`
}

// pageQuery reads ?size= and ?offset=.
func pageQuery(r *http.Request, kind entity.Kind) (store.ListQuery, error) {
	q := store.ListQuery{Kind: kind, Size: defaultPageSize, Offset: r.URL.Query().Get("offset")}
	if s := r.URL.Query().Get("size"); s != "" {
		n, err := strconv.ParseFloat(s, 64)
		switch {
		case err != nil:
			return q, invalidSize("size must be a number")
		case n < 1 || n > maxPageSize || n != float64(int(n)):
			return q, invalidSize(fmt.Sprintf("size must be an integer between 1 and %d", maxPageSize))
		}
		q.Size = int(n)
	}
	return q, nil
}

// listError maps a List error; an unknown offset is Kong's code 7.
func listError(err error, offset string) error {
	if errors.Is(err, store.ErrInvalidOffset) {
		return &apiError{status: http.StatusBadRequest, body: kongError{Code: codeInvalidOffset,
			Name: "invalid offset", Message: fmt.Sprintf("'%s' is not a valid offset", offset)}}
	}
	return fmt.Errorf("admin: cannot list: %w", err)
}

// writePage answers p, with a next link to the same path. Expired
// key-auth credentials are left out, as Kong no longer returns them.
func (h *handler) writePage(w http.ResponseWriter, r *http.Request, p store.Page) {
	body := page{Data: make([]json.RawMessage, 0, len(p.Records))}
	for _, rec := range p.Records {
		if data, ok := h.present(rec); ok {
			body.Data = append(body.Data, data)
		}
	}
	if p.Next != "" {
		body.Offset, body.Next = p.Next, nextLink(r, p.Next)
	}
	writeJSON(w, http.StatusOK, body)
}

// nextLink is the path of the page after r's, at offset, carrying r's
// size and tags, as Kong's next links do.
func nextLink(r *http.Request, offset string) *string {
	v := url.Values{"offset": {offset}}
	for _, carried := range []string{"size", "tags"} {
		if s := r.URL.Query().Get(carried); s != "" {
			v.Set(carried, s)
		}
	}
	next := r.URL.EscapedPath() + "?" + v.Encode()
	return &next
}

package admin

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// defaultKeysLimit is the default ?size= of GET /cache.
const defaultKeysLimit = 100

// cacheGet serves GET /cache/{key}: the cached entity, or 404 when nothing
// or a miss is cached.
func (h *handler) cacheGet(w http.ResponseWriter, _ *http.Request, args []string) error {
	key, ok := entity.ParseCacheKey(args[0])
	if !ok || h.cache == nil {
		return errNotFound
	}
	e, negative, ok := h.cache.Peek(key)
	if !ok || negative || e == nil {
		return errNotFound
	}
	data, err := json.Marshal(e)
	if err != nil {
		return unexpected(err)
	}
	writeRaw(w, http.StatusOK, data)
	return nil
}

// cacheInvalidate serves DELETE /cache/{key}: this node only, as Kong.
func (h *handler) cacheInvalidate(w http.ResponseWriter, _ *http.Request, args []string) error {
	if key, ok := entity.ParseCacheKey(args[0]); ok && h.cache != nil {
		h.cache.Invalidate(key)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// cachePurge serves DELETE /cache: everything cached on this node.
func (h *handler) cachePurge(w http.ResponseWriter, _ *http.Request, _ []string) error {
	if h.cache != nil {
		h.cache.Purge()
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// cacheKeys serves GET /cache?prefix=&size= (beyond Kong): the cached keys.
func (h *handler) cacheKeys(w http.ResponseWriter, r *http.Request, _ []string) error {
	limit := defaultKeysLimit
	if s := r.URL.Query().Get("size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return invalidSize("size must be a number")
		}
		if n < 1 || n > maxPageSize {
			return invalidSize("size must be an integer between 1 and 1000")
		}
		limit = n
	}
	keys := []string{}
	if h.cache != nil {
		keys = append(keys, h.cache.Keys(r.URL.Query().Get("prefix"), limit)...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": keys})
	return nil
}

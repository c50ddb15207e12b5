// Package cachebackends defines the byte-level cache contract that every
// cache library adapter implements. Adapters are deliberately dumb: negative
// caching, singleflight, decoding and metrics live in gateway/cache above
// them, as database/sql's generic layer sits above its drivers.
//
// Every adapter passes the conformance suite cachetest.Run.
package cachebackends

import "time"

// Backend is a byte cache. Implementations are safe for concurrent use.
// Keys and values passed in are not retained after the call returns (an
// adapter copies what it keeps); a value returned by Get belongs to the
// caller.
type Backend interface {
	// Get returns the value stored under key and whether it was found and
	// not expired.
	Get(key []byte) ([]byte, bool)
	// Set stores value under key for ttl; ttl <= 0 means no expiry. It
	// returns an error when the value cannot be stored (too large, or the
	// backend is unreachable).
	Set(key, value []byte, ttl time.Duration) error
	// Delete removes key. Deleting a missing key is not an error.
	Delete(key []byte)
	// Clear removes every key.
	Clear()
}

// Stats is a point-in-time snapshot of a backend's own counters. A backend
// that cannot tell a figure reports -1 for it.
type Stats struct {
	Entries   int64
	Bytes     int64
	Evictions int64
}

// Statser is implemented by backends that count their entries, size and
// evictions. gateway/cache reads it at scrape time.
type Statser interface {
	Stats() Stats
}

// Ranger is implemented by backends that can enumerate their keys (for the
// Admin API's GET /cache?prefix=). fn is called for each key until it
// returns false; the key slice is only valid during the call.
type Ranger interface {
	Range(fn func(key []byte) bool)
}

// Closer is implemented by backends that hold resources (connections).
type Closer interface {
	Close() error
}

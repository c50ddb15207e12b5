// Package none is a cachebackends.Backend that stores nothing: every Get
// misses. With it, gateway/cache keeps only its decoded L1 and negative
// entries; use it to measure the cache's own cost or to run without L2.
package none

import (
	"time"

	"github.com/sluice-gw/sluice/cachebackends"
)

// Config configures a Backend. It has no settings.
type Config struct{}

// Backend discards everything. Its zero value is ready to use and safe for
// concurrent use.
type Backend struct{}

// New returns a Backend.
func New(Config) (*Backend, error) { return &Backend{}, nil }

// Get implements cachebackends.Backend; it always misses.
func (*Backend) Get([]byte) ([]byte, bool) { return nil, false }

// Set implements cachebackends.Backend; it keeps nothing.
func (*Backend) Set([]byte, []byte, time.Duration) error { return nil }

// Delete implements cachebackends.Backend.
func (*Backend) Delete([]byte) {}

// Clear implements cachebackends.Backend.
func (*Backend) Clear() {}

// Stats implements cachebackends.Statser: always empty.
func (*Backend) Stats() cachebackends.Stats { return cachebackends.Stats{} }

var (
	_ cachebackends.Backend = (*Backend)(nil)
	_ cachebackends.Statser = (*Backend)(nil)
)

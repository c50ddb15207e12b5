package cachebackends

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultMemCacheSize is Kong's default mem_cache_size, 128m.
const DefaultMemCacheSize = 128 << 20

// ParseSize parses a size as Kong writes mem_cache_size: a number of bytes
// with an optional k, m or g suffix (powers of 1024), e.g. "128m".
func ParseSize(s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1
	switch {
	case strings.HasSuffix(t, "k"):
		mult, t = 1<<10, strings.TrimSuffix(t, "k")
	case strings.HasSuffix(t, "m"):
		mult, t = 1<<20, strings.TrimSuffix(t, "m")
	case strings.HasSuffix(t, "g"):
		mult, t = 1<<30, strings.TrimSuffix(t, "g")
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("invalid size %q: want a positive number of bytes with an optional k, m or g suffix, e.g. 128m", s)
	}
	return n * mult, nil
}

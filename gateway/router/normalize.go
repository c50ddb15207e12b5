package router

import (
	"bytes"
	"strings"
)

// Normalize returns path in the normal form routes are matched against, as
// Kong's normalize(uri, merge_slashes): percent-encoded unreserved
// characters (ALPHA, DIGIT, "-", ".", "_", "~") are decoded, the hex digits
// of the remaining %-triplets are uppercased, "//" runs are merged and dot
// segments are removed. A lone "%" not followed by two hex digits is kept
// as is. Normalize is idempotent and returns path itself, without
// allocating, when it is already normal.
func Normalize(path string) string {
	// Decoding can join a literal "%" with decoded hex characters into a new
	// triplet ("%%61b" gives "%ab"), so repeat until nothing changes. Every
	// pass that is not the last shrinks the path, so this ends.
	for !isNormal(path) {
		path = normalizeOnce(path)
	}
	return path
}

// isNormal reports whether normalizeOnce would return path unchanged.
func isNormal(path string) bool {
	// Fast check, vectorized by the strings package: without these
	// substrings nothing can change.
	if strings.IndexByte(path, '%') < 0 && !strings.Contains(path, "//") &&
		!strings.Contains(path, "/.") && !strings.HasPrefix(path, ".") {
		return true
	}
	segStart := 0
	for i := 0; i < len(path); i++ {
		switch path[i] {
		case '%':
			if v, ok := triplet(path, i); ok {
				if unreserved(v) || hasLowerHex(path[i+1:i+3]) {
					return false
				}
				i += 2
			}
		case '/':
			if i > 0 && path[i-1] == '/' || isDotSegment(path[segStart:i]) {
				return false
			}
			segStart = i + 1
		}
	}
	return !isDotSegment(path[segStart:])
}

// normalizeOnce runs one pass of decoding, slash merging and dot-segment
// removal.
func normalizeOnce(path string) string {
	d := decode(path)
	out := make([]byte, 0, len(d)+1)
	segs := 0
	for seg := range strings.SplitSeq(d, "/") {
		switch seg {
		case "", ".":
		case "..":
			if segs > 0 {
				out = out[:bytes.LastIndexByte(out, '/')]
				segs--
			}
		default:
			out = append(out, '/')
			out = append(out, seg...)
			segs++
		}
	}
	last := d[strings.LastIndexByte(d, '/')+1:]
	if segs > 0 && (last == "" || isDotSegment(last)) {
		out = append(out, '/')
	}
	if !strings.HasPrefix(d, "/") {
		if len(out) > 0 {
			out = out[1:]
		}
		return string(out)
	}
	if len(out) == 0 {
		return "/"
	}
	return string(out)
}

// decode decodes %-triplets of unreserved characters and uppercases the hex
// digits of the others.
func decode(path string) string {
	if strings.IndexByte(path, '%') < 0 {
		return path
	}
	var b strings.Builder
	b.Grow(len(path))
	for i := 0; i < len(path); i++ {
		v, ok := triplet(path, i)
		switch {
		case !ok:
			b.WriteByte(path[i])
			continue
		case unreserved(v):
			b.WriteByte(v)
		default:
			const hex = "0123456789ABCDEF"
			b.WriteByte('%')
			b.WriteByte(hex[v>>4])
			b.WriteByte(hex[v&15])
		}
		i += 2
	}
	return b.String()
}

// triplet reports whether path[i:] starts with a %-triplet and returns its
// value.
func triplet(path string, i int) (byte, bool) {
	if path[i] != '%' || i+2 >= len(path) {
		return 0, false
	}
	hi, ok1 := unhex(path[i+1])
	lo, ok2 := unhex(path[i+2])
	return hi<<4 | lo, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func hasLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'f' {
			return true
		}
	}
	return false
}

// unreserved reports whether c is an RFC 3986 unreserved character.
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func isDotSegment(s string) bool { return s == "." || s == ".." }

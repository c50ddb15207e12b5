package entity

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/google/uuid"
)

// FieldType is the JSON type of an entity field, as Kong's schema types.
type FieldType uint8

// The field types.
const (
	// TypeString is a JSON string.
	TypeString FieldType = iota + 1
	// TypeInteger is a JSON number without a fraction.
	TypeInteger
	// TypeBoolean is true or false.
	TypeBoolean
	// TypeSet is an array of distinct strings.
	TypeSet
	// TypeArray is an array of strings.
	TypeArray
	// TypeHeaders is an object whose values are arrays of strings.
	TypeHeaders
	// TypeForeign is a reference, {"id": "<uuid>"}.
	TypeForeign
	// TypeRecord is an object whose schema is not the entity's (a plugin's
	// config).
	TypeRecord
)

// Field describes one writable field of an entity.
type Field struct {
	Type FieldType
	// Nullable fields accept JSON null; for the others null means "use the
	// default".
	Nullable bool
}

// fields holds the writable fields of every kind. It is never modified.
var fields = map[Kind]map[string]Field{
	KindService: {
		"id": {Type: TypeString}, "created_at": {Type: TypeInteger}, "updated_at": {Type: TypeInteger},
		"name": {Type: TypeString, Nullable: true}, "retries": {Type: TypeInteger},
		"protocol": {Type: TypeString}, "host": {Type: TypeString}, "port": {Type: TypeInteger},
		"path": {Type: TypeString, Nullable: true}, "connect_timeout": {Type: TypeInteger},
		"write_timeout": {Type: TypeInteger}, "read_timeout": {Type: TypeInteger},
		"tags": {Type: TypeSet, Nullable: true}, "enabled": {Type: TypeBoolean},
	},
	KindRoute: {
		"id": {Type: TypeString}, "created_at": {Type: TypeInteger}, "updated_at": {Type: TypeInteger},
		"name": {Type: TypeString, Nullable: true}, "protocols": {Type: TypeSet},
		"methods": {Type: TypeSet, Nullable: true}, "hosts": {Type: TypeArray, Nullable: true},
		"paths": {Type: TypeArray, Nullable: true}, "headers": {Type: TypeHeaders, Nullable: true},
		"https_redirect_status_code": {Type: TypeInteger}, "regex_priority": {Type: TypeInteger},
		"strip_path": {Type: TypeBoolean}, "path_handling": {Type: TypeString},
		"preserve_host": {Type: TypeBoolean}, "request_buffering": {Type: TypeBoolean},
		"response_buffering": {Type: TypeBoolean}, "tags": {Type: TypeSet, Nullable: true},
		"service": {Type: TypeForeign, Nullable: true},
	},
	KindConsumer: {
		"id": {Type: TypeString}, "created_at": {Type: TypeInteger}, "updated_at": {Type: TypeInteger},
		"username": {Type: TypeString, Nullable: true}, "custom_id": {Type: TypeString, Nullable: true},
		"tags": {Type: TypeSet, Nullable: true},
	},
	KindPlugin: {
		"id": {Type: TypeString}, "created_at": {Type: TypeInteger}, "updated_at": {Type: TypeInteger},
		"name": {Type: TypeString}, "route": {Type: TypeForeign, Nullable: true},
		"service": {Type: TypeForeign, Nullable: true}, "consumer": {Type: TypeForeign, Nullable: true},
		"config": {Type: TypeRecord}, "protocols": {Type: TypeSet}, "enabled": {Type: TypeBoolean},
		"tags": {Type: TypeSet, Nullable: true},
	},
	KindKeyAuth: {
		"id": {Type: TypeString}, "created_at": {Type: TypeInteger},
		"consumer": {Type: TypeForeign, Nullable: true}, "key": {Type: TypeString},
		"ttl": {Type: TypeInteger, Nullable: true}, "tags": {Type: TypeSet, Nullable: true},
	},
}

// Fields returns the writable fields of kind k by JSON name, or nil for an
// unknown kind. The map is shared: callers must not modify it.
func Fields(k Kind) map[string]Field { return fields[k] }

// FieldErrors maps a field name to what is wrong with its value. The key
// "@entity" holds errors about the entity as a whole.
type FieldErrors map[string]string

// Validate checks e against Kong's rules for its kind and returns one error
// per offending field, or nil when e is valid. It expects defaults to have
// been applied already (see Default).
func Validate(e Entity) FieldErrors {
	errs := FieldErrors{}
	if e.PrimaryKey() != "" {
		if _, err := uuid.Parse(e.PrimaryKey()); err != nil {
			errs["id"] = "expected a valid UUID"
		}
	}
	switch v := e.(type) {
	case *Service:
		validateService(v, errs)
	case *Route:
		validateRoute(v, errs)
	case *Consumer:
		validateConsumer(v, errs)
	case *Plugin:
		validatePlugin(v, errs)
	case *KeyAuthCredential:
		validateKeyAuth(v, errs)
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func validateService(s *Service, errs FieldErrors) {
	checkName(s.Name, errs)
	checkTags(s.Tags, errs)
	checkBetween(errs, "retries", s.Retries, 0, 32767)
	checkBetween(errs, "port", s.Port, 0, 65535)
	checkBetween(errs, "connect_timeout", s.ConnectTimeout, 1, 1<<31-2)
	checkBetween(errs, "write_timeout", s.WriteTimeout, 1, 1<<31-2)
	checkBetween(errs, "read_timeout", s.ReadTimeout, 1, 1<<31-2)
	checkOneOf(errs, "protocol", s.Protocol, "http", "https")
	switch {
	case s.Host == "":
		errs["host"] = "required field missing"
	case !validHost(s.Host):
		errs["host"] = "invalid value: " + s.Host
	}
	if s.Path != nil {
		switch {
		case !strings.HasPrefix(*s.Path, "/"):
			errs["path"] = "should start with: /"
		case strings.Contains(*s.Path, "//"):
			errs["path"] = "must not have empty segments"
		}
	}
}

func validateRoute(r *Route, errs FieldErrors) {
	checkName(r.Name, errs)
	checkTags(r.Tags, errs)
	switch {
	case len(r.Protocols) == 0:
		errs["protocols"] = "required field missing"
	default:
		for _, p := range r.Protocols {
			checkOneOf(errs, "protocols", p, "http", "https")
		}
	}
	if len(r.Methods) == 0 && len(r.Hosts) == 0 && len(r.Paths) == 0 && len(r.Headers) == 0 {
		errs["@entity"] = "must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' is 'http' or 'https'"
	}
	for _, m := range r.Methods {
		if m == "" || strings.IndexFunc(m, func(c rune) bool { return c < 'A' || c > 'Z' }) >= 0 {
			errs["methods"] = "invalid value: " + m
		}
	}
	for _, h := range r.Hosts {
		if msg := checkRouteHost(h); msg != "" {
			errs["hosts"] = msg
		}
	}
	for _, p := range r.Paths {
		if msg := CheckRoutePath(p); msg != "" {
			errs["paths"] = msg
		}
	}
	for name, values := range r.Headers {
		switch {
		case strings.EqualFold(name, "host"):
			errs["headers"] = "cannot contain 'host' header"
		case name == "" || len(values) == 0:
			errs["headers"] = "invalid value for header '" + name + "'"
		}
	}
	checkOneOf(errs, "https_redirect_status_code", strconv.Itoa(r.HTTPSRedirectStatusCode),
		"426", "301", "302", "307", "308")
	checkOneOf(errs, "path_handling", r.PathHandling, "v0", "v1")
	checkBetween(errs, "regex_priority", r.RegexPriority, -(1 << 31), 1<<31-1)
	checkRef(r.Service, "service", errs)
}

func validateConsumer(c *Consumer, errs FieldErrors) {
	checkTags(c.Tags, errs)
	if str(c.Username) == "" && str(c.CustomID) == "" {
		errs["@entity"] = "at least one of these fields must be non-empty: 'custom_id', 'username'"
	}
}

func validatePlugin(p *Plugin, errs FieldErrors) {
	checkTags(p.Tags, errs)
	if p.Name == "" {
		errs["name"] = "required field missing"
	}
	if len(p.Protocols) == 0 {
		errs["protocols"] = "required field missing"
	}
	for _, proto := range p.Protocols {
		checkOneOf(errs, "protocols", proto, PluginProtocols...)
	}
	checkRef(p.Route, "route", errs)
	checkRef(p.Service, "service", errs)
	checkRef(p.Consumer, "consumer", errs)
}

func validateKeyAuth(k *KeyAuthCredential, errs FieldErrors) {
	checkTags(k.Tags, errs)
	if k.Key == "" {
		errs["key"] = "required field missing"
	}
	if k.Consumer == nil {
		errs["consumer"] = "required field missing"
	}
	checkRef(k.Consumer, "consumer", errs)
	if k.TTL != nil {
		checkBetween(errs, "ttl", *k.TTL, 0, 100000000)
	}
}

// CheckRoutePath returns why p is not a valid route path, or "" when it
// is: a plain path starts with "/", a regex path is "~" followed by a Go
// regular expression.
func CheckRoutePath(p string) string {
	if re, ok := strings.CutPrefix(p, "~"); ok {
		if _, err := regexp.Compile(re); err != nil {
			return fmt.Sprintf("invalid regex: '%s' (%v)", p, err)
		}
		return ""
	}
	switch {
	case !strings.HasPrefix(p, "/"):
		return "should start with: / (fixed path) or ~/ (regex path)"
	case strings.Contains(p, "//"):
		return "must not have empty segments"
	}
	return ""
}

// checkRouteHost returns why h is not a valid route host ("" when it is):
// a hostname with an optional port, or one with a single wildcard as its
// leftmost or rightmost label.
func checkRouteHost(h string) string {
	name := h
	if host, port, err := net.SplitHostPort(h); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return "invalid port number"
		}
		name = host
	}
	switch n := strings.Count(name, "*"); {
	case n > 1:
		return "invalid wildcard: must have at most one wildcard"
	case n == 1:
		if !strings.HasPrefix(name, "*.") && !strings.HasSuffix(name, ".*") {
			return "invalid wildcard: must be placed at leftmost or rightmost label"
		}
		name = strings.Replace(name, "*", "wildcard", 1)
	}
	if !validHost(name) {
		return "invalid value: " + h
	}
	return ""
}

// validHost reports whether h is an IP address or a DNS hostname.
func validHost(h string) bool {
	if net.ParseIP(strings.Trim(h, "[]")) != nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return false
			}
		}
	}
	return true
}

func checkName(name *string, errs FieldErrors) {
	if name == nil {
		return
	}
	ok := *name != "" && strings.IndexFunc(*name, func(c rune) bool {
		return !unicode.IsLetter(c) && !unicode.IsDigit(c) && !strings.ContainsRune(".-_~", c)
	}) < 0
	if !ok {
		errs["name"] = fmt.Sprintf("invalid value '%s': it must only contain alphanumeric and '., -, _, ~' characters", *name)
	}
}

func checkTags(tags []string, errs FieldErrors) {
	for _, t := range tags {
		if t == "" || strings.ContainsAny(t, ",/") || strings.IndexFunc(t, unicode.IsControl) >= 0 {
			errs["tags"] = fmt.Sprintf("invalid tag '%s': expected printable ascii (except `,` and `/`) or valid utf-8 sequences", t)
		}
	}
}

func checkRef(r *Ref, field string, errs FieldErrors) {
	if r == nil {
		return
	}
	if _, err := uuid.Parse(r.ID); err != nil {
		errs[field] = "expected a valid UUID"
	}
}

func checkBetween(errs FieldErrors, field string, v, lo, hi int) {
	if v < lo || v > hi {
		errs[field] = fmt.Sprintf("value should be between %d and %d", lo, hi)
	}
}

func checkOneOf(errs FieldErrors, field, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		errs[field] = "expected one of: " + strings.Join(allowed, ", ")
	}
}

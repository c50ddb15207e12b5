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
	checkFields(e, errs)
	switch v := e.(type) {
	case *Certificate:
		validateCertificate(v, errs)
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
	case *BasicAuthCredential:
		checkTags(v.Tags, errs)
		checkRef(v.Consumer, "consumer", errs)
	case *JWTSecret:
		validateJWT(v, errs)
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func validateService(s *Service, errs FieldErrors) {
	checkName(s.Name, errs)
	checkRef(s.ClientCertificate, "client_certificate", errs)
	if s.ClientCertificate != nil && s.Protocol != "https" {
		errs["client_certificate"] = "value must be null"
	}
	checkTags(s.Tags, errs)
	if s.Host != "" && !validHost(s.Host) {
		errs["host"] = "invalid value: " + s.Host
	}
	if s.Path != nil && strings.HasPrefix(*s.Path, "/") && strings.Contains(*s.Path, "//") {
		errs["path"] = "must not have empty segments"
	}
}

func validateRoute(r *Route, errs FieldErrors) {
	checkName(r.Name, errs)
	checkTags(r.Tags, errs)
	checkProtocols(r, errs)
	if len(r.Snis) > 0 && !slices.ContainsFunc(r.Protocols, func(p string) bool {
		return p == "https" || p == "grpcs" || p == "tls" || p == "tls_passthrough"
	}) {
		errs["snis"] = "'snis' can only be set when 'protocols' is 'grpcs', 'tls', 'https', 'tls_passthrough'"
	}
	for _, sni := range r.Snis {
		if !validHost(sni) || net.ParseIP(sni) != nil {
			errs["snis"] = "invalid value: " + sni
		}
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
	for field, eps := range map[string][]CIDRPort{"sources": r.Sources, "destinations": r.Destinations} {
		for _, bad := range CIDRPortErrors(eps) {
			for _, msg := range bad {
				errs[field] = msg
			}
		}
	}
	checkRef(r.Service, "service", errs)
}

// protocolGroups are the sets of route protocols that exclude each other
// (Kong's mutually_exclusive_subsets), each with the rules of Kong's route
// subschema for it.
var protocolGroups = []struct {
	protocols []string
	check     func(r *Route, errs FieldErrors)
}{
	{[]string{"http", "https"}, checkHTTPRoute},
	{[]string{"tcp", "tls", "udp"}, checkStreamRoute},
	{[]string{"tls_passthrough"}, checkStreamRoute},
	{[]string{"grpc", "grpcs"}, checkGRPCRoute},
}

// checkProtocols refuses protocols from more than one group, then checks
// the fields the route's group allows and requires.
func checkProtocols(r *Route, errs FieldErrors) {
	var groups []int
	for i, g := range protocolGroups {
		if slices.ContainsFunc(r.Protocols, func(p string) bool { return slices.Contains(g.protocols, p) }) {
			groups = append(groups, i)
		}
	}
	switch len(groups) {
	case 0:
		return // no protocols: a required field, reported by checkFields
	case 1:
		protocolGroups[groups[0]].check(r, errs)
		return
	}
	sets := make([]string, len(protocolGroups))
	for i, g := range protocolGroups {
		sets[i] = "('" + strings.Join(g.protocols, "', '") + "')"
	}
	errs["protocols"] = "these sets are mutually exclusive: " + strings.Join(sets, ", ")
}

func checkHTTPRoute(r *Route, errs FieldErrors) {
	refuse := func(field string, set bool) {
		if set {
			errs[field] = "cannot set '" + field + "' when 'protocols' is 'http' or 'https'"
		}
	}
	refuse("sources", len(r.Sources) > 0)
	refuse("destinations", len(r.Destinations) > 0)
	if len(r.Methods) == 0 && len(r.Hosts) == 0 && len(r.Paths) == 0 && len(r.Headers) == 0 &&
		!(len(r.Snis) > 0 && slices.Contains(r.Protocols, "https")) {
		errs["@entity"] = "must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' is 'http' or 'https'"
	}
}

func checkStreamRoute(r *Route, errs FieldErrors) {
	refuse := func(field string, set bool) {
		if set {
			errs[field] = "cannot set '" + field + "' when 'protocols' is 'tcp', 'tls', 'tls_passthrough' or 'udp'"
		}
	}
	refuse("methods", len(r.Methods) > 0)
	refuse("hosts", len(r.Hosts) > 0)
	refuse("paths", len(r.Paths) > 0)
	refuse("headers", len(r.Headers) > 0)
	switch {
	case slices.Contains(r.Protocols, "tls_passthrough"):
		if len(r.Snis) == 0 {
			errs["@entity"] = "must set snis when 'protocols' is 'tls_passthrough'"
		}
	case len(r.Sources) == 0 && len(r.Destinations) == 0 && len(r.Snis) == 0:
		errs["@entity"] = "must set one of 'sources', 'destinations', 'snis' when 'protocols' is 'tcp', 'tls' or 'udp'"
	}
}

func checkGRPCRoute(r *Route, errs FieldErrors) {
	refuse := func(field string, set bool) {
		if set {
			errs[field] = "cannot set '" + field + "' when 'protocols' is 'grpc' or 'grpcs'"
		}
	}
	refuse("strip_path", r.StripPath)
	refuse("methods", len(r.Methods) > 0)
	refuse("sources", len(r.Sources) > 0)
	refuse("destinations", len(r.Destinations) > 0)
	if len(r.Hosts) > 0 || len(r.Headers) > 0 || len(r.Paths) > 0 {
		return
	}
	switch {
	case !slices.Contains(r.Protocols, "grpcs"):
		errs["@entity"] = "must set one of 'hosts', 'headers', 'paths' when 'protocols' is 'grpc'"
	case len(r.Snis) == 0:
		errs["@entity"] = "must set one of 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'grpcs'"
	}
}

// CIDRPortErrors checks the elements of a route's sources or destinations
// as Kong does (an IP or CIDR range, a port between 0 and 65535, at least
// one of the two) and returns, for each element, what is wrong with it by
// field ("@entity" for the element as a whole), nil for a good one. The
// result is nil when every element is good.
func CIDRPortErrors(eps []CIDRPort) []map[string]string {
	var out []map[string]string
	for i, ep := range eps {
		bad := map[string]string{}
		if ep.IP == nil && ep.Port == nil {
			bad["@entity"] = "at least one of these fields must be non-empty: 'ip', 'port'"
		}
		if ep.IP != nil && !validIPOrCIDR(*ep.IP) {
			bad["ip"] = "invalid ip or cidr range: '" + *ep.IP + "'"
		}
		if ep.Port != nil && (*ep.Port < 0 || *ep.Port > 65535) {
			bad["port"] = "value should be between 0 and 65535"
		}
		if len(bad) == 0 {
			continue
		}
		if out == nil {
			out = make([]map[string]string, len(eps))
		}
		out[i] = bad
	}
	return out
}

func validIPOrCIDR(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	_, _, err := net.ParseCIDR(s)
	return err == nil
}

func validateConsumer(c *Consumer, errs FieldErrors) {
	checkTags(c.Tags, errs)
	if str(c.Username) == "" && str(c.CustomID) == "" {
		errs["@entity"] = "at least one of these fields must be non-empty: 'custom_id', 'username'"
	}
}

func validatePlugin(p *Plugin, errs FieldErrors) {
	checkTags(p.Tags, errs)
	checkNameField(p.InstanceName, "instance_name", errs)
	checkRef(p.Route, "route", errs)
	checkRef(p.Service, "service", errs)
	checkRef(p.Consumer, "consumer", errs)
}

func validateKeyAuth(k *KeyAuthCredential, errs FieldErrors) {
	checkTags(k.Tags, errs)
	if k.Key == "" {
		errs["key"] = "required field missing"
	}
	checkRef(k.Consumer, "consumer", errs)
}

// jwtNeedsPublicKey are the algorithms whose secrets must have an
// rsa_public_key (Kong's entity check).
var jwtNeedsPublicKey = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}

func validateJWT(j *JWTSecret, errs FieldErrors) {
	checkTags(j.Tags, errs)
	checkRef(j.Consumer, "consumer", errs)
	switch {
	case j.RSAPublicKey == nil || *j.RSAPublicKey == "":
		if slices.Contains(jwtNeedsPublicKey, j.Algorithm) {
			errs["rsa_public_key"] = "required field missing"
			errs["@entity"] = "failed conditional validation given value of field 'algorithm'"
		}
	case !strings.HasPrefix(j.Algorithm, "HS"):
		// Kong checks the key of the algorithms that need one, and stores
		// anything beside an HS* secret; ES* keys are checked here too, as
		// verification needs them.
		if _, err := ParsePublicKey(*j.RSAPublicKey); err != nil {
			errs["rsa_public_key"] = "invalid key"
		}
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

func checkName(name *string, errs FieldErrors) { checkNameField(name, "name", errs) }

func checkNameField(name *string, field string, errs FieldErrors) {
	if name == nil {
		return
	}
	ok := *name != "" && strings.IndexFunc(*name, func(c rune) bool {
		return !unicode.IsLetter(c) && !unicode.IsDigit(c) && !strings.ContainsRune(".-_~", c)
	}) < 0
	if !ok {
		errs[field] = fmt.Sprintf("invalid value '%s': it must only contain alphanumeric and '., -, _, ~' characters", *name)
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

package router

import "strings"

// UpstreamPath returns the path to send upstream for a request whose path
// was matched by m: strip_path removes m.Prefix, then path_handling ("v0" or
// "v1") joins the service's path and the remainder as Kong does. path may be
// raw or normalized: UpstreamPath normalizes it first. A service without a
// path, or no service, counts as path "/". The result always starts with
// "/" and never contains "//".
func (m Match) UpstreamPath(path string) string {
	req := Normalize(path)
	if !strings.HasPrefix(req, "/") {
		req = "/" + req
	}
	base := "/"
	if m.Service != nil && m.Service.Path != nil && *m.Service.Path != "" {
		base = *m.Service.Path
	}
	strip, v1 := false, false
	if m.Route != nil {
		strip, v1 = m.Route.StripPath, m.Route.PathHandling == "v1"
	}
	// Kong strips "/" when the route matched without a path.
	prefix := m.Prefix
	if prefix == "" {
		prefix = "/"
	}
	postfix, ok := strings.CutPrefix(req, prefix)
	if !ok {
		strip = false
	}
	postfix = sanitizePostfix(postfix)
	var up string
	if v1 {
		up = joinV1(base, req, postfix, strip)
	} else {
		up = joinV0(base, req, postfix, strip)
	}
	return cleanSlashes(up)
}

// joinV0 is Kong's get_upstream_uri_v0: it joins base and the request as
// path segments, adding or dropping the "/" between them.
func joinV0(base, req, postfix string, strip bool) string {
	if strings.HasSuffix(base, "/") {
		switch {
		case !strip && base == "/":
			return req
		case !strip:
			return base + req[1:]
		case postfix == "" && base == "/":
			return "/"
		case postfix == "" && strings.HasSuffix(req, "/"):
			return base
		case postfix == "":
			return base[:len(base)-1]
		case postfix[0] == '/':
			return base[:len(base)-1] + postfix
		}
		return base + postfix
	}
	switch {
	case !strip && req == "/":
		return base
	case !strip:
		return base + req
	case postfix == "" && len(req) > 1 && strings.HasSuffix(req, "/"):
		return base + "/"
	case postfix == "":
		return base
	case postfix[0] == '/':
		return base + postfix
	}
	return base + "/" + postfix
}

// joinV1 is Kong's path_handling v1: base is a raw prefix of the remainder
// (service "/s" and request "/fv1/req" give "/sfv1/req").
func joinV1(base, req, postfix string, strip bool) string {
	if !strip {
		return base + req[1:]
	}
	return base + postfix
}

// sanitizePostfix drops a leading dot segment left after stripping, as
// Kong's sanitize_uri_postfix.
func sanitizePostfix(p string) string {
	switch {
	case p == "." || p == "..":
		return ""
	case strings.HasPrefix(p, "./"):
		return p[2:]
	case strings.HasPrefix(p, "../"):
		return p[3:]
	}
	return p
}

// cleanSlashes makes p start with "/" and merges "//" runs.
func cleanSlashes(p string) string {
	if strings.HasPrefix(p, "/") && !strings.Contains(p, "//") {
		return p
	}
	var b strings.Builder
	b.Grow(len(p) + 1)
	b.WriteByte('/')
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && (i == 0 || p[i-1] == '/') {
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

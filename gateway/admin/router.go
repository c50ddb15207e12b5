package admin

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// endpointFunc serves one method of an endpoint. args holds the values of
// the pattern's "*" segments, unescaped.
type endpointFunc func(w http.ResponseWriter, r *http.Request, args []string) error

// endpoint is a path pattern ("services/*/routes") and its methods.
type endpoint struct {
	pattern []string
	methods map[string]endpointFunc
}

// collection is an entity endpoint: a kind, optionally nested under a
// parent kind through the child's foreign field.
type collection struct {
	kind   entity.Kind
	parent entity.Kind
	field  string
}

// credentialKinds are the consumers' credentials: listed and addressed at
// the top level (/key-auths), created under their consumer
// (/consumers/{c}/key-auth), each with its consumer's endpoint
// (/key-auths/{k}/consumer), as Kong's admin_api_name and
// admin_api_nested_name.
var credentialKinds = []struct {
	top, nested string
	kind        entity.Kind
}{
	{"key-auths", "key-auth", entity.KindKeyAuth},
	{"basic-auths", "basic-auth", entity.KindBasicAuth},
	{"jwts", "jwt", entity.KindJWT},
}

// routes builds the endpoint table. Earlier patterns win, so literal
// segments come before "*" ones at the same position.
func (h *handler) routes() []endpoint {
	eps := []endpoint{
		{pattern: nil, methods: map[string]endpointFunc{http.MethodGet: h.info}},
		{pattern: []string{"status"}, methods: map[string]endpointFunc{http.MethodGet: h.status}},
		{pattern: []string{"openapi.json"}, methods: map[string]endpointFunc{http.MethodGet: h.serveOpenAPI}},
		{pattern: []string{"plugins", "enabled"}, methods: map[string]endpointFunc{http.MethodGet: h.enabledPlugins}},
		{pattern: []string{"cache"}, methods: map[string]endpointFunc{
			http.MethodGet: h.cacheKeys, http.MethodDelete: h.cachePurge}},
		{pattern: []string{"cache", "*"}, methods: map[string]endpointFunc{
			http.MethodGet: h.cacheGet, http.MethodDelete: h.cacheInvalidate}},
		{pattern: []string{"schemas", "plugins", "validate"}, methods: map[string]endpointFunc{http.MethodPost: h.validateSchema}},
		{pattern: []string{"schemas", "plugins", "*"}, methods: map[string]endpointFunc{http.MethodGet: h.pluginSchema}},
		{pattern: []string{"schemas", "*", "validate"}, methods: map[string]endpointFunc{http.MethodPost: h.validateSchema}},
		{pattern: []string{"schemas", "*"}, methods: map[string]endpointFunc{http.MethodGet: h.entitySchema}},
		{pattern: []string{"config"}, methods: map[string]endpointFunc{
			http.MethodGet: h.getConfig, http.MethodPost: h.postConfig}},
		{pattern: []string{"tags"}, methods: map[string]endpointFunc{http.MethodGet: h.listTags}},
		{pattern: []string{"tags", "*"}, methods: map[string]endpointFunc{http.MethodGet: h.listTags}},
	}
	routeService := h.foreign(collection{kind: entity.KindRoute}, "service")
	eps = append(eps, endpoint{pattern: []string{"routes", "*", "service"}, methods: map[string]endpointFunc{
		http.MethodGet: routeService, http.MethodPatch: routeService, http.MethodPut: routeService}})
	for _, c := range credentialKinds {
		consumer := h.foreign(collection{kind: c.kind}, "consumer")
		eps = append(eps,
			endpoint{pattern: []string{c.top, "*", "consumer"}, methods: map[string]endpointFunc{
				http.MethodGet: consumer, http.MethodPatch: consumer, http.MethodPut: consumer}},
			endpoint{pattern: []string{c.top}, methods: map[string]endpointFunc{
				http.MethodGet: h.list(collection{kind: c.kind})}})
	}
	if h.opts.Metrics != nil {
		eps = append(eps, endpoint{pattern: []string{"metrics"}, methods: map[string]endpointFunc{http.MethodGet: h.serveMetrics}})
	}
	top := map[string]entity.Kind{"certificates": entity.KindCertificate, "services": entity.KindService,
		"routes": entity.KindRoute, "consumers": entity.KindConsumer, "plugins": entity.KindPlugin}
	for _, name := range []string{"certificates", "services", "routes", "consumers", "plugins"} {
		eps = append(eps, h.entityEndpoints([]string{name}, collection{kind: top[name]})...)
	}
	for _, c := range credentialKinds {
		eps = append(eps, h.itemEndpoint([]string{c.top, "*"}, collection{kind: c.kind}))
	}
	type nesting struct {
		parent, child string
		c             collection
	}
	nested := []nesting{
		{"services", "routes", collection{kind: entity.KindRoute, parent: entity.KindService, field: "service"}},
		{"services", "plugins", collection{kind: entity.KindPlugin, parent: entity.KindService, field: "service"}},
		{"routes", "plugins", collection{kind: entity.KindPlugin, parent: entity.KindRoute, field: "route"}},
		{"consumers", "plugins", collection{kind: entity.KindPlugin, parent: entity.KindConsumer, field: "consumer"}},
	}
	for _, c := range credentialKinds {
		nested = append(nested, nesting{"consumers", c.nested,
			collection{kind: c.kind, parent: entity.KindConsumer, field: "consumer"}})
	}
	for _, n := range nested {
		eps = append(eps, h.entityEndpoints([]string{n.parent, "*", n.child}, n.c)...)
	}
	return append(eps, absentEndpoints()...)
}

// entityEndpoints returns the collection endpoint at prefix and the item
// endpoint below it.
func (h *handler) entityEndpoints(prefix []string, c collection) []endpoint {
	return []endpoint{
		{pattern: prefix, methods: map[string]endpointFunc{
			http.MethodGet: h.list(c), http.MethodPost: h.create(c)}},
		h.itemEndpoint(append(slices.Clone(prefix), "*"), c),
	}
}

func (h *handler) itemEndpoint(pattern []string, c collection) endpoint {
	return endpoint{pattern: pattern, methods: map[string]endpointFunc{
		http.MethodGet: h.get(c), http.MethodPut: h.upsert(c),
		http.MethodPatch: h.update(c), http.MethodDelete: h.delete(c)}}
}

// dispatch finds r's endpoint: unknown paths are 404, known paths with
// another method 405. HEAD is served as GET; OPTIONS lists the methods.
func (h *handler) dispatch(w http.ResponseWriter, r *http.Request) error {
	segs, ok := splitPath(r.URL.EscapedPath())
	if !ok {
		return errNotFound
	}
	for _, ep := range h.endpoints {
		args, ok := match(ep.pattern, segs)
		if !ok {
			continue
		}
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		if method == http.MethodOptions {
			w.Header().Set("Allow", allowed(ep))
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		fn, ok := ep.methods[method]
		if !ok {
			w.Header().Set("Allow", allowed(ep))
			return errMethodNotAllowed
		}
		return fn(w, r, args)
	}
	return errNotFound
}

func allowed(ep endpoint) string {
	methods := []string{http.MethodOptions}
	for m := range ep.methods {
		methods = append(methods, m)
	}
	slices.Sort(methods)
	return strings.Join(methods, ", ")
}

// splitPath splits an escaped path into unescaped segments, ignoring a
// trailing slash. It reports false for an empty or undecodable segment.
func splitPath(p string) ([]string, bool) {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil, true
	}
	parts := strings.Split(p, "/")
	for i, s := range parts {
		u, err := url.PathUnescape(s)
		if err != nil || u == "" {
			return nil, false
		}
		parts[i] = u
	}
	return parts, true
}

func match(pattern, segs []string) ([]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var args []string
	for i, p := range pattern {
		switch p {
		case "*":
			args = append(args, segs[i])
		case segs[i]:
		default:
			return nil, false
		}
	}
	return args, true
}

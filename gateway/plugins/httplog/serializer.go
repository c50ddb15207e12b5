package httplog

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
)

// entry is Kong's log serializer output (kong.log.serialize) for HTTP, as
// far as Sluice knows each field.
type entry struct {
	Request             requestEntry     `json:"request"`
	UpstreamURI         string           `json:"upstream_uri"`
	UpstreamStatus      string           `json:"upstream_status"`
	Response            responseEntry    `json:"response"`
	Latencies           latencies        `json:"latencies"`
	AuthenticatedEntity *authenticated   `json:"authenticated_entity,omitempty"`
	Route               *entity.Route    `json:"route,omitempty"`
	Service             *entity.Service  `json:"service,omitempty"`
	Consumer            *entity.Consumer `json:"consumer,omitempty"`
	ClientIP            string           `json:"client_ip"`
	StartedAt           int64            `json:"started_at"`
	Source              string           `json:"source"`
	WorkspaceName       string           `json:"workspace_name"`
}

type requestEntry struct {
	URI         string         `json:"uri"`
	URL         string         `json:"url"`
	Querystring map[string]any `json:"querystring"`
	Method      string         `json:"method"`
	Headers     map[string]any `json:"headers"`
	Size        int64          `json:"size"`
}

type responseEntry struct {
	Status  int            `json:"status"`
	Headers map[string]any `json:"headers"`
	Size    int64          `json:"size"`
}

// latencies are Kong's, in milliseconds: kong is the gateway's own time,
// proxy the service's (-1 when it was not called), request the total.
type latencies struct {
	Kong    int64 `json:"kong"`
	Proxy   int64 `json:"proxy"`
	Request int64 `json:"request"`
	Receive int64 `json:"receive"`
}

type authenticated struct {
	ID string `json:"id"`
}

// serialize returns the JSON log entry of the request in c.
func serialize(c *plugins.Context) ([]byte, error) {
	req, s := c.Request, c.Served
	uri := req.Path()
	if q := req.RawQuery(); q != "" {
		uri += "?" + q
	}
	status := c.Response.Status()
	e := entry{
		Request: requestEntry{URI: uri, URL: req.Scheme() + "://" + req.Host() + uri,
			Querystring: queryTable(req.RawQuery()), Method: req.Method(),
			Headers: headerTable(req, true), Size: s.RequestBytes},
		UpstreamURI: s.UpstreamURI,
		Response:    responseEntry{Status: status, Headers: headerTable(c.Response, false), Size: s.ResponseBytes},
		Latencies:   latencies{Kong: ms(s.Proxy), Proxy: -1, Request: ms(s.Total)},
		Route:       c.Route, Service: c.Service, Consumer: c.Consumer,
		ClientIP: c.ClientIP, StartedAt: c.Start.UnixMilli(), Source: "error", WorkspaceName: "default",
	}
	switch _, _, exited := c.Exited(); {
	case exited:
		e.Source = "exit"
	case s.Upstream > 0:
		e.Source = "service"
		e.Latencies.Proxy = ms(s.Upstream)
		e.UpstreamStatus = strconv.Itoa(status)
	}
	if c.Credential != nil {
		e.AuthenticatedEntity = &authenticated{ID: c.Credential.PrimaryKey()}
	}
	return json.Marshal(e)
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// headerTable returns the headers as Kong's get_headers does: lower-case
// names, a string per header or an array for repeated ones. Request
// credentials are redacted as Kong does.
func headerTable(h any, redact bool) map[string]any {
	out := map[string]any{}
	hv, ok := h.(plugins.HeaderVisitor)
	if !ok {
		return out
	}
	hv.VisitHeaders(func(name, value string) {
		name = strings.ToLower(name)
		if redact && (name == "authorization" || name == "proxy-authorization") {
			value = "REDACTED"
		}
		add(out, name, value)
	})
	return out
}

// queryTable returns the query as Kong's get_query does: a string per
// argument, true for a bare name, an array for repeated ones.
func queryTable(raw string) map[string]any {
	out := map[string]any{}
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if kv == "" {
			continue
		}
		k, v, hasValue := strings.Cut(kv, "=")
		k, _ = url.QueryUnescape(k)
		if !hasValue {
			add(out, k, true)
			continue
		}
		v, _ = url.QueryUnescape(v)
		add(out, k, v)
	}
	return out
}

func add(m map[string]any, k string, v any) {
	switch old := m[k].(type) {
	case nil:
		m[k] = v
	case []any:
		m[k] = append(old, v)
	default:
		m[k] = []any{old, v}
	}
}

func basicAuth(u *url.Userinfo) string {
	p, _ := u.Password()
	name, _ := url.PathUnescape(u.Username())
	return base64.StdEncoding.EncodeToString([]byte(name + ":" + p))
}

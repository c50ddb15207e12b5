package plugins_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/plugintest"
)

// tagPlugin is a minimal real plugin: it records its tag in a request header.
type tagPlugin struct {
	name     string
	priority int
}

type tagConfig struct {
	Tag   string   `json:"tag"`
	Count int      `json:"count"`
	Names []string `json:"names"`
	Stop  bool     `json:"stop"`
}

func (p tagPlugin) Name() string  { return p.name }
func (p tagPlugin) Priority() int { return p.priority }
func (p tagPlugin) Configure(raw json.RawMessage) (plugins.Handler, error) {
	c := &tagConfig{Tag: "default", Count: 1, Names: []string{"a"}}
	if err := plugins.DecodeConfig(raw, c); err != nil {
		return nil, err
	}
	if c.Count < 0 {
		return nil, plugins.FieldErrors{"count": "value must be greater than -1"}
	}
	return c, nil
}

// Access records the tag upstream and answers 403 when configured to stop.
func (c *tagConfig) Access(ctx *plugins.Context) {
	ctx.Upstream.AddHeader("X-Tag", c.Tag)
	if c.Stop {
		ctx.ExitMessage(http.StatusForbidden, "stopped by "+c.Tag)
	}
}

func TestRegistryValidate(t *testing.T) {
	reg := plugins.NewRegistry(tagPlugin{name: "tag", priority: 1})
	tests := []struct {
		name   string
		plugin string
		config string
		want   string
		fields map[string]string
		unk    bool
	}{
		{name: "defaults on nil", plugin: "tag", config: "", want: `{"tag":"default","count":1,"names":["a"],"stop":false}`},
		{name: "defaults on null", plugin: "tag", config: "null", want: `{"tag":"default","count":1,"names":["a"],"stop":false}`},
		{name: "override", plugin: "tag", config: `{"tag":"x","count":3}`, want: `{"tag":"x","count":3,"names":["a"],"stop":false}`},
		{name: "wrong int", plugin: "tag", config: `{"count":"three"}`, fields: map[string]string{"count": "expected an integer"}},
		{name: "float for int", plugin: "tag", config: `{"count":1.5}`, fields: map[string]string{"count": "expected an integer"}},
		{name: "wrong array elem", plugin: "tag", config: `{"names":[1]}`, fields: map[string]string{"names": "expected a string"}},
		{name: "unknown and wrong", plugin: "tag", config: `{"nope":1,"stop":"yes"}`, fields: map[string]string{"nope": "unknown field", "stop": "expected a boolean"}},
		{name: "not a record", plugin: "tag", config: `[1]`, fields: map[string]string{"@entity": "expected a record"}},
		{name: "validation", plugin: "tag", config: `{"count":-2}`, fields: map[string]string{"count": "value must be greater than -1"}},
		{name: "unknown plugin", plugin: "nope", config: `{}`, unk: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fields, err := reg.Validate(tt.plugin, json.RawMessage(tt.config))
			if tt.unk {
				if !errors.Is(err, plugins.ErrUnknownPlugin) {
					t.Fatalf("err = %v, want plugins.ErrUnknownPlugin", err)
				}
				return
			}
			if tt.fields != nil {
				if err == nil || !reflect.DeepEqual(fields, tt.fields) {
					t.Fatalf("fields = %v, err = %v; want %v", fields, err, tt.fields)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestRegistryNames(t *testing.T) {
	reg := plugins.NewRegistry(tagPlugin{name: "b"}, tagPlugin{name: "a"})
	if got := reg.Names(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatalf("Names() = %v", got)
	}
}

func plugin(id, name, route, service, consumer, tag string) *entity.Plugin {
	p := &entity.Plugin{ID: id, Name: name, Enabled: true, Config: json.RawMessage(`{"tag":"` + tag + `"}`)}
	if route != "" {
		p.Route = &entity.Ref{ID: route}
	}
	if service != "" {
		p.Service = &entity.Ref{ID: service}
	}
	if consumer != "" {
		p.Consumer = &entity.Ref{ID: consumer}
	}
	return p
}

func TestSetPrecedence(t *testing.T) {
	reg := plugins.NewRegistry(tagPlugin{name: "tag", priority: 1})
	all := []*entity.Plugin{
		plugin("1", "tag", "", "", "", "global"),
		plugin("2", "tag", "", "s", "", "service"),
		plugin("3", "tag", "r", "", "", "route"),
		plugin("4", "tag", "", "", "c", "consumer"),
		plugin("5", "tag", "r", "s", "", "route+service"),
		plugin("6", "tag", "", "s", "c", "consumer+service"),
		plugin("7", "tag", "r", "", "c", "consumer+route"),
		plugin("8", "tag", "r", "s", "c", "consumer+route+service"),
	}
	ctx := &plugins.Context{Route: &entity.Route{ID: "r"}, Service: &entity.Service{ID: "s"}, Consumer: &entity.Consumer{ID: "c"}}
	// Removing the most specific entity one by one must reveal the next in Kong's order.
	for n := len(all); n > 0; n-- {
		want := all[n-1].Config
		t.Run(all[n-1].ID, func(t *testing.T) {
			set, err := plugins.NewSet(reg, all[:n])
			if err != nil {
				t.Fatal(err)
			}
			_, h, ok := set.Resolve(0, ctx)
			if !ok {
				t.Fatal("no instance resolved")
			}
			if got, _ := json.Marshal(h); !json.Valid(got) || h.(*tagConfig).Tag != tagOf(want) {
				t.Fatalf("resolved %s, want %s", got, want)
			}
		})
	}
	t.Run("other route falls back", func(t *testing.T) {
		set, _ := plugins.NewSet(reg, all)
		other := &plugins.Context{Route: &entity.Route{ID: "r2"}, Service: &entity.Service{ID: "s"}}
		_, h, ok := set.Resolve(0, other)
		if !ok || h.(*tagConfig).Tag != "service" {
			t.Fatalf("resolved %v", h)
		}
	})
}

func tagOf(raw json.RawMessage) string {
	var c tagConfig
	_ = json.Unmarshal(raw, &c)
	return c.Tag
}

func TestSetOrderAndErrors(t *testing.T) {
	reg := plugins.NewRegistry(tagPlugin{name: "low", priority: 1}, tagPlugin{name: "high", priority: 100})
	disabled := plugin("d", "low", "", "", "", "disabled")
	disabled.Enabled = false
	bad := plugin("b", "low", "x", "", "", "")
	bad.Config = json.RawMessage(`{"count":"x"}`)
	set, err := plugins.NewSet(reg, []*entity.Plugin{
		plugin("1", "low", "", "", "", "low"),
		plugin("2", "high", "", "", "", "high"),
		plugin("3", "ghost", "", "", "", "ghost"),
		disabled, bad,
	})
	if !errors.Is(err, plugins.ErrUnknownPlugin) {
		t.Fatalf("err = %v, want plugins.ErrUnknownPlugin joined", err)
	}
	if set.Len() != 2 {
		t.Fatalf("Len() = %d, want 2", set.Len())
	}
	req := plugintest.New(http.MethodGet, "/", nil, nil)
	if !set.Access(req.Context()) {
		t.Fatal("Access stopped the request")
	}
	if got := req.Upstream().Values("X-Tag"); !reflect.DeepEqual(got, []string{"high", "low"}) {
		t.Fatalf("run order = %v, want [high low]", got)
	}
}

func TestSetAccessStops(t *testing.T) {
	reg := plugins.NewRegistry(tagPlugin{name: "stop", priority: 10}, tagPlugin{name: "after", priority: 1})
	stop := plugin("1", "stop", "", "", "", "s")
	stop.Config = json.RawMessage(`{"tag":"s","stop":true}`)
	set, err := plugins.NewSet(reg, []*entity.Plugin{stop, plugin("2", "after", "", "", "", "a")})
	if err != nil {
		t.Fatal(err)
	}
	req := plugintest.New(http.MethodGet, "/", nil, nil)
	plugintest.Run(set, req.Context())
	resp := req.Response()
	ctype, _ := resp.Header("Content-Type")
	if req.Forwarded() || resp.Status() != http.StatusForbidden || string(resp.Body()) != "{\"message\":\"stopped by s\"}\n" ||
		ctype != "application/json; charset=utf-8" || len(req.Upstream().Values("X-Tag")) != 1 {
		t.Fatalf("got forwarded=%v %d %q %q, tags %v", req.Forwarded(), resp.Status(), resp.Body(), ctype, req.Upstream().Values("X-Tag"))
	}
}

func TestResolveDoesNotAllocate(t *testing.T) {
	reg := plugins.NewRegistry(tagPlugin{name: "tag", priority: 1})
	set, _ := plugins.NewSet(reg, []*entity.Plugin{plugin("1", "tag", "", "", "", "g"), plugin("2", "tag", "r", "", "c", "rc")})
	ctx := &plugins.Context{Route: &entity.Route{ID: "r"}, Service: &entity.Service{ID: "s"}, Consumer: &entity.Consumer{ID: "c"}}
	if n := testing.AllocsPerRun(100, func() { set.Resolve(0, ctx) }); n != 0 {
		t.Fatalf("Resolve allocates %v times", n)
	}
	found := 0
	if n := testing.AllocsPerRun(100, func() {
		for range set.Applicable(ctx, plugins.PhaseAccess) {
			found++
		}
	}); n != 0 || found == 0 {
		t.Fatalf("Applicable allocates %v times (found %d handlers)", n, found)
	}
}

func BenchmarkSetResolve(b *testing.B) {
	reg := plugins.NewRegistry(tagPlugin{name: "tag", priority: 1})
	set, _ := plugins.NewSet(reg, []*entity.Plugin{plugin("1", "tag", "", "", "", "g"), plugin("2", "tag", "r", "", "c", "rc")})
	ctx := &plugins.Context{Route: &entity.Route{ID: "r"}, Service: &entity.Service{ID: "s"}, Consumer: &entity.Consumer{ID: "c"}}
	b.ReportAllocs()
	for b.Loop() {
		set.Resolve(0, ctx)
	}
}

// phasePlugin implements every phase. Its instances are named by their
// config's tag; each call is recorded as "tag:phase" in the shared trace,
// then the plugin's hook for that phase runs, if any.
type phasePlugin struct {
	name     string
	priority int
	trace    *[]string
	hooks    hooks
}

type hooks struct {
	rewrite, access, headerFilter, log func(tag string, c *plugins.Context)
	bodyFilter                         func(tag string, c *plugins.Context, chunk []byte, eof bool) []byte
}

type phaseHandler struct {
	Tag string `json:"tag"`
	p   *phasePlugin
}

func (p *phasePlugin) Name() string  { return p.name }
func (p *phasePlugin) Priority() int { return p.priority }
func (p *phasePlugin) Configure(raw json.RawMessage) (plugins.Handler, error) {
	h := &phaseHandler{p: p}
	return h, plugins.DecodeConfig(raw, h)
}

func (h *phaseHandler) run(phase string, c *plugins.Context, hook func(string, *plugins.Context)) {
	*h.p.trace = append(*h.p.trace, h.Tag+":"+phase)
	if hook != nil {
		hook(h.Tag, c)
	}
}

func (h *phaseHandler) Rewrite(c *plugins.Context) { h.run("rewrite", c, h.p.hooks.rewrite) }
func (h *phaseHandler) Access(c *plugins.Context)  { h.run("access", c, h.p.hooks.access) }
func (h *phaseHandler) HeaderFilter(c *plugins.Context) {
	h.run("header_filter", c, h.p.hooks.headerFilter)
}
func (h *phaseHandler) Log(c *plugins.Context) { h.run("log", c, h.p.hooks.log) }
func (h *phaseHandler) BodyFilter(c *plugins.Context, chunk []byte, eof bool) []byte {
	h.run("body_filter", c, nil)
	if h.p.hooks.bodyFilter != nil {
		return h.p.hooks.bodyFilter(h.Tag, c, chunk, eof)
	}
	return chunk
}

// phaseSet returns a Set of hi (priority 100) and lo (priority 10), each
// with one global instance tagged with its name, sharing trace.
func phaseSet(t *testing.T, trace *[]string, hi, lo hooks) *plugins.Set {
	t.Helper()
	reg := plugins.NewRegistry(&phasePlugin{name: "hi", priority: 100, trace: trace, hooks: hi},
		&phasePlugin{name: "lo", priority: 10, trace: trace, hooks: lo})
	set, err := plugins.NewSet(reg, []*entity.Plugin{plugin("1", "lo", "", "", "", "lo"), plugin("2", "hi", "", "", "", "hi")})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func routed(r *plugintest.Request) *plugintest.Request {
	c := r.Context()
	c.Route, c.Service = &entity.Route{ID: "r"}, &entity.Service{ID: "s"}
	return r
}

func TestPhases(t *testing.T) {
	exit := func(_ string, c *plugins.Context) { c.ExitMessage(http.StatusForbidden, "no", "X-Why", "test") }
	tests := []struct {
		name       string
		hi         hooks
		wantTrace  []string
		wantStatus int
		wantBody   string
	}{
		{name: "kong order, priority order", wantStatus: 200, wantBody: "abcd", wantTrace: []string{
			"hi:rewrite", "lo:rewrite", "hi:access", "lo:access", "hi:header_filter", "lo:header_filter",
			"hi:body_filter", "lo:body_filter", "hi:body_filter", "lo:body_filter", "hi:log", "lo:log"}},
		{name: "exit in access", hi: hooks{access: exit}, wantStatus: 403, wantBody: "{\"message\":\"no\"}\n", wantTrace: []string{
			"hi:rewrite", "lo:rewrite", "hi:access", "hi:header_filter", "lo:header_filter",
			"hi:body_filter", "lo:body_filter", "hi:log", "lo:log"}},
		{name: "exit in rewrite", hi: hooks{rewrite: exit}, wantStatus: 403, wantBody: "{\"message\":\"no\"}\n", wantTrace: []string{
			"hi:rewrite", "hi:header_filter", "lo:header_filter", "hi:body_filter", "lo:body_filter", "hi:log", "lo:log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var trace []string
			var statusSeen []int
			seeStatus := func(_ string, c *plugins.Context) { statusSeen = append(statusSeen, c.Response.Status()) }
			lo := hooks{headerFilter: seeStatus, log: seeStatus}
			req := routed(plugintest.New("GET", "/", nil, nil))
			req.Answer(200, map[string]string{"X-Upstream": "yes"}, []byte("ab"), []byte("cd"))
			plugintest.Run(phaseSet(t, &trace, tt.hi, lo), req.Context())
			if !reflect.DeepEqual(trace, tt.wantTrace) {
				t.Fatalf("trace\n%v\nwant\n%v", trace, tt.wantTrace)
			}
			resp := req.Response()
			if resp.Status() != tt.wantStatus || string(resp.Body()) != tt.wantBody || req.Forwarded() != (tt.wantStatus == 200) {
				t.Fatalf("got %d %q forwarded=%v", resp.Status(), resp.Body(), req.Forwarded())
			}
			if !reflect.DeepEqual(statusSeen, []int{tt.wantStatus, tt.wantStatus}) {
				t.Fatalf("header_filter and log saw status %v, want %d", statusSeen, tt.wantStatus)
			}
			why, _ := resp.Header("X-Why")
			up, _ := resp.Header("X-Upstream")
			if exited := tt.wantStatus != 200; (why == "test") != exited || (up == "yes") == exited {
				t.Fatalf("response headers X-Why=%q X-Upstream=%q", why, up)
			}
		})
	}
}

func TestRewriteRunsGlobalInstancesOnly(t *testing.T) {
	var trace []string
	routeSeen := false
	rewrite := func(_ string, c *plugins.Context) { routeSeen = routeSeen || c.Route != nil || c.Service != nil }
	reg := plugins.NewRegistry(&phasePlugin{name: "p", priority: 2, trace: &trace, hooks: hooks{rewrite: rewrite}},
		&phasePlugin{name: "q", priority: 1, trace: &trace, hooks: hooks{rewrite: rewrite}})
	set, err := plugins.NewSet(reg, []*entity.Plugin{
		plugin("1", "p", "", "", "", "p-global"),
		plugin("2", "p", "r", "", "", "p-route"),
		plugin("3", "q", "r", "", "", "q-route"),
	})
	if err != nil {
		t.Fatal(err)
	}
	req := routed(plugintest.New("GET", "/", nil, nil))
	plugintest.Run(set, req.Context())
	want := []string{"p-global:rewrite", "p-route:access", "q-route:access", "p-route:header_filter", "q-route:header_filter",
		"p-route:body_filter", "q-route:body_filter", "p-route:log", "q-route:log"}
	if !reflect.DeepEqual(trace, want) || routeSeen {
		t.Fatalf("trace %v (route seen in rewrite: %v), want %v", trace, routeSeen, want)
	}
}

// Context keys: unexported types per plugin, and one shared on purpose.
type (
	hiKey     struct{}
	loKey     struct{}
	sharedKey struct{}
)

func TestContextValuesAcrossPhases(t *testing.T) {
	var trace, got []string
	get := func(c *plugins.Context, key any) {
		v, _ := c.Get(key).(string)
		got = append(got, v)
	}
	hi := hooks{
		rewrite: func(_ string, c *plugins.Context) { c.Set(hiKey{}, "hi's") },
		access:  func(_ string, c *plugins.Context) { c.Set(sharedKey{}, "shared by hi") },
		log:     func(_ string, c *plugins.Context) { get(c, hiKey{}) },
	}
	lo := hooks{
		rewrite:      func(_ string, c *plugins.Context) { c.Set(loKey{}, "lo's") },
		headerFilter: func(_ string, c *plugins.Context) { get(c, sharedKey{}) },
		log:          func(_ string, c *plugins.Context) { get(c, loKey{}); get(c, struct{}{}) },
	}
	req := routed(plugintest.New("GET", "/", nil, nil))
	plugintest.Run(phaseSet(t, &trace, hi, lo), req.Context())
	if want := []string{"shared by hi", "hi's", "lo's", ""}; !reflect.DeepEqual(got, want) {
		t.Fatalf("values %q, want %q", got, want)
	}
}

func TestBodyFilterChain(t *testing.T) {
	type call struct {
		chunk string
		eof   bool
	}
	var trace []string
	var loSaw []call
	hi := hooks{bodyFilter: func(_ string, _ *plugins.Context, chunk []byte, _ bool) []byte {
		return []byte(strings.ToUpper(string(chunk)))
	}}
	lo := hooks{bodyFilter: func(_ string, _ *plugins.Context, chunk []byte, eof bool) []byte {
		loSaw = append(loSaw, call{string(chunk), eof})
		if eof {
			return append(chunk, '!')
		}
		return chunk
	}}
	set := phaseSet(t, &trace, hi, lo)
	tests := []struct {
		name   string
		chunks []string
		want   string
		calls  []call
	}{
		{name: "chunks", chunks: []string{"ab", "cd"}, want: "ABCD!", calls: []call{{"AB", false}, {"CD", true}}},
		{name: "empty body", want: "!", calls: []call{{"", true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loSaw = nil
			req := routed(plugintest.New("GET", "/", nil, nil))
			var chunks [][]byte
			for _, c := range tt.chunks {
				chunks = append(chunks, []byte(c))
			}
			req.Answer(200, nil, chunks...)
			if !set.AppliesBodyFilter(req.Context()) {
				t.Fatal("AppliesBodyFilter = false")
			}
			plugintest.Run(set, req.Context())
			if string(req.Response().Body()) != tt.want || !reflect.DeepEqual(loSaw, tt.calls) {
				t.Fatalf("body %q, lo saw %v; want %q, %v", req.Response().Body(), loSaw, tt.want, tt.calls)
			}
		})
	}
	t.Run("not applicable", func(t *testing.T) {
		reg := plugins.NewRegistry(&phasePlugin{name: "hi", priority: 1, trace: &trace, hooks: hi})
		other, err := plugins.NewSet(reg, []*entity.Plugin{plugin("1", "hi", "r2", "", "", "hi")})
		if err != nil {
			t.Fatal(err)
		}
		trace = nil
		req := routed(plugintest.New("GET", "/", nil, nil))
		req.Answer(200, nil, []byte("ab"))
		if other.AppliesBodyFilter(req.Context()) {
			t.Fatal("a body filter of another route applies")
		}
		plugintest.Run(other, req.Context())
		if string(req.Response().Body()) != "ab" || len(trace) != 0 {
			t.Fatalf("body %q, trace %v", req.Response().Body(), trace)
		}
	})
}

func TestNilSetRunsNothing(t *testing.T) {
	req := routed(plugintest.New("HEAD", "/", nil, nil))
	req.Answer(204, nil, []byte("dropped"))
	plugintest.Run(nil, req.Context())
	if !req.Forwarded() || req.Response().Status() != 204 || len(req.Response().Body()) != 0 {
		t.Fatalf("got forwarded=%v %d %q", req.Forwarded(), req.Response().Status(), req.Response().Body())
	}
}

// nestedConfig has a nested record and a map, as request-transformer's
// and http-log's configs do.
type nestedConfig struct {
	Queue   nestedQueue       `json:"queue"`
	Headers map[string]string `json:"headers"`
	Names   []string          `json:"names" kong:"required"`
}

type nestedQueue struct {
	Size  int `json:"size" kong:"between=1|10"`
	Limit int `json:"limit" kong:"one_of=-1|1"`
}

func TestNestedRecordsAndMaps(t *testing.T) {
	def := func() *nestedConfig { return &nestedConfig{Queue: nestedQueue{Size: 1, Limit: 1}, Names: []string{}} }
	tests := []struct {
		config string
		fields plugins.FieldErrors
		want   nestedConfig
	}{
		{config: `{"queue":{"size":5}}`, want: nestedConfig{Queue: nestedQueue{Size: 5, Limit: 1}, Names: []string{}}},
		{config: `{"names":[],"headers":{"a":"b"}}`, want: nestedConfig{Queue: nestedQueue{Size: 1, Limit: 1}, Names: []string{}, Headers: map[string]string{"a": "b"}}},
		{config: `{"queue":{"size":50,"nope":1}}`, fields: plugins.FieldErrors{"queue.nope": "unknown field"}},
		{config: `{"queue":{"size":50}}`, fields: plugins.FieldErrors{"queue.size": "value should be between 1 and 10"}},
		{config: `{"queue":{"limit":2}}`, fields: plugins.FieldErrors{"queue.limit": "expected one of: -1, 1"}},
		{config: `{"queue":null}`, fields: plugins.FieldErrors{"queue": "required field missing"}},
		{config: `{"queue":[1]}`, fields: plugins.FieldErrors{"queue": "expected a record"}},
		{config: `{"names":null}`, fields: plugins.FieldErrors{"names": "required field missing"}},
		{config: `{"headers":{"a":1}}`, fields: plugins.FieldErrors{"headers": "expected a string"}},
	}
	for _, tc := range tests {
		got := def()
		err := plugins.DecodeConfig(json.RawMessage(tc.config), got)
		var fe plugins.FieldErrors
		errors.As(err, &fe)
		if !reflect.DeepEqual(fe, tc.fields) {
			t.Errorf("%s: errors %v, want %v", tc.config, fe, tc.fields)
			continue
		}
		if tc.fields == nil && !reflect.DeepEqual(*got, tc.want) {
			t.Errorf("%s: decoded %+v, want %+v", tc.config, *got, tc.want)
		}
	}
	b, _ := json.Marshal(plugins.RecordSchema(def()))
	want := `{"fields":[{"queue":{"fields":[{"size":{"between":[1,10],"default":1,"type":"integer"}},` +
		`{"limit":{"default":1,"one_of":[-1,1],"type":"integer"}}],"required":true,"type":"record"}},` +
		`{"headers":{"keys":{"type":"string"},"type":"map","values":{"type":"string"}}},` +
		`{"names":{"default":[],"elements":{"type":"string"},"required":true,"type":"array"}}],"required":true,"type":"record"}`
	if string(b) != want {
		t.Errorf("schema\n%s\nwant\n%s", b, want)
	}
}

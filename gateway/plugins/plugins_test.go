package plugins

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
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
func (p tagPlugin) Configure(raw json.RawMessage) (Handler, error) {
	c := &tagConfig{Tag: "default", Count: 1, Names: []string{"a"}}
	if err := DecodeConfig(raw, c); err != nil {
		return nil, err
	}
	if c.Count < 0 {
		return nil, FieldErrors{"count": "value must be greater than -1"}
	}
	return c, nil
}

func (c *tagConfig) Access(ctx *Context) bool {
	ctx.R.Header.Add("X-Tag", c.Tag)
	if c.Stop {
		ctx.RespondMessage(http.StatusForbidden, "stopped by "+c.Tag)
		return false
	}
	return true
}

func TestRegistryValidate(t *testing.T) {
	reg := NewRegistry(tagPlugin{name: "tag", priority: 1})
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
				if !errors.Is(err, ErrUnknownPlugin) {
					t.Fatalf("err = %v, want ErrUnknownPlugin", err)
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
	reg := NewRegistry(tagPlugin{name: "b"}, tagPlugin{name: "a"})
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
	reg := NewRegistry(tagPlugin{name: "tag", priority: 1})
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
	ctx := &Context{Route: &entity.Route{ID: "r"}, Service: &entity.Service{ID: "s"}, Consumer: &entity.Consumer{ID: "c"}}
	// Removing the most specific entity one by one must reveal the next in Kong's order.
	for n := len(all); n > 0; n-- {
		want := all[n-1].Config
		t.Run(all[n-1].ID, func(t *testing.T) {
			set, err := NewSet(reg, all[:n])
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
		set, _ := NewSet(reg, all)
		other := &Context{Route: &entity.Route{ID: "r2"}, Service: &entity.Service{ID: "s"}}
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
	reg := NewRegistry(tagPlugin{name: "low", priority: 1}, tagPlugin{name: "high", priority: 100})
	disabled := plugin("d", "low", "", "", "", "disabled")
	disabled.Enabled = false
	bad := plugin("b", "low", "x", "", "", "")
	bad.Config = json.RawMessage(`{"count":"x"}`)
	set, err := NewSet(reg, []*entity.Plugin{
		plugin("1", "low", "", "", "", "low"),
		plugin("2", "high", "", "", "", "high"),
		plugin("3", "ghost", "", "", "", "ghost"),
		disabled, bad,
	})
	if !errors.Is(err, ErrUnknownPlugin) {
		t.Fatalf("err = %v, want ErrUnknownPlugin joined", err)
	}
	if set.Len() != 2 {
		t.Fatalf("Len() = %d, want 2", set.Len())
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	ctx := &Context{W: httptest.NewRecorder(), R: req}
	if !set.Access(ctx) {
		t.Fatal("Access stopped the request")
	}
	if got := req.Header.Values("X-Tag"); !reflect.DeepEqual(got, []string{"high", "low"}) {
		t.Fatalf("run order = %v, want [high low]", got)
	}
}

func TestSetAccessStops(t *testing.T) {
	reg := NewRegistry(tagPlugin{name: "stop", priority: 10}, tagPlugin{name: "after", priority: 1})
	stop := plugin("1", "stop", "", "", "", "s")
	stop.Config = json.RawMessage(`{"tag":"s","stop":true}`)
	set, err := NewSet(reg, []*entity.Plugin{stop, plugin("2", "after", "", "", "", "a")})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	ctx := &Context{W: rec, R: req, Server: "sluice/test"}
	if set.Access(ctx) {
		t.Fatal("Access went on after a plugin answered")
	}
	if rec.Code != http.StatusForbidden || rec.Body.String() != "{\"message\":\"stopped by s\"}\n" ||
		rec.Header().Get("Server") != "sluice/test" || len(req.Header.Values("X-Tag")) != 1 {
		t.Fatalf("got %d %q %v", rec.Code, rec.Body.String(), rec.Header())
	}
}

func TestResolveDoesNotAllocate(t *testing.T) {
	reg := NewRegistry(tagPlugin{name: "tag", priority: 1})
	set, _ := NewSet(reg, []*entity.Plugin{plugin("1", "tag", "", "", "", "g"), plugin("2", "tag", "r", "", "c", "rc")})
	ctx := &Context{Route: &entity.Route{ID: "r"}, Service: &entity.Service{ID: "s"}, Consumer: &entity.Consumer{ID: "c"}}
	if n := testing.AllocsPerRun(100, func() { set.Resolve(0, ctx) }); n != 0 {
		t.Fatalf("Resolve allocates %v times", n)
	}
}

func BenchmarkSetResolve(b *testing.B) {
	reg := NewRegistry(tagPlugin{name: "tag", priority: 1})
	set, _ := NewSet(reg, []*entity.Plugin{plugin("1", "tag", "", "", "", "g"), plugin("2", "tag", "r", "", "c", "rc")})
	ctx := &Context{Route: &entity.Route{ID: "r"}, Service: &entity.Service{ID: "s"}, Consumer: &entity.Consumer{ID: "c"}}
	b.ReportAllocs()
	for b.Loop() {
		set.Resolve(0, ctx)
	}
}

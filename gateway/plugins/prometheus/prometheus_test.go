package prometheus

import (
	"encoding/json"
	"reflect"
	"sync"
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/plugintest"
)

// recorded is an Exporter that keeps what it is given.
type recorded struct {
	mu sync.Mutex
	ms []Measurement
}

func (r *recorded) Export(m *Measurement) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ms = append(r.ms, *m)
}

func ptr(s string) *string { return &s }

func run(t *testing.T, config string, route bool, consumer *entity.Consumer, exit bool) []Measurement {
	t.Helper()
	exp := &recorded{}
	plugs := []plugins.Plugin{New(exp)}
	ents := []*entity.Plugin{{ID: "p", Name: Name, Enabled: true, Config: json.RawMessage(config)}}
	if exit {
		plugs = append(plugs, terminator{})
		ents = append(ents, &entity.Plugin{ID: "t", Name: "terminator", Enabled: true})
	}
	set, err := plugins.NewSet(plugins.NewRegistry(plugs...), ents)
	if err != nil {
		t.Fatal(err)
	}
	req := plugintest.New("GET", "/", nil, []byte("abc"))
	req.Answer(200, nil, []byte("hello"))
	c := req.Context()
	if route {
		c.Route, c.Service = &entity.Route{ID: "r"}, &entity.Service{ID: "s", Host: "h"}
	}
	c.Consumer = consumer
	plugintest.Run(set, c)
	return exp.ms
}

// terminator answers 403 in access, as an auth plugin would.
type terminator struct{}

func (terminator) Name() string  { return "terminator" }
func (terminator) Priority() int { return 1000 }
func (terminator) Configure(json.RawMessage) (plugins.Handler, error) {
	return terminator{}, nil
}
func (terminator) Access(c *plugins.Context) { c.ExitMessage(403, "no") }

func TestMeasurements(t *testing.T) {
	alice := &entity.Consumer{ID: "c", Username: ptr("alice")}
	if ms := run(t, `{}`, true, alice, false); len(ms) != 0 {
		t.Errorf("every switch off: %d measurements, want none", len(ms))
	}
	if ms := run(t, `{"status_code_metrics":true}`, false, nil, false); len(ms) != 0 {
		t.Errorf("no route matched: %d measurements, want none (Kong counts matched requests only)", len(ms))
	}
	ms := run(t, `{"status_code_metrics":true,"bandwidth_metrics":true}`, true, alice, false)
	if len(ms) != 1 {
		t.Fatalf("%d measurements", len(ms))
	}
	m := ms[0]
	if !m.StatusCodes || m.Latencies || !m.Bandwidth || m.Consumer != "" || m.Status != 200 || !m.FromService ||
		m.Served.RequestBytes != 3 || m.Served.ResponseBytes != 5 || m.Route.ID != "r" {
		t.Errorf("measurement %+v", m)
	}
	ms = run(t, `{"per_consumer":true,"latency_metrics":true}`, true, alice, true)
	if len(ms) != 1 || ms[0].Consumer != "alice" || ms[0].FromService || ms[0].Status != 403 || !ms[0].Latencies {
		t.Errorf("per_consumer on an exit: %+v", ms)
	}
}

func TestConfig(t *testing.T) {
	reg := plugins.NewRegistry(New(nil))
	out, _, err := reg.Validate(Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"per_consumer":false,"status_code_metrics":false,"ai_metrics":false,"latency_metrics":false,"bandwidth_metrics":false,"upstream_health_metrics":false}`
	if string(out) != want {
		t.Errorf("defaults %s, want %s", out, want)
	}
	_, fields, err := reg.Validate(Name, json.RawMessage(`{"per_consumer":"yes","wasm_metrics":true}`))
	if err == nil || !reflect.DeepEqual(fields, map[string]string{"per_consumer": "expected a boolean", "wasm_metrics": "unknown field"}) {
		t.Errorf("fields %v, err %v", fields, err)
	}
}

package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/plugins"
	"github.com/sluice-gw/sluice/gateway/plugins/requesttransformer"
)

// kitProbe is a plugin that uses the kit's upstream edits in access and
// records what the log phase sees.
type kitProbe struct{ logged chan probeLog }

type probeLog struct {
	served             plugins.Served
	method, reqHeaders string
	respHeaders        string
	status             int
}

func (p *kitProbe) Name() string  { return "kit-probe" }
func (p *kitProbe) Priority() int { return 5 }
func (p *kitProbe) Configure(json.RawMessage) (plugins.Handler, error) {
	return &probeHandler{p}, nil
}

type probeHandler struct{ p *kitProbe }

func (h *probeHandler) Access(c *plugins.Context) {
	c.Upstream.SetMethod("PUT")
	c.Upstream.SetPath("/elsewhere/x")
	c.Upstream.SetHeader("Host", "custom.example")
}

func visit(v any) string {
	var b strings.Builder
	v.(plugins.HeaderVisitor).VisitHeaders(func(n, val string) { b.WriteString(strings.ToLower(n) + "=" + val + ";") })
	return b.String()
}

func (h *probeHandler) Log(c *plugins.Context) {
	h.p.logged <- probeLog{served: c.Served, method: c.Request.Method(), reqHeaders: visit(c.Request),
		respHeaders: visit(c.Response), status: c.Response.Status()}
}

// TestKitUpstreamEditsOnFasthttp: SetMethod, SetPath and a Host set by a
// plugin reach the service over the fasthttp engine, and the log phase
// sees Served and every header; request-transformer's body edits arrive
// with a matching Content-Length.
func TestKitUpstreamEditsOnFasthttp(t *testing.T) {
	up := echo(t)
	svc := serviceFor(t, up.URL)
	probe := &kitProbe{logged: make(chan probeLog, 1)}
	reg := plugins.NewRegistry(probe, requesttransformer.New())
	p, gw := gateway(t, Options{}, route("probe", []string{"/probe"}, true, svc), route("rt", []string{"/rt"}, true, svc))
	set, err := plugins.NewSet(reg, []*entity.Plugin{
		pluginEntity("1", "kit-probe", "probe", "", `{}`),
		pluginEntity("2", "request-transformer", "rt", "", `{"remove":{"body":["password"]},"add":{"body":["n:1"]}}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	p.SetPlugins(set)

	req, _ := http.NewRequest("GET", gw.URL+"/probe/a?q=1", nil)
	req.Header.Set("X-Multi", "a")
	req.Header.Add("X-Multi", "b")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got echoed
	_ = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if got.URI != "/elsewhere/x?q=1" || got.Host != "custom.example" {
		t.Errorf("service got %s with Host %s, want /elsewhere/x?q=1 and custom.example", got.URI, got.Host)
	}
	l := <-probe.logged
	if l.method != "PUT" || l.status != 200 || l.served.UpstreamURI != "/elsewhere/x?q=1" || l.served.Upstream <= 0 ||
		l.served.Total < l.served.Upstream || l.served.ResponseBytes == 0 {
		t.Errorf("log phase saw %+v", l)
	}
	if !strings.Contains(l.reqHeaders, "x-multi=a;x-multi=b;") || !strings.Contains(l.respHeaders, "content-type=application/json;") {
		t.Errorf("log phase headers: request %q response %q", l.reqHeaders, l.respHeaders)
	}

	resp, err = http.Post(gw.URL+"/rt", "application/json", strings.NewReader(`{"user":"u","password":"p"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Body != `{"n":"1","user":"u"}` || got.Header.Get("Content-Length") != "" && got.Header.Get("Content-Length") != "20" {
		t.Errorf("service got body %q headers %v", got.Body, got.Header)
	}
}

var (
	_ plugins.Accessor = (*probeHandler)(nil)
	_ plugins.Logger   = (*probeHandler)(nil)
)

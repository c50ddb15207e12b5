package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/bench/procstat"
	"github.com/sluice-gw/sluice/cachebackends/freecache"
	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/store"
)

// TestAdminRouteWritesApplyWithoutRebuilds creates routes one by one
// through the Admin API, as a client would: each write must be served by
// the proxy as soon as the Admin API answers, without a full rebuild of
// the route table (a rebuild per write made creating n routes cost O(n²)).
// Renaming and deleting them must not rebuild either, and the deleted
// routes' metric series must go.
func TestAdminRouteWritesApplyWithoutRebuilds(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "up "+r.URL.Path)
	}))
	defer up.Close()
	backend, err := freecache.New(freecache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, "freecache", backend)
	defer n.Shutdown(context.Background())
	admin, proxy := "http://"+n.Addr("admin"), "http://"+n.Addr("proxy")

	adminDo(t, "POST", admin+"/services", url.Values{"name": {"s"}, "url": {up.URL}}, http.StatusCreated)
	start := metricValue(t, admin, "sluice_router_rebuilds_total")
	if start < 1 {
		t.Fatalf("sluice_router_rebuilds_total = %v after start, want the start-up rebuild counted", start)
	}
	const routes = 50
	for i := range routes {
		adminDo(t, "POST", admin+"/services/s/routes", url.Values{"name": {fmt.Sprint("r", i)}, "paths[]": {fmt.Sprint("/r", i)}}, http.StatusCreated)
		// The Admin API waits for its own change: no polling here.
		if code, body := get(t, proxy+fmt.Sprint("/r", i, "/x")); code != 200 || body != "up /x" {
			t.Fatalf("route r%d just created: proxy answered %d %q, want 200 \"up /x\"", i, code, body)
		}
	}
	adminDo(t, "PATCH", admin+"/routes/r7", url.Values{"name": {"renamed"}}, http.StatusOK)
	adminDo(t, "PATCH", admin+"/services/s", url.Values{"path": {"/base"}}, http.StatusOK)
	if code, body := get(t, proxy+"/r7/x"); code != 200 || body != "up /base/x" {
		t.Fatalf("after the service's path changed: %d %q, want 200 \"up /base/x\"", code, body)
	}
	adminDo(t, "DELETE", admin+"/routes/r3", nil, http.StatusNoContent)
	if code, _ := get(t, proxy+"/r3/x"); code != http.StatusNotFound {
		t.Fatalf("deleted route r3 still served: %d", code)
	}
	if got := metricValue(t, admin, "sluice_router_rebuilds_total"); got != start {
		t.Errorf("sluice_router_rebuilds_total went from %v to %v over %d route writes, want no full rebuild", start, got, routes+3)
	}
	if got := metricValue(t, admin, "sluice_router_routes"); got != routes-1 {
		t.Errorf("sluice_router_routes = %v, want %d", got, routes-1)
	}
	if got := metricValue(t, admin, `sluice_snapshot_changes_applied_total{snapshot="routes"}`); got < routes+2 {
		t.Errorf("sluice_snapshot_changes_applied_total{routes} = %v, want at least %d", got, routes+2)
	}
	metrics := scrape(t, admin)
	for _, gone := range []string{`route="r3"`, `route="r7"`} {
		if strings.Contains(metrics, "sluice_http_requests_total{code=\"200\","+gone) ||
			strings.Contains(metrics, gone+",service=") || strings.Contains(metrics, ","+gone) {
			t.Errorf("series of %s still exported after it was deleted or renamed", gone)
		}
	}
	if !strings.Contains(metrics, `route="renamed"`) {
		t.Error("no series for the renamed route r7 after a request through it")
	}
}

func adminDo(t testing.TB, method, u string, form url.Values, want int) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, u, resp.StatusCode, body, want)
	}
}

func get(t testing.TB, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func scrape(t testing.TB, admin string) string {
	t.Helper()
	code, body := get(t, admin+"/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	return body
}

// metricValue returns the value of the sample named series (with its
// labels as exported, sorted), 0 when absent.
func metricValue(t testing.TB, admin, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(scrape(t, admin), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return 0
}

// BenchmarkAdminCreateRoute creates routes one by one through the Admin
// API over HTTP on a node that already holds 1,000 or 10,000 routes (the
// datastore write, the node's own apply and the Admin API's wait for it).
// Per-route cost that does not grow with the table means creating n routes
// is linear; before the snapshot layer every write rebuilt the table.
func BenchmarkAdminCreateRoute(b *testing.B) {
	for _, size := range []int{1000, 10_000} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			st := openStore(b)
			svc := &entity.Service{ID: "00000000-0000-4000-8000-000000000001", Name: ptr("s"), Host: "upstream", Port: 80, Protocol: "http"}
			ops := []store.Op{insertOp(b, svc)}
			for i := range size {
				ops = append(ops, insertOp(b, &entity.Route{ID: fmt.Sprintf("00000000-0000-4000-8001-%012d", i),
					Protocols: []string{"http", "https"}, Paths: []string{fmt.Sprintf("/r%d", i)},
					Service: &entity.Ref{ID: svc.ID}}))
			}
			if err := st.Apply(context.Background(), ops, nil); err != nil {
				b.Fatal(err)
			}
			backend, err := freecache.New(freecache.Config{})
			if err != nil {
				b.Fatal(err)
			}
			n := startNodeOn(b, st, "freecache", backend)
			defer n.Shutdown(context.Background())
			admin := "http://" + n.Addr("admin")
			b.ResetTimer()
			cpu := procstat.Self()
			for i := range b.N {
				adminDo(b, "POST", admin+"/services/s/routes", url.Values{"paths[]": {fmt.Sprint("/new", i)}}, http.StatusCreated)
			}
			procstat.ReportCPU(b, cpu)
			b.StopTimer()
			if got := metricValue(b, admin, "sluice_router_routes"); got != float64(size+b.N) {
				b.Fatalf("sluice_router_routes = %v, want %d", got, size+b.N)
			}
		})
	}
}

func insertOp(b *testing.B, e entity.Entity) store.Op {
	data, err := json.Marshal(e)
	if err != nil {
		b.Fatal(err)
	}
	return store.Op{Type: store.OpInsert, Record: store.NewRecord(e, data)}
}
func ptr[T any](v T) *T { return &v }

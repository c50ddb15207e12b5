package cluster

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestOpenLoopCountsFromIntendedTime stalls a real server for 300 ms at the
// start of a 1 s run at 100 requests/s, with the client allowed one
// request in flight: the requests due during the stall are sent late, and
// their latency must count from when they were due. Measured from the
// actual send (coordinated omission), all but the first would take ~1 ms.
func TestOpenLoopCountsFromIntendedTime(t *testing.T) {
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { time.Sleep(300 * time.Millisecond) })
		if r.Header.Get("X-Canary") != "1" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	res := openLoop(context.Background(), srv.Client(), srv.URL, LoadOptions{Rate: 100, Duration: time.Second,
		Header: http.Header{"X-Canary": {"1"}}, MaxInFlight: 1})
	t.Logf("%+v", res)
	if res.Requests != 100 || res.ByStatus["204"] != 100 || res.Errors != 0 {
		t.Fatalf("%d requests, by status %v, %d errors; want 100 answered 204", res.Requests, res.ByStatus, res.Errors)
	}
	if res.Late < 20 {
		t.Errorf("%d requests sent late, want the ~29 due during the stall", res.Late)
	}
	if res.LatencyMS.P90 < 150 || res.LatencyMS.Max < 290 {
		t.Errorf("p90 %.1f ms, max %.1f ms: the stall is hidden (want p90 >= 150 ms, max >= 290 ms)", res.LatencyMS.P90, res.LatencyMS.Max)
	}
}

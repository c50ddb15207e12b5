package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an in-test OTLP/HTTP trace receiver: it decodes what the
// nodes' real exporters send and keeps every span.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	errs  []string
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			o.fail(w, err.Error())
			return
		}
		defer gz.Close()
		body = gz
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		o.fail(w, err.Error())
		return
	}
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		o.fail(w, "unmarshal: "+err.Error())
		return
	}
	o.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			o.spans = append(o.spans, ss.GetSpans()...)
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (o *otlpReceiver) fail(w http.ResponseWriter, msg string) {
	o.mu.Lock()
	o.errs = append(o.errs, msg)
	o.mu.Unlock()
	http.Error(w, msg, http.StatusBadRequest)
}

// find returns the first span matching ok.
func (o *otlpReceiver) find(ok func(*tracepb.Span) bool) *tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.spans {
		if ok(s) {
			return s
		}
	}
	return nil
}

// TestChangeJourneyAsOneLinkedTrace: an Admin API write on node A runs in
// a server span whose traceparent travels in the cluster event; node B's
// sluice.cluster.apply span, exported over OTLP/HTTP, links to it.
func TestChangeJourneyAsOneLinkedTrace(t *testing.T) {
	recv := &otlpReceiver{}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	c := startCluster(t, 2, "SLUICE_DB_UPDATE_FREQUENCY=0.5",
		"OTEL_EXPORTER_OTLP_ENDPOINT="+srv.URL, "OTEL_BSP_SCHEDULE_DELAY=100")
	a, b := c.Nodes[0], c.Nodes[1]
	up := upstream(t)

	// The client's own trace: the write continues it.
	const clientTrace = "0af7651916cd43dd8448eb211c80319c"
	req, _ := http.NewRequest(http.MethodPost, a.AdminURL+"/services",
		bytes.NewBufferString(form("name", "journey", "url", up.URL).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Traceparent", "00-"+clientTrace+"-b7ad6b7169203331-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("POST /services = %d, want 201", resp.StatusCode)
	}

	var write, apply *tracepb.Span
	waitFor(t, 15*time.Second, "node A's write span and node B's apply span at the receiver", func() bool {
		write = recv.find(func(s *tracepb.Span) bool {
			return hex.EncodeToString(s.GetTraceId()) == clientTrace && s.GetKind() == tracepb.Span_SPAN_KIND_SERVER
		})
		if write == nil {
			return false
		}
		apply = recv.find(func(s *tracepb.Span) bool {
			if s.GetName() != "sluice.cluster.apply" {
				return false
			}
			for _, l := range s.GetLinks() {
				if bytes.Equal(l.GetTraceId(), write.GetTraceId()) && bytes.Equal(l.GetSpanId(), write.GetSpanId()) {
					return true
				}
			}
			return false
		})
		return apply != nil
	})
	t.Logf("write span %q (trace %s) on %s; apply span on %s links to it", write.GetName(), clientTrace, a.Name, b.Name)
	if write.GetName() != "sluice.admin POST" {
		t.Errorf("write span name = %q, want %q", write.GetName(), "sluice.admin POST")
	}
	if hex.EncodeToString(write.GetParentSpanId()) != "b7ad6b7169203331" {
		t.Errorf("write span parent = %x, want the client's span", write.GetParentSpanId())
	}
	// Only other nodes apply an event (the writer invalidated itself at
	// once), so this span is node B's: a root of its own, linked to A's write.
	if len(apply.GetParentSpanId()) != 0 {
		t.Errorf("apply span has parent %x, want a root span that links to the write", apply.GetParentSpanId())
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.errs) > 0 {
		t.Errorf("the receiver rejected exports: %v", recv.errs)
	}
}

package scrape

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

const exposition = `# HELP sluice_cache_hits_total Entity cache lookups answered with a cached entity.
# TYPE sluice_cache_hits_total counter
sluice_cache_hits_total{backend="freecache",entity="keyauth_credentials"} 90
sluice_cache_hits_total{backend="freecache",entity="consumers"} 10
sluice_cluster_poll_duration_seconds_count 42
sluice_invalidation_lag_seconds_bucket{le="0.1"} 10
sluice_invalidation_lag_seconds_bucket{le="0.5"} 50
sluice_invalidation_lag_seconds_bucket{le="1"} 100
sluice_invalidation_lag_seconds_bucket{le="+Inf"} 100
weird{path="a b}"} 3
`

func TestParseAndSum(t *testing.T) {
	s, err := Parse(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want float64
	}{
		{"sluice_cache_hits_total", 100},
		{"sluice_cluster_poll_duration_seconds_count", 42},
		{"sluice_cluster_poll_duration_seconds", 0},
		{"weird", 3},
		{"absent", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Sum(tt.name); got != tt.want {
				t.Errorf("Sum(%s) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
	if _, err := Parse(strings.NewReader("novalue\n")); err == nil {
		t.Error("Parse accepted a line without a value")
	}
}

func TestQuantile(t *testing.T) {
	s, err := Parse(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	h := s.Histogram("sluice_invalidation_lag_seconds")
	tests := []struct {
		name string
		b    []Bucket
		q    float64
		want float64
	}{
		{"in first bucket", h, 0.05, 0.05},
		{"interpolated", h, 0.3, 0.3},
		{"p99", h, 0.99, 0.99},
		{"delta", Sub(h, []Bucket{{0.1, 10}, {0.5, 10}, {1, 10}, {math.Inf(1), 10}}), 0.5, 0.55},
		{"in +Inf returns highest bound", []Bucket{{1, 1}, {math.Inf(1), 10}}, 0.99, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Quantile(tt.b, tt.q); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
	if !math.IsNaN(Quantile(nil, 0.5)) {
		t.Error("Quantile of no buckets is not NaN")
	}
}

func TestAdd(t *testing.T) {
	a := []Bucket{{0.1, 1}, {1, 3}, {math.Inf(1), 4}}
	b := []Bucket{{0.1, 2}, {1, 2}, {math.Inf(1), 5}}
	sum := Add(nil, a)
	sum = Add(sum, b)
	want := []Bucket{{0.1, 3}, {1, 5}, {math.Inf(1), 9}}
	if !reflect.DeepEqual(sum, want) {
		t.Errorf("Add = %v, want %v", sum, want)
	}
	if a[0].Count != 1 {
		t.Error("Add(nil, a) shares a's array")
	}
}

// TestWith checks that With keeps one labelled series of a family, so a
// histogram can be read for one label value.
func TestWith(t *testing.T) {
	s, err := Parse(strings.NewReader(`h_bucket{snapshot="routes",le="0.1"} 3
h_bucket{snapshot="routes",le="+Inf"} 4
h_bucket{snapshot="plugins",le="0.1"} 10
h_bucket{snapshot="plugins",le="+Inf"} 10
h_count{snapshot="routes"} 4
h_count{snapshot="routes_old"} 7
plain 1
`))
	if err != nil {
		t.Fatal(err)
	}
	r := s.With("snapshot", "routes")
	if got := r.Sum("h_count"); got != 4 {
		t.Errorf("routes h_count = %v, want 4 (not routes_old's 7)", got)
	}
	want := []Bucket{{LE: 0.1, Count: 3}, {LE: math.Inf(1), Count: 4}}
	if got := r.Histogram("h"); !reflect.DeepEqual(got, want) {
		t.Errorf("routes buckets = %v, want %v", got, want)
	}
	if len(s.With("snapshot", "none")) != 0 || r.Sum("plain") != 0 {
		t.Errorf("With kept series without the label: %v", r)
	}
}

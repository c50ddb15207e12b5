// Package scrape reads a node's Prometheus text exposition (/metrics) into
// sums and histograms, enough for the benchmark's deltas.
package scrape

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// Samples maps a series ("name{labels}" as exposed) to its value.
type Samples map[string]float64

// Get fetches url and parses it.
func Get(ctx context.Context, url string) (Samples, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape: %s answered %d", url, resp.StatusCode)
	}
	return Parse(resp.Body)
}

// Parse reads the text exposition format, skipping comments.
func Parse(r io.Reader) (Samples, error) {
	s := Samples{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// The value follows the series; labels may contain spaces, so
		// split after the closing brace when there is one.
		cut := strings.LastIndexByte(line, '}')
		if cut < 0 {
			cut = strings.IndexByte(line, ' ')
			if cut < 0 {
				return nil, fmt.Errorf("scrape: no value in %q", line)
			}
		} else {
			cut++
		}
		fields := strings.Fields(line[cut:])
		if len(fields) == 0 {
			return nil, fmt.Errorf("scrape: no value in %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("scrape: bad value in %q: %w", line, err)
		}
		s[line[:cut]] = v
	}
	return s, sc.Err()
}

// Sum adds every series of the metric name, whatever its labels.
func (s Samples) Sum(name string) float64 {
	var t float64
	for k, v := range s {
		if k == name || strings.HasPrefix(k, name+"{") {
			t += v
		}
	}
	return t
}

// With returns the series of s that carry the label name="value", for
// one series of a labelled family: s.With("snapshot", "routes").
func (s Samples) With(name, value string) Samples {
	pair := name + `="` + value + `"`
	out := Samples{}
	for k, v := range s {
		i := strings.IndexByte(k, '{')
		if i < 0 {
			continue
		}
		for _, l := range strings.Split(strings.TrimSuffix(k[i+1:], "}"), ",") {
			if l == pair {
				out[k] = v
				break
			}
		}
	}
	return out
}

// Bucket is one cumulative histogram bucket.
type Bucket struct {
	LE    float64
	Count float64
}

// Histogram returns the cumulative buckets of histogram name, summed over
// its other labels, sorted by bound (the last is +Inf).
func (s Samples) Histogram(name string) []Bucket {
	by := map[float64]float64{}
	prefix := name + "_bucket{"
	for k, v := range s {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		i := strings.Index(k, `le="`)
		if i < 0 {
			continue
		}
		rest := k[i+4:]
		le, err := strconv.ParseFloat(rest[:strings.IndexByte(rest, '"')], 64)
		if err != nil {
			continue
		}
		by[le] += v
	}
	out := make([]Bucket, 0, len(by))
	for le, c := range by {
		out = append(out, Bucket{LE: le, Count: c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LE < out[j].LE })
	return out
}

// Sub returns the buckets of b minus those of before (same bounds), the
// observations made between two scrapes.
func Sub(b, before []Bucket) []Bucket {
	out := make([]Bucket, len(b))
	for i := range b {
		out[i] = b[i]
		for _, o := range before {
			if o.LE == b[i].LE {
				out[i].Count -= o.Count
			}
		}
	}
	return out
}

// Add returns the buckets of sum and b added bound by bound (the bounds of
// sum kept), for a histogram over several nodes; a nil sum returns a copy
// of b. It may reuse sum's array.
func Add(sum, b []Bucket) []Bucket {
	if sum == nil {
		return append([]Bucket(nil), b...)
	}
	for i := range sum {
		for _, o := range b {
			if o.LE == sum[i].LE {
				sum[i].Count += o.Count
			}
		}
	}
	return sum
}

// Quantile estimates the q-th quantile (0..1) of cumulative buckets by
// linear interpolation inside the bucket, as Prometheus's
// histogram_quantile does. It returns NaN for no observations; a quantile
// in the +Inf bucket returns the highest finite bound.
func Quantile(b []Bucket, q float64) float64 {
	if len(b) == 0 || b[len(b)-1].Count <= 0 {
		return math.NaN()
	}
	total := b[len(b)-1].Count
	rank := q * total
	lowerBound, lowerCount := 0.0, 0.0
	for _, bk := range b {
		if bk.Count >= rank {
			if math.IsInf(bk.LE, 1) {
				return lowerBound
			}
			if bk.Count == lowerCount {
				return bk.LE
			}
			return lowerBound + (bk.LE-lowerBound)*(rank-lowerCount)/(bk.Count-lowerCount)
		}
		lowerBound, lowerCount = bk.LE, bk.Count
	}
	return lowerBound
}

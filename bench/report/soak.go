package report

import (
	"fmt"
	"math"
	"strings"
)

// Soak is the soak profile's run: open-loop traffic at a fixed rate
// through every node for a long time while node A keeps changing the
// configuration, sampled every interval.
type Soak struct {
	DurationS float64 `json:"duration_s"`
	IntervalS float64 `json:"interval_s"`
	// CapacityRPS is the closed-loop rate measured before the soak (0 when
	// the rate was given).
	CapacityRPS float64 `json:"capacity_rps"`
	// RateRPS is the open-loop rate: half of CapacityRPS, or the given one.
	RateRPS      int     `json:"rate_rps"`
	Consumers    int     `json:"consumers"`
	UnknownShare float64 `json:"unknown_share"`
	// RateLimitPerS is the rate-limiting plugin's config.second per consumer.
	RateLimitPerS int     `json:"rate_limit_per_s"`
	ChangeEveryS  float64 `json:"change_every_s"`
	// Changes counts configuration changes made on node A by kind
	// (route-added, route-removed, plugin-patched, credential-created,
	// credential-revoked); ChangeErrors those the Admin API refused.
	Changes      map[string]int `json:"changes"`
	ChangeErrors int            `json:"change_errors"`
	Intervals    []SoakInterval `json:"intervals"`
	Verdict      SoakVerdict    `json:"verdict"`
}

// SoakInterval is one sampling interval.
type SoakInterval struct {
	// TS is the end of the interval in seconds since the soak traffic began.
	TS float64 `json:"t_s"`
	// Requests answered in the interval: OK (200), Unauthorized (401,
	// unknown keys), Limited (429) and Errors (anything else, transport
	// errors included).
	Requests     int    `json:"requests"`
	OK           int    `json:"ok"`
	Unauthorized int    `json:"unauthorized"`
	Limited      int    `json:"limited"`
	Errors       int    `json:"errors"`
	FirstError   string `json:"first_error,omitempty"`
	// LatencyMS is over the interval's requests (p50, p99, max).
	LatencyMS Latency    `json:"latency_ms"`
	Changes   int        `json:"changes"`
	Nodes     []SoakNode `json:"nodes"`
}

// SoakNode is one node at the end of an interval. Zero RSS or goroutines
// mean the sample could not be taken (Error says why).
type SoakNode struct {
	Name           string  `json:"name"`
	RSSBytes       int64   `json:"rss_bytes"`
	HeapInuseBytes float64 `json:"heap_inuse_bytes"`
	Goroutines     float64 `json:"goroutines"`
	// OpenFDs is process_open_fds: mostly the load's keep-alive
	// connections, each of which holds a goroutine on the node, so a
	// goroutine count that follows it is connections, not a leak.
	OpenFDs float64 `json:"open_fds"`
	// GCCount is the GC cycles completed in the interval; GCPauseMeanMS
	// their mean stop-the-world pause. GCPauseP50MS and GCPauseMaxMS are
	// the node's go_gc_duration_seconds quantiles 0.5 and 1, which the Go
	// runtime computes over its most recent (up to 256) pauses.
	GCCount       float64 `json:"gc_count"`
	GCPauseMeanMS float64 `json:"gc_pause_mean_ms"`
	GCPauseP50MS  float64 `json:"gc_pause_p50_ms"`
	GCPauseMaxMS  float64 `json:"gc_pause_max_ms"`
	// DatastoreQPS is sluice_datastore_query_duration_seconds_count per
	// second over the interval.
	DatastoreQPS float64 `json:"datastore_qps"`
	Error        string  `json:"error,omitempty"`
}

// SoakVerdict judges the run: per node, least-squares slopes over the last
// two thirds of the intervals (the first third is warm-up: caches fill,
// the heap finds its size).
type SoakVerdict struct {
	Nodes []SoakNodeVerdict `json:"nodes"`
	// MemoryFlat and GoroutinesFlat hold for every node; Errors is the
	// total of SoakInterval.Errors.
	MemoryFlat     bool `json:"memory_flat"`
	GoroutinesFlat bool `json:"goroutines_flat"`
	Errors         int  `json:"errors"`
	// Behind counts intervals (the last, partial one aside) that answered
	// fewer than 90% of RateRPS x IntervalS requests: the cluster or the
	// generator fell behind the open loop, and the run measures overload.
	Behind int `json:"behind_intervals"`
	// GCPauseMaxMS is the largest GCPauseMaxMS of any node and interval.
	GCPauseMaxMS float64 `json:"gc_pause_max_ms"`
	// Summary is the verdict in one line.
	Summary string `json:"summary"`
}

// SoakNodeVerdict is one node's trend.
type SoakNodeVerdict struct {
	Name string `json:"name"`
	// RSS at the first and last sample, and its slope over the fitted
	// window in MiB per hour.
	RSSStartMiB      float64 `json:"rss_start_mib"`
	RSSEndMiB        float64 `json:"rss_end_mib"`
	RSSSlopeMiBPerH  float64 `json:"rss_slope_mib_per_h"`
	HeapSlopeMiBPerH float64 `json:"heap_inuse_slope_mib_per_h"`
	GoroutinesStart  float64 `json:"goroutines_start"`
	GoroutinesEnd    float64 `json:"goroutines_end"`
	GoroutinesPerH   float64 `json:"goroutines_slope_per_h"`
	MemoryFlat       bool    `json:"memory_flat"`
	GoroutinesFlat   bool    `json:"goroutines_flat"`
}

// Flatness thresholds: a trend is flat when the growth the fitted line
// predicts over the fitted window stays within max(absolute, relative x
// mean). GC and connection churn make RSS and goroutines wobble; a leak
// grows steadily and crosses these within a 30-minute run.
const (
	flatRSSMiB        = 4
	flatRSSShare      = 0.05
	flatGoroutines    = 10
	flatGoroutineFrac = 0.10
)

// Slope returns the least-squares slope of ys over xs (0 for fewer than
// two points or when every x is equal).
func Slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if len(xs) < 2 || len(xs) != len(ys) {
		return 0
	}
	var sx, sy float64
	for i := range xs {
		sx, sy = sx+xs[i], sy+ys[i]
	}
	mx, my := sx/n, sy/n
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// Judge computes the verdict of s from its intervals.
func Judge(s *Soak) SoakVerdict {
	var v SoakVerdict
	v.MemoryFlat, v.GoroutinesFlat = true, true
	names := nodeNames(s.Intervals)
	for _, name := range names {
		nv := judgeNode(s.Intervals, name)
		v.MemoryFlat = v.MemoryFlat && nv.MemoryFlat
		v.GoroutinesFlat = v.GoroutinesFlat && nv.GoroutinesFlat
		v.Nodes = append(v.Nodes, nv)
	}
	for i, in := range s.Intervals {
		if i < len(s.Intervals)-1 && float64(in.Requests) < 0.9*float64(s.RateRPS)*s.IntervalS {
			v.Behind++
		}
		v.Errors += in.Errors
		for _, n := range in.Nodes {
			v.GCPauseMaxMS = math.Max(v.GCPauseMaxMS, n.GCPauseMaxMS)
		}
	}
	if len(names) == 0 {
		v.MemoryFlat, v.GoroutinesFlat = false, false
	}
	v.Summary = summary(v)
	return v
}

// nodeNames lists the nodes in the order of their first appearance.
func nodeNames(in []SoakInterval) []string {
	var names []string
	seen := map[string]bool{}
	for _, i := range in {
		for _, n := range i.Nodes {
			if !seen[n.Name] {
				seen[n.Name] = true
				names = append(names, n.Name)
			}
		}
	}
	return names
}

// series is one node's valid samples: time in hours and values.
type series struct{ t, v []float64 }

func (s *series) add(t, v float64) { s.t, s.v = append(s.t, t), append(s.v, v) }

// tail keeps the last two thirds of the samples.
func (s series) tail() series {
	k := len(s.t) / 3
	return series{t: s.t[k:], v: s.v[k:]}
}

func (s series) mean() float64 {
	if len(s.v) == 0 {
		return 0
	}
	var sum float64
	for _, x := range s.v {
		sum += x
	}
	return sum / float64(len(s.v))
}

func (s series) span() float64 {
	if len(s.t) < 2 {
		return 0
	}
	return s.t[len(s.t)-1] - s.t[0]
}

func judgeNode(in []SoakInterval, name string) SoakNodeVerdict {
	var rss, heap, gor series
	for _, i := range in {
		h := i.TS / 3600
		for _, n := range i.Nodes {
			if n.Name != name {
				continue
			}
			if n.RSSBytes > 0 {
				rss.add(h, float64(n.RSSBytes)/(1<<20))
			}
			if n.Goroutines > 0 {
				gor.add(h, n.Goroutines)
				heap.add(h, n.HeapInuseBytes/(1<<20))
			}
		}
	}
	nv := SoakNodeVerdict{Name: name}
	if len(rss.v) > 0 {
		nv.RSSStartMiB, nv.RSSEndMiB = rss.v[0], rss.v[len(rss.v)-1]
	}
	if len(gor.v) > 0 {
		nv.GoroutinesStart, nv.GoroutinesEnd = gor.v[0], gor.v[len(gor.v)-1]
	}
	rt, gt, ht := rss.tail(), gor.tail(), heap.tail()
	nv.RSSSlopeMiBPerH = Slope(rt.t, rt.v)
	nv.HeapSlopeMiBPerH = Slope(ht.t, ht.v)
	nv.GoroutinesPerH = Slope(gt.t, gt.v)
	nv.MemoryFlat = len(rt.v) >= 3 && math.Abs(nv.RSSSlopeMiBPerH*rt.span()) <= math.Max(flatRSSMiB, flatRSSShare*rt.mean())
	nv.GoroutinesFlat = len(gt.v) >= 3 && math.Abs(nv.GoroutinesPerH*gt.span()) <= math.Max(flatGoroutines, flatGoroutineFrac*gt.mean())
	return nv
}

func summary(v SoakVerdict) string {
	var b strings.Builder
	word := func(ok bool) string {
		if ok {
			return "flat"
		}
		return "NOT flat"
	}
	var rss, gor []string
	for _, n := range v.Nodes {
		rss = append(rss, fmt.Sprintf("%s %+.1f MiB/h (%.1f -> %.1f MiB)", n.Name, n.RSSSlopeMiBPerH, n.RSSStartMiB, n.RSSEndMiB))
		gor = append(gor, fmt.Sprintf("%s %.0f -> %.0f, %+.0f/h", n.Name, n.GoroutinesStart, n.GoroutinesEnd, n.GoroutinesPerH))
	}
	fmt.Fprintf(&b, "memory %s: RSS slope %s over the last 2/3 of the run; ", word(v.MemoryFlat), strings.Join(rss, ", "))
	fmt.Fprintf(&b, "goroutines %s (%s); ", word(v.GoroutinesFlat), strings.Join(gor, ", "))
	fmt.Fprintf(&b, "%d errors; GC pause max %.2f ms", v.Errors, v.GCPauseMaxMS)
	if v.Behind > 0 {
		fmt.Fprintf(&b, "; %d intervals fell behind the rate (overload)", v.Behind)
	}
	return b.String()
}

// soakMarkdown renders the soak section: verdict, then one row per
// interval.
func soakMarkdown(s *Soak) string {
	var b strings.Builder
	b.WriteString("## Soak\n\n")
	changes := 0
	var kinds []string
	for _, k := range []string{"route-added", "route-removed", "plugin-patched", "credential-created", "credential-revoked"} {
		changes += s.Changes[k]
		kinds = append(kinds, fmt.Sprintf("%s %d", k, s.Changes[k]))
	}
	capacity := "given"
	if s.CapacityRPS > 0 {
		capacity = fmt.Sprintf("half of the measured %.0f rps", s.CapacityRPS)
	}
	fmt.Fprintf(&b, "%.0f s of open-loop traffic at %d requests/s (%s) through every node: key-auth + rate-limiting (%d/s per consumer), %d consumers by Zipf plus %.0f%% unknown keys. A configuration change on node A every %gs: %d changes (%s), %d refused. Sampled every %gs.\n\n",
		s.DurationS, s.RateRPS, capacity, s.RateLimitPerS, s.Consumers, 100*s.UnknownShare, s.ChangeEveryS, changes, strings.Join(kinds, ", "), s.ChangeErrors, s.IntervalS)
	fmt.Fprintf(&b, "**Verdict:** %s.\n\n", s.Verdict.Summary)
	b.WriteString("| t s | requests | 401 | 429 | errors | p50 ms | p99 ms | changes |")
	names := nodeNames(s.Intervals)
	for _, n := range names {
		fmt.Fprintf(&b, " %s RSS MiB | heap MiB | goroutines | fds | GCs | GC max ms | db q/s |", n)
	}
	b.WriteString("\n|" + strings.Repeat("---|", 8+7*len(names)) + "\n")
	for _, in := range s.Intervals {
		fmt.Fprintf(&b, "| %.0f | %d | %d | %d | %d | %s | %s | %d |", in.TS, in.Requests, in.Unauthorized, in.Limited, in.Errors,
			fmtMS(in.LatencyMS.P50), fmtMS(in.LatencyMS.P99), in.Changes)
		for _, name := range names {
			n := nodeIn(in, name)
			fmt.Fprintf(&b, " %.1f | %.1f | %.0f | %.0f | %.0f | %.2f | %.1f |", float64(n.RSSBytes)/(1<<20), n.HeapInuseBytes/(1<<20),
				n.Goroutines, n.OpenFDs, n.GCCount, n.GCPauseMaxMS, n.DatastoreQPS)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func nodeIn(in SoakInterval, name string) SoakNode {
	for _, n := range in.Nodes {
		if n.Name == name {
			return n
		}
	}
	return SoakNode{Name: name}
}

// Package report holds the benchmark's results schema and renders it as
// results.json, report.md, report.html and PNG plots, with a tuning
// recommendation for stated staleness budgets.
package report

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/bench/stats"
)

// SchemaVersion is the version of results.json; bump it on incompatible
// changes (2: consistency windows with sample counts, confidence bounds,
// the poll model and the node lag histogram's count).
const SchemaVersion = 2

// Results is everything one `sluice bench` run measured.
type Results struct {
	Schema      int           `json:"schema"`
	StartedAt   time.Time     `json:"started_at"`
	DurationS   float64       `json:"duration_s"`
	Profile     string        `json:"profile"`
	Database    string        `json:"database"`
	Nodes       int           `json:"nodes"`
	Consumers   int           `json:"consumers"`
	Machine     Machine       `json:"machine"`
	Command     string        `json:"command"`
	Throughput  []Throughput  `json:"throughput"`
	Consistency []Consistency `json:"consistency"`
	// Storm is the invalidation-storm phase (nil when not run).
	Storm *Storm `json:"storm,omitempty"`
	// Soak is the soak profile's run (nil for the other profiles).
	Soak *Soak `json:"soak,omitempty"`
	// Scale is the scale profile's run (nil for the other profiles).
	Scale *Scale `json:"scale,omitempty"`
	// Cluster is `sluice bench --cluster`'s run on a running cluster (nil
	// for the local bench).
	Cluster *Cluster `json:"cluster,omitempty"`
	// Recommendations are one-line tuning advice, one per budget.
	Recommendations []string `json:"recommendations"`
	// Notes list targets not met and anything skipped, in words.
	Notes []string `json:"notes"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUModel  string `json:"cpu_model"`
	NProc     int    `json:"nproc"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
}

// Latency is a set of percentiles in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90,omitempty"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9,omitempty"`
	Max  float64 `json:"max"`
}

// Throughput is one target measured closed-loop (RPS) and open-loop
// (Latency at OpenRate).
type Throughput struct {
	// Target is "direct", "nginx", "go-fasthttp" or "go-httputil" (the
	// bare Go proxies of bench/bareproxy), or "gateway".
	Target string `json:"target"`
	// CacheBackend is the gateway's cache_backend ("" otherwise).
	CacheBackend string `json:"cache_backend"`
	// RPS is the closed-loop maximum with Conns connections.
	RPS           float64 `json:"rps"`
	Conns         int     `json:"conns"`
	ClosedErrors  int     `json:"closed_errors"`
	ClosedLatency Latency `json:"closed_latency_ms"`
	OpenRate      int     `json:"open_rate_rps"`
	OpenErrors    int     `json:"open_errors"`
	LatencyMS     Latency `json:"latency_ms"`
	// CPUMicrosPerRequest is the proxy process's utime+stime during the
	// closed loop divided by its requests (0 when not measurable).
	CPUMicrosPerRequest float64 `json:"cpu_us_per_request"`
	// HitRatio is (hits+negative hits)/(hits+negative hits+misses) of the
	// entity cache during the closed loop.
	HitRatio     float64 `json:"hit_ratio"`
	DatastoreQPS float64 `json:"datastore_qps"`
}

// Consistency is one db_update_frequency/push setting of the sweep.
type Consistency struct {
	DBUpdateFrequencyS float64 `json:"db_update_frequency_s"`
	Push               bool    `json:"push"`
	// Via, when set, says how changes reached the nodes instead of cluster
	// events: "POST /config to every node" (run.ViaPostConfig) on DB-less
	// nodes, where each change is the changed configuration POSTed to
	// each node in turn and a window runs from the first POST's send to
	// the change served by every node. DBUpdateFrequencyS and Push do not
	// apply, and Write summarizes every POST.
	Via string `json:"via,omitempty"`
	// Window summarizes the windows: each the time from the Admin API write
	// returning on node A to the first probe of the change's probed node
	// that saw it. Each change is probed on one node, so windows are
	// independent.
	Window Summary `json:"window_ms"`
	// Write summarizes the writes' latency on node A (sent to answered).
	// The window starts at the answer; the change committed before it, by
	// as much as node A's own rebuild and reply took.
	Write Summary `json:"write_ms"`
	// Missed counts changes a node had not shown within the probe limit.
	Missed int `json:"missed"`
	// Warm counts the changes whose entities were verified in the probed
	// node's cache just before the change; Cold those that were not,
	// which were neither made nor measured.
	Warm int `json:"warm"`
	Cold int `json:"cold"`
	// ByChange summarizes the windows per kind of change.
	ByChange map[string]Summary `json:"by_change"`
	// SpanS is the span over which the changes' write times were drawn,
	// uniformly and independently: a whole number of poll intervals, so
	// every phase of the poll cycle is equally likely.
	SpanS float64 `json:"span_s"`
	// ProbeMS is the probe's period on each pending change.
	ProbeMS float64 `json:"probe_ms"`
	// Model is the uniform poll model and the windows' distance from it
	// (absent with push on).
	Model *Model `json:"model,omitempty"`
	// NodeLag is the nodes' own view of the same changes.
	NodeLag NodeLag `json:"node_lag_ms"`
	// PollsPerSecPerNode and RowsPerSecPerNode are the datastore cost.
	PollsPerSecPerNode float64 `json:"polls_per_s_per_node"`
	RowsPerSecPerNode  float64 `json:"rows_per_s_per_node"`
	// RPS is a closed-loop run on one non-writing node under this setting,
	// before the changes.
	RPS float64 `json:"rps"`
	// Windows are the raw samples (ms), for the CDF.
	Windows []float64 `json:"windows_ms"`
}

// Storm is the invalidation-storm phase: node B's latency at a fixed
// rate, calm and while node A takes a stream of configuration changes.
type Storm struct {
	DBUpdateFrequencyS float64 `json:"db_update_frequency_s"`
	// Rate is the open-loop request rate on node B during each phase.
	Rate int `json:"rate_rps"`
	// PhaseS is the length of each calm, control and storm segment; the
	// run goes through them Rounds times, and Calm, Control and Storm pool
	// each kind's requests, so that the machine's own stalls fall on all
	// alike.
	PhaseS float64      `json:"phase_s"`
	Rounds []StormRound `json:"rounds"`
	// Pinning says which CPUs the processes ran on ("" when unpinned).
	Pinning string `json:"pinning"`
	// NodeBGOMAXPROCS is node B's GOMAXPROCS (go_sched_gomaxprocs_threads):
	// with 1, work that holds the P (applying a poll's events, a rebuild)
	// delays the requests arriving meanwhile.
	NodeBGOMAXPROCS int        `json:"node_b_gomaxprocs"`
	Calm            StormPhase `json:"calm"`
	Storm           StormPhase `json:"storm"`
	// Control, when measured, is node B during the same writes made on a
	// node C with a datastore of its own: what the writes cost the machine
	// (node A's CPU, the datastore's disk, the VM's neighbours) and not
	// node B's own work. Storm over Control is node B's share.
	Control              *StormPhase `json:"control,omitempty"`
	ControlChangesPerSec float64     `json:"control_changes_per_s,omitempty"`
	ControlWriteErrors   int         `json:"control_write_errors,omitempty"`
	// TargetChangesPerSec is the writers' pace; ChangesPerSec what node A
	// took, WriteErrors the changes it refused or failed.
	TargetChangesPerSec int     `json:"target_changes_per_s"`
	ChangesPerSec       float64 `json:"changes_per_s"`
	Writes              int     `json:"writes"`
	WriteErrors         int     `json:"write_errors"`
}

// StormRound is one calm segment and the control (when measured) and
// storm segments after it.
type StormRound struct {
	CalmP99    float64 `json:"calm_p99_ms"`
	ControlP99 float64 `json:"control_p99_ms,omitempty"`
	StormP99   float64 `json:"storm_p99_ms"`
}

// StormPhase is one phase of the storm run, seen from the load client and
// from node B's metrics and CPU time.
type StormPhase struct {
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	Latency  Latency `json:"latency_ms"`
	// CPUPercent is node B's CPU time (CPUSeconds) over the phase's wall
	// time (WallSeconds).
	CPUPercent  float64 `json:"node_b_cpu_percent"`
	CPUSeconds  float64 `json:"node_b_cpu_s"`
	WallSeconds float64 `json:"wall_s"`
	// Events counts the cluster events node B applied during the phase;
	// Applies its incremental snapshot updates, which took ApplyMS in all;
	// Rebuilds its full snapshot rebuilds (route table and plugin set),
	// which took RebuildMS.
	Events    float64 `json:"events"`
	Applies   float64 `json:"applies"`
	ApplyMS   float64 `json:"apply_ms"`
	Rebuilds  float64 `json:"rebuilds"`
	RebuildMS float64 `json:"rebuild_ms"`
}

// Ratio is the storm's p99 over the calm p99 (0 when not measured).
func (s *Storm) Ratio() float64 {
	if s == nil || s.Calm.Latency.P99 <= 0 {
		return 0
	}
	return s.Storm.Latency.P99 / s.Calm.Latency.P99
}

// MachineRatio is the control's p99 over the calm one (0 when not
// measured): what the writes cost the machine, node B's work aside.
func (s *Storm) MachineRatio() float64 {
	if s == nil || s.Control == nil || s.Calm.Latency.P99 <= 0 {
		return 0
	}
	return s.Control.Latency.P99 / s.Calm.Latency.P99
}

// ControlRatio is the storm's p99 over the control's (0 when not
// measured): node B's own share of the storm's cost.
func (s *Storm) ControlRatio() float64 {
	if s == nil || s.Control == nil || s.Control.Latency.P99 <= 0 {
		return 0
	}
	return s.Storm.Latency.P99 / s.Control.Latency.P99
}

// Write writes results.json, report.md, report.html and the PNG plots
// into dir.
func Write(dir string, r *Results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), b, 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	plots, err := writePlots(dir, r)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(Markdown(r, plots)), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	html, err := HTML(dir, r, plots)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.html"), []byte(html), 0o644)
}

// Read loads a results.json.
func Read(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("report: %s: %w", path, err)
	}
	if r.Schema != SchemaVersion {
		return nil, fmt.Errorf("report: %s has schema %d, want %d", path, r.Schema, SchemaVersion)
	}
	return &r, nil
}

// Recommend returns one line of advice for keeping the p99 window within
// budget: the largest (cheapest) db_update_frequency whose 95 % upper
// confidence bound on the p99 fits, with no missed or cold changes,
// preferring polling alone over push at the same frequency. When none
// fits it names the setting with the lowest bound, together with the
// settings whose p99 sampling error does not separate from it, cheapest
// first: a difference within the noise is no ranking.
func Recommend(rows []Consistency, budget time.Duration) string {
	budgetMS := float64(budget) / 1e6
	var bounded []Consistency
	rows = slices.DeleteFunc(slices.Clone(rows), func(r Consistency) bool { return r.Via != "" })
	for _, r := range rows {
		if r.Window.P99Upper != nil && r.Missed == 0 && r.Cold == 0 {
			bounded = append(bounded, r)
		}
	}
	if len(bounded) == 0 {
		if len(rows) == 0 {
			return fmt.Sprintf("for p99 staleness <= %v: no setting measured", budget)
		}
		most := slices.MaxFunc(rows, func(a, b Consistency) int { return a.Window.N - b.Window.N })
		return fmt.Sprintf("for p99 staleness <= %v: no setting's p99 can be bounded (at most %d windows per setting, and a setting counts only with no missed or cold change; a 95 %% order-statistic bound on the p99 needs %d): run the default profile",
			budget, most.Window.N, stats.MinSamples(0.99, Confidence))
	}
	// Cheapest first: highest frequency, then push off.
	slices.SortStableFunc(bounded, func(a, b Consistency) int {
		if c := cmpFloat(b.DBUpdateFrequencyS, a.DBUpdateFrequencyS); c != 0 {
			return c
		}
		switch {
		case a.Push == b.Push:
			return 0
		case !a.Push:
			return -1
		}
		return 1
	})
	for _, r := range bounded {
		if *r.Window.P99Upper <= budgetMS {
			return fmt.Sprintf("for p99 staleness <= %v use db_update_frequency=%g%s (p99 <= %.0f ms at 95 %% from %d windows; measured p99 %s ms, max %.0f ms; poll cost %.2f polls/s and %.2f rows/s per node)",
				budget, r.DBUpdateFrequencyS, pushWord(r.Push), *r.Window.P99Upper, r.Window.N, r.Window.p99Text(), r.Window.Max, r.PollsPerSecPerNode, r.RowsPerSecPerNode)
		}
	}
	best := slices.MinFunc(bounded, func(a, b Consistency) int { return cmpFloat(*a.Window.P99Upper, *b.Window.P99Upper) })
	var near []string
	for _, r := range bounded {
		// r is not separated from best when its p99 may be as low as
		// best's may be high.
		if r.Window.P99Lower == nil || *r.Window.P99Lower <= *best.Window.P99Upper {
			near = append(near, fmt.Sprintf("db_update_frequency=%g%s (p99 <= %.0f ms at 95 %%)", r.DBUpdateFrequencyS, pushWord(r.Push), *r.Window.P99Upper))
		}
	}
	if len(near) == 1 {
		return fmt.Sprintf("for p99 staleness <= %v: no setting's 95 %% upper bound on the p99 fits; the closest is %s", budget, near[0])
	}
	return fmt.Sprintf("for p99 staleness <= %v: no setting's 95 %% upper bound on the p99 fits; the closest, not separable within sampling error and listed cheapest first, are %s",
		budget, strings.Join(near, ", "))
}

func pushWord(push bool) string {
	if push {
		return " with db_update_push=on"
	}
	return ""
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// fmtMS formats milliseconds for tables.
func fmtMS(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/heatmap"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// panelHeight is the height of every graph panel in grid units; stats are
// half as tall.
const panelHeight = 8

// target is one PromQL query of a panel with its legend.
type target struct {
	expr, legend string
}

// board wraps a dashboard builder and hands out panel ids in order, so ids
// are unique within a dashboard by construction.
type board struct {
	b      *dashboard.DashboardBuilder
	lastID uint32
}

// newBoard returns a board with Sluice's common settings: uid, tags, the
// Prometheus datasource and the instance variable.
func newBoard(uid, title, description string) *board {
	b := dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{"sluice"}).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Refresh("30s").
		Time("now-1h", "now").
		Timezone("browser").
		WithVariable(labelValues("instance", "Instance", "sluice_router_routes", `job="sluice"`))
	return &board{b: b}
}

// nextID returns the next unused panel id.
func (bd *board) nextID() uint32 {
	bd.lastID++
	return bd.lastID
}

// row starts a new, expanded row; panels added after it belong to it.
func (bd *board) row(title string) {
	bd.b.WithRow(dashboard.NewRowBuilder(title).Id(bd.nextID()))
}

// timeseries adds a graph panel of the given width.
func (bd *board) timeseries(title, description, unit string, width uint32, targets ...target) {
	p := timeseries.NewPanelBuilder().
		Id(bd.nextID()).
		Title(title).
		Description(description).
		Datasource(datasource()).
		Unit(unit).
		Span(width).
		Height(panelHeight).
		FillOpacity(10).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true))
	for i, t := range targets {
		p.WithTarget(query(i, t))
	}
	bd.b.WithPanel(p)
}

// stat adds a single-value panel. mappings may be nil.
func (bd *board) stat(title, description, unit string, width uint32, mappings []dashboard.ValueMapping, targets ...target) {
	p := stat.NewPanelBuilder().
		Id(bd.nextID()).
		Title(title).
		Description(description).
		Datasource(datasource()).
		Unit(unit).
		Span(width).
		Height(panelHeight / 2).
		GraphMode(common.BigValueGraphModeArea).
		ColorMode(common.BigValueColorModeValue).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
	if mappings != nil {
		p.Mappings(mappings)
	}
	for i, t := range targets {
		p.WithTarget(query(i, t))
	}
	bd.b.WithPanel(p)
}

// heatmap adds a heatmap of pre-bucketed Prometheus histogram data; expr must
// return one series per `le`.
func (bd *board) heatmap(title, description, unit string, width uint32, expr string) {
	q := query(0, target{expr: expr, legend: "{{le}}"}).Format(prometheus.PromQueryFormatHeatmap)
	p := heatmap.NewPanelBuilder().
		Id(bd.nextID()).
		Title(title).
		Description(description).
		Datasource(datasource()).
		Span(width).
		Height(panelHeight).
		Calculate(false).
		YAxis(heatmap.NewYAxisConfigBuilder().Unit(unit)).
		CellGap(1).
		WithTarget(q)
	bd.b.WithPanel(p)
}

// build returns the finished dashboard.
func (bd *board) build() (dashboard.Dashboard, error) {
	return bd.b.Build()
}

// query builds target number i (refId A, B, ...) against the Prometheus datasource.
func query(i int, t target) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		RefId(string(rune('A' + i))).
		Datasource(datasource()).
		Expr(t.expr).
		LegendFormat(t.legend).
		Range()
}

// datasource returns a reference to the provisioned Prometheus datasource.
func datasource() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr(DatasourceUID)}
}

// labelValues returns a multi-value query variable listing the values of
// label on metric{matchers}, with "All" matching everything.
func labelValues(name, label, metric, matchers string) *dashboard.QueryVariableBuilder {
	q := fmt.Sprintf("label_values(%s{%s}, %s)", metric, matchers, name)
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(datasource()).
		Query(dashboard.StringOrMap{String: cog.ToPtr(q)}).
		Definition(q).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true).
		AllValue(".*")
}

// quantiles returns p50, p90 and p99 targets over histogram family h
// (without the _bucket suffix), aggregated by le plus the by labels.
func quantiles(h, sel, by string, qs ...string) []target {
	ts := make([]target, 0, len(qs))
	for _, q := range qs {
		legend := "p" + q[2:]
		if by != "" {
			legend += " {{" + by + "}}"
		}
		ts = append(ts, target{expr: quantile(q, h, sel, by), legend: legend})
	}
	return ts
}

// quantile returns a histogram_quantile expression over h_bucket{sel}.
func quantile(q, h, sel, by string) string {
	labels := "le"
	if by != "" {
		labels += ", " + by
	}
	return fmt.Sprintf("histogram_quantile(%s, sum by (%s) (rate(%s_bucket%s[$__rate_interval])))", q, labels, h, sel)
}

// rate returns sum by (by) (rate(metric{sel}[$__rate_interval])).
func rate(metric, sel, by string) string {
	return fmt.Sprintf("sum by (%s) (rate(%s%s[$__rate_interval]))", by, metric, sel)
}

package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// Cache builds the "Sluice / Cache" dashboard: hit ratio, negative and stale
// hits, evictions, entries and memory of the entity cache.
func Cache() (dashboard.Dashboard, error) {
	const sel = `{job="sluice", instance=~"$instance"}`
	bd := newBoard("sluice-cache", "Sluice / Cache",
		"Entity cache effectiveness and size on the Sluice nodes.")

	bd.row("Effectiveness")
	bd.stat("Hit ratio", "Lookups answered from the cache (positive or negative entries) over all lookups.", "percentunit", 8, nil,
		target{expr: hitRatio(sel, "job"), legend: "hit ratio"})
	bd.stat("Negative hits/s", "Lookups answered with a cached miss.", "ops", 8, nil,
		target{expr: "sum(rate(sluice_cache_negative_hits_total" + sel + "[$__rate_interval]))", legend: "negative"})
	bd.stat("Stale hits/s", "Expired entries served because the datastore failed (db_resurrect_ttl).", "ops", 8, nil,
		target{expr: "sum(rate(sluice_cache_stale_hits_total" + sel + "[$__rate_interval]))", legend: "stale"})
	bd.timeseries("Hit ratio by entity", "Cache hit ratio per entity kind.", "percentunit", 12,
		target{expr: hitRatio(sel, "entity"), legend: "{{entity}}"})
	bd.timeseries("Hit ratio by backend", "Cache hit ratio per backend and node.", "percentunit", 12,
		target{expr: hitRatio(sel, "backend, instance"), legend: "{{backend}} {{instance}}"})
	bd.timeseries("Lookups/s by result", "Cache lookups per second by outcome.", "ops", 12,
		target{expr: rate("sluice_cache_hits_total", sel, "backend"), legend: "hit {{backend}}"},
		target{expr: rate("sluice_cache_misses_total", sel, "backend"), legend: "miss {{backend}}"},
		target{expr: rate("sluice_cache_negative_hits_total", sel, "backend"), legend: "negative hit {{backend}}"},
		target{expr: rate("sluice_cache_stale_hits_total", sel, "backend"), legend: "stale hit {{backend}}"})
	bd.timeseries("Negative and stale hits by entity", "Cached misses and stale values served per entity kind.", "ops", 12,
		target{expr: rate("sluice_cache_negative_hits_total", sel, "entity"), legend: "negative {{entity}}"},
		target{expr: rate("sluice_cache_stale_hits_total", sel, "entity"), legend: "stale {{entity}}"})

	bd.row("Size")
	bd.timeseries("Evictions/s", "Entries evicted by the backend to make room.", "ops", 8,
		target{expr: rate("sluice_cache_evictions_total", sel, "backend, instance"), legend: "{{backend}} {{instance}}"})
	bd.timeseries("Entries", "Cached entities (positive) and cached misses (negative).", "short", 8,
		target{expr: "sum by (kind, backend) (sluice_cache_entries" + sel + ")", legend: "{{kind}} {{backend}}"})
	bd.timeseries("Bytes", "Memory used by each cache backend.", "bytes", 8,
		target{expr: "sum by (backend, instance) (sluice_cache_bytes" + sel + ")", legend: "{{backend}} {{instance}}"})
	return bd.build()
}

// hitRatio returns (hits + negative hits) / (hits + negative hits + misses)
// grouped by the by labels. A group with misses but no hits yet has no hit
// series at all, so the hit terms fall back to misses*0 to keep the group.
func hitRatio(sel, by string) string {
	r := func(m string) string { return rate(m, sel, by) }
	zero := r("sluice_cache_misses_total") + " * 0"
	served := fmt.Sprintf("((%s or %s) + (%s or %s))",
		r("sluice_cache_hits_total"), zero, r("sluice_cache_negative_hits_total"), zero)
	return fmt.Sprintf("%s / (%s + %s)", served, served, r("sluice_cache_misses_total"))
}
